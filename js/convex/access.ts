// Credentials for the snapshot store: the shared server secret and user tokens.
//
// Token format (docs/store-api.md): base64url(JSON {sub, kind, id, exp}) "." base64url(
// HMAC-SHA256(YKEEP_TOKEN_KEY, <first segment as ASCII>)), base64url without padding,
// `exp` in Unix seconds, kind/id equal to the resource's or "*".
//
// THIS IS WHERE AN APP PLUGS IN ITS OWN AUTH: replace `verifyToken` (for example with a
// check of the app's session, or of a Convex auth identity looked up with ctx.runQuery)
// and keep its result shape; `POST /collaboration/verify` and the load route both use it.
import { env } from "./env.js";
import { REASON } from "./contract.js";
import type { Reason } from "./contract.js";
import { fromBase64url } from "./yupdate.js";

const encoder = new TextEncoder();

export type Verdict =
  | { allowed: true; userId: string | null }
  | { allowed: false; userId: null; reason: Reason };

async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
}

/** Compares two strings in time that depends on neither their contents nor lengths. */
export async function constantTimeEqual(a: string, b: string): Promise<boolean> {
  // Hash first so both sides have the same length, then compare every byte.
  const [ha, hb] = await Promise.all([sha256(a), sha256(b)]);
  let diff = 0;
  for (let i = 0; i < ha.length; i++) diff |= ha[i] ^ hb[i];
  return diff === 0;
}

/** The bearer credential of a request, or null when there is none. */
export function bearer(request: Request): string | null {
  const h = request.headers.get("Authorization");
  if (h === null) return null;
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(h);
  return m ? m[1] : null;
}

/** Is this the shared server secret? False when the deployment has no secret set. */
export async function isServerSecret(credential: string | null): Promise<boolean> {
  const secret = env("YKEEP_SECRET");
  if (!secret || credential === null) return false;
  return constantTimeEqual(credential, secret);
}

async function hmacKey(key: string): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", encoder.encode(key), { name: "HMAC", hash: "SHA-256" }, false, [
    "verify",
    "sign",
  ]);
}

/** Mints a token (used by tests and for development; production tokens come from the app). */
export async function mintToken(
  key: string,
  claims: { sub: string; kind: string; id: string; exp: number },
): Promise<string> {
  const payload = base64urlText(JSON.stringify(claims));
  const sig = new Uint8Array(await crypto.subtle.sign("HMAC", await hmacKey(key), encoder.encode(payload)));
  let bin = "";
  for (const b of sig) bin += String.fromCharCode(b);
  return `${payload}.${btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")}`;
}

function base64urlText(text: string): string {
  let bin = "";
  for (const b of encoder.encode(text)) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * Verifies a user token for the resource kind/id. `nowMs` defaults to the clock.
 * Returns a verdict; never throws for bad input. With no YKEEP_TOKEN_KEY set, every
 * token is refused as `bad_signature`.
 */
export async function verifyToken(token: unknown, kind: string, id: string, nowMs = Date.now()): Promise<Verdict> {
  const refuse = (reason: Reason): Verdict => ({
    allowed: false,
    userId: null,
    reason,
  });
  if (typeof token !== "string") return refuse(REASON.malformed);
  // Same order of checks as the embedded store (crates/store/src/token.rs).
  const dot = token.indexOf(".");
  if (dot < 0) return refuse(REASON.malformed);
  const payload = token.slice(0, dot);
  const sig = fromBase64url(token.slice(dot + 1));
  if (sig === null) return refuse(REASON.malformed);
  const key = env("YKEEP_TOKEN_KEY");
  if (!key) return refuse(REASON.badSignature);
  // crypto.subtle.verify compares the MAC in constant time.
  const ok = await crypto.subtle.verify("HMAC", await hmacKey(key), sig, encoder.encode(payload));
  if (!ok) return refuse(REASON.badSignature);
  const payloadBytes = fromBase64url(payload);
  if (payloadBytes === null) return refuse(REASON.malformed);
  let claims: unknown;
  try {
    claims = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payloadBytes));
  } catch {
    return refuse(REASON.malformed);
  }
  if (typeof claims !== "object" || claims === null) return refuse(REASON.malformed);
  const c = claims as Record<string, unknown>;
  if (
    typeof c.sub !== "string" ||
    typeof c.kind !== "string" ||
    typeof c.id !== "string" ||
    typeof c.exp !== "number" ||
    !Number.isSafeInteger(c.exp) ||
    c.exp < 0
  ) {
    return refuse(REASON.malformed);
  }
  if (c.exp <= Math.floor(nowMs / 1000)) return refuse(REASON.expired);
  if ((c.kind !== "*" && c.kind !== kind) || (c.id !== "*" && c.id !== id)) return refuse(REASON.wrongResource);
  return { allowed: true, userId: c.sub };
}
