// ykeep mounted into the example app: the app's own auth decides through `authorize`, the app's
// own routes stay the app's, ykeep's routes live under the prefix and answer their own preflight,
// and options that cannot work fail at deploy time with a message.
import { convexTest } from "convex-test";
import { httpRouter } from "convex/server";
import { afterEach, beforeEach, expect, test, vi } from "vitest";
import * as Y from "yjs";
import { defineYkeep, mintToken, YkeepConfigError } from "ykeep/convex";
import schema from "./schema";
import { modules } from "./test.setup";
import { internal } from "./_generated/api";
import { PREFIX } from "./test.helpers";

const SECRET = "mount-secret";
const TOKEN_KEY = "mount-token-key";
const AUTH = { Authorization: `Bearer ${SECRET}` };

beforeEach(() => {
  vi.stubEnv("YKEEP_SECRET", SECRET);
  vi.stubEnv("YKEEP_TOKEN_KEY", TOKEN_KEY);
});
afterEach(() => vi.unstubAllEnvs());

async function app() {
  const t = convexTest(schema, modules);
  const ws = await t.mutation(internal.app.createWorkspace, { name: "acme" });
  const other = await t.mutation(internal.app.createWorkspace, { name: "elsewhere" });
  await t.mutation(internal.app.addMember, { workspaceId: ws, userId: "ada" });
  await t.mutation(internal.app.createSession, { userId: "ada", token: "sess_ada", ttlMs: 60_000 });
  await t.mutation(internal.app.createSession, { userId: "old", token: "sess_old", ttlMs: -1 });
  const doc = await t.mutation(internal.app.createResource, { kind: "document", workspaceId: ws });
  const foreign = await t.mutation(internal.app.createResource, { kind: "document", workspaceId: other });
  const update = new Y.Doc();
  update.getText("t").insert(0, "hello");
  const saved = await t.fetch(`${PREFIX}/snapshots/document/${doc}`, {
    method: "POST",
    headers: AUTH,
    body: Y.encodeStateAsUpdate(update) as Uint8Array<ArrayBuffer>,
  });
  expect(saved.status).toBe(200);
  return { t, doc, foreign };
}

const verify = (t: ReturnType<typeof convexTest>, body: unknown, path = `${PREFIX}/collaboration/verify`) =>
  t.fetch(path, { method: "POST", headers: { ...AUTH, "Content-Type": "application/json" }, body: JSON.stringify(body) });

test("the app's authorize hook decides ykeep's verify and token loads with the app's own sessions", async () => {
  const { t, doc, foreign } = await app();
  expect(await (await verify(t, { token: "sess_ada", kind: "document", id: doc })).json()).toEqual({ allowed: true, userId: "ada" });
  expect(await (await verify(t, { token: "sess_ada", kind: "document", id: foreign })).json()).toMatchObject({
    allowed: false,
    reason: "wrong_resource",
  });
  expect(await (await verify(t, { token: "sess_old", kind: "document", id: doc })).json()).toMatchObject({
    allowed: false,
    reason: "expired",
  });
  expect(await (await verify(t, { token: "sess_nobody", kind: "document", id: doc })).json()).toMatchObject({ allowed: false });

  const loadWith = (token: string, id: string) =>
    t.fetch(`${PREFIX}/snapshots/document/${id}`, { headers: { Authorization: `Bearer ${token}` } });
  expect((await loadWith("sess_ada", doc)).status).toBe(200);
  expect((await loadWith("sess_ada", foreign)).status).toBe(403);
  expect((await loadWith("sess_old", doc)).status).toBe(401);
  // ykeep's own tokens (what `ykeep-relay token` mints) still pass the hook's fallback.
  const minted = await mintToken(TOKEN_KEY, { sub: "relay-user", kind: "document", id: doc, exp: Math.floor(Date.now() / 1000) + 60 });
  expect(await (await verify(t, { token: minted, kind: "document", id: doc })).json()).toEqual({ allowed: true, userId: "relay-user" });
  expect((await loadWith(minted, foreign)).status).toBe(403);
});

