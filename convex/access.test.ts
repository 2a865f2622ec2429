import { afterEach, beforeEach, expect, test, vi } from "vitest";
import { constantTimeEqual, mintToken, verifyToken } from "../js/convex/access";

const KEY = "token-key";
beforeEach(() => vi.stubEnv("YKEEP_TOKEN_KEY", KEY));
afterEach(() => vi.unstubAllEnvs());

const exp = () => Math.floor(Date.now() / 1000) + 60;

test("a valid token is allowed for its resource and for wildcards", async () => {
  const tok = await mintToken(KEY, { sub: "alice", kind: "document", id: "x", exp: exp() });
  expect(await verifyToken(tok, "document", "x")).toEqual({ allowed: true, userId: "alice" });
  const any = await mintToken(KEY, { sub: "bob", kind: "*", id: "*", exp: exp() });
  expect(await verifyToken(any, "task", "y")).toEqual({ allowed: true, userId: "bob" });
});

test("tokens are refused with the contract's reasons", async () => {
  const ok = await mintToken(KEY, { sub: "alice", kind: "document", id: "x", exp: exp() });
  const reason = async (tok: unknown, kind = "document", id = "x") => {
    const v = await verifyToken(tok, kind, id);
    return v.allowed ? "allowed" : v.reason;
  };
  expect(await reason(ok, "document", "y")).toBe("wrong_resource");
  expect(await reason(ok, "diagram", "x")).toBe("wrong_resource");
  expect(await reason(await mintToken(KEY, { sub: "a", kind: "document", id: "x", exp: exp() - 120 }))).toBe("expired");
  expect(await reason(await mintToken("other-key", { sub: "a", kind: "document", id: "x", exp: exp() }))).toBe("bad_signature");
  const [payload, sig] = ok.split(".");
  expect(await reason(`${payload}x.${sig}`)).toBe("bad_signature");
  expect(await reason("nodot")).toBe("malformed");
  expect(await reason("a.b.c")).toBe("malformed"); // "b.c" is not base64url
  expect(await reason(`${payload}.`)).toBe("bad_signature");
  expect(await reason(`${payload}.not base64`)).toBe("malformed");
  expect(await reason(await mintToken(KEY, { kind: "document", id: "x", exp: exp() } as never))).toBe("malformed"); // no sub
  expect(await reason(await mintToken(KEY, { sub: "a", kind: "document", id: "x", exp: 1.5 }))).toBe("malformed");
  expect(await reason(42)).toBe("malformed");
  // A signed payload that is not the claims object.
  expect(await reason(await mintToken(KEY, "not json" as never))).toBe("malformed");
});

test("without a token key every token is refused", async () => {
  const tok = await mintToken(KEY, { sub: "a", kind: "document", id: "x", exp: exp() });
  vi.stubEnv("YKEEP_TOKEN_KEY", "");
  expect(await verifyToken(tok, "document", "x")).toMatchObject({ allowed: false, reason: "bad_signature" });
});

test("constantTimeEqual", async () => {
  expect(await constantTimeEqual("secret", "secret")).toBe(true);
  expect(await constantTimeEqual("secret", "secreT")).toBe(false);
  expect(await constantTimeEqual("secret", "secret2")).toBe(false);
  expect(await constantTimeEqual("", "x")).toBe(false);
});