test("the app's own /collaboration/verify is the app's, beside ykeep's under the prefix", async () => {
  const { t, doc, foreign } = await app();
  const own = await verify(t, { sessionToken: "sess_ada", kind: "document", id: doc }, "/collaboration/verify");
  expect(await own.json()).toEqual({ allowed: true });
  const ownRefused = await verify(t, { sessionToken: "sess_ada", kind: "document", id: foreign }, "/collaboration/verify");
  expect(await ownRefused.json()).toEqual({ allowed: false });
  // ykeep's verify route wants its own body and the relay's secret.
  const ykeepShape = await verify(t, { sessionToken: "sess_ada", kind: "document", id: doc });
  expect(ykeepShape.status).toBe(400);
  const noSecret = await t.fetch(`${PREFIX}/collaboration/verify`, {
    method: "POST",
    body: JSON.stringify({ token: "sess_ada", kind: "document", id: doc }),
  });
  expect(noSecret.status).toBe(401);
});

test("every ykeep route answers its own CORS preflight under the prefix; nothing outside it is ykeep's", async () => {
  const { t, doc } = await app();
  for (const path of [`/snapshots/document/${doc}`, "/collaboration/verify", "/contract", "/healthz"]) {
    const res = await t.fetch(`${PREFIX}${path}`, { method: "OPTIONS" });
    expect(res.status, path).toBe(204);
    expect(res.headers.get("Access-Control-Allow-Methods"), path).toContain("POST");
    expect(res.headers.get("Access-Control-Allow-Headers"), path).toContain("If-Match");
  }
  for (const path of ["/", "/healthz", "/contract", `/snapshots/document/${doc}`, "/app/anything"]) {
    const res = await t.fetch(path, { method: "OPTIONS" });
    expect(res.status, `OPTIONS ${path}`).toBe(404);
    const get = await t.fetch(path, { headers: AUTH });
    expect(get.status, `GET ${path}`).toBe(404);
    expect(get.headers.get("Access-Control-Allow-Origin"), `GET ${path}`).toBeNull();
  }
});

test("options that cannot work fail at deploy time, naming the option", () => {
  expect(() => defineYkeep({ tables: { document: "docs", diagram: "docs" } })).toThrow(YkeepConfigError);
  expect(() => defineYkeep({ tables: { document: "docs", diagram: "docs" } })).toThrow(/table of its own/);
  expect(() => defineYkeep({ tables: { page: "pages" } as never })).toThrow(/tables has "page"/);
  expect(() => defineYkeep({ tables: { document: "my documents" } })).toThrow(/not a table name/);
  expect(() => defineYkeep({ module: "../ykeep" })).toThrow(/module/);
  expect(() => defineYkeep({ legacy: { archiveTable: "documents" } })).toThrow(/archiveTable/);
  expect(() => defineYkeep({ legacy: { contentField: "yjsSnapshotId" } })).toThrow(/contentField/);
  const ykeep = defineYkeep();
  for (const prefix of ["ykeep", "/ykeep/", "/yk eep"]) {
    expect(() => ykeep.registerRoutes(httpRouter(), { prefix }), prefix).toThrow(/prefix/);
  }
  // Registering twice on one router (or over the app's own route) is refused by Convex itself.
  const http = httpRouter();
  ykeep.registerRoutes(http, { prefix: "/ykeep" });
  expect(() => ykeep.registerRoutes(http, { prefix: "/ykeep" })).toThrow();
  // Other table names reach the functions: the same router with renamed tables is valid.
  const renamed = defineYkeep({ module: "lib/ykeep", tables: { document: "pages", diagram: "boards", task: "cards" } });
  expect(renamed.tables).toEqual({ document: "pages", diagram: "boards", task: "cards" });
  renamed.registerRoutes(httpRouter(), { prefix: "" });
});

test("a verdict the hook should not give is a 500, never passed on as an answer", async () => {
  vi.spyOn(console, "error").mockImplementation(() => {});
  const broken = defineYkeep({ module: "ykeep", authorize: async () => ({ allowed: "yes" }) as never });
  const http = httpRouter();
  broken.registerRoutes(http, { prefix: PREFIX });
  const t = convexTest(schema, { ...modules, "./http.ts": async () => ({ default: http }) });
  const doc = await t.mutation(internal.app.createResource, { kind: "document" });
  const res = await verify(t, { token: "anything", kind: "document", id: doc });
  expect(res.status).toBe(500);
  expect(await res.json()).toMatchObject({ error: { code: "internal" } });
  const load = await t.fetch(`${PREFIX}/snapshots/document/${doc}`, { headers: { Authorization: "Bearer anything" } });
  expect(load.status).toBe(500);
});
