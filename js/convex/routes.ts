// The snapshot store's HTTP routes on Convex: the same contract as the embedded Rust
// store (docs/store-api.md), registered on the app's own router under a prefix the app
// chooses. `{id}` is the resource row's `_id`.
//
//   POST    {prefix}/snapshots/{kind}/{id}   save (server secret), compare-and-set
//   GET     {prefix}/snapshots/{kind}/{id}   load (server secret, or a token `authorize` allows)
//   DELETE  {prefix}/snapshots/{kind}/{id}   the resource is gone (server secret)
//   POST    {prefix}/collaboration/verify    may this token open this room? (server secret; `authorize`)
//   GET     {prefix}/contract                contract version and store name (server secret)
//   GET     {prefix}/healthz
//   OPTIONS each of the above                CORS preflight
//
// No route outside the prefix and no catch-all: the app's other routes are the app's.
//
// Environment variables (npx convex env set NAME VALUE):
//   YKEEP_SECRET              shared secret of the relay (required)
//   YKEEP_TOKEN_KEY           HMAC key of ykeep's user tokens (the default `authorize`)
//   YKEEP_MAX_SNAPSHOT_BYTES  snapshot size limit, default 64 MiB (Convex itself caps an
//                             HTTP action's request body at 20 MB)
import { env } from "./env.js";
import { httpActionGeneric } from "convex/server";
import type { GenericActionCtx, GenericDataModel, HttpRouter } from "convex/server";
import type { GenericId } from "convex/values";
import type { AuthorizeRequest, Ykeep } from "./config.js";
import { YkeepConfigError } from "./config.js";
import { KINDS } from "./schema.js";
import type { Kind } from "./schema.js";
import { bearer, isServerSecret } from "./access.js";
import type { Verdict } from "./access.js";
import { BadUpdate, base64url, checkUpdate, snapshotContains } from "./yupdate.js";
import { preconditionHolds } from "./functions.js";
import type { Precondition } from "./functions.js";
import { CODE, CONTRACT_VERSION, REASON, SNAPSHOT_READ_TRIES, STORE_NAME } from "./contract.js";
import type { Missing, Reason } from "./contract.js";

type ActionCtx = GenericActionCtx<GenericDataModel>;

const DEFAULT_MAX_SNAPSHOT_BYTES = 64 * 1024 * 1024;
const ID_RULE = /^[A-Za-z0-9_-]{1,128}$/;

const CORS_HEADERS: Record<string, string> = {
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Expose-Headers": "ETag, X-Ykeep-Saved-At",
};

/** A refusal that becomes `{"error": {"code", "message", ...extra}}` with `status`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { ...CORS_HEADERS, "Content-Type": "application/json", ...headers },
  });
}

function errorResponse(e: HttpError): Response {
  const headers: Record<string, string> = e.status === 401 ? { "WWW-Authenticate": "Bearer" } : {};
  return json(e.status, { error: { code: e.code, message: e.message, ...e.extra } }, headers);
}

/** Wraps a handler: HttpErrors become their JSON reply; anything else a 500 that hides the detail. */
function route(handler: (ctx: ActionCtx, request: Request) => Promise<Response>) {
  return httpActionGeneric(async (ctx, request) => {
    try {
      return await handler(ctx, request);
    } catch (e) {
      if (e instanceof HttpError) return errorResponse(e);
      console.error("ykeep store: internal error", request.method, new URL(request.url).pathname, e);
      return errorResponse(new HttpError(500, CODE.internal, "internal error"));
    }
  });
}

/**
 * The app's `authorize` verdict, checked: anything but `{allowed: true, userId}` or
 * `{allowed: false, reason}` with a contract reason is the app's bug, answered 500 (and logged),
 * never passed on to a relay as a verdict.
 */
async function authorized(ykeep: Ykeep, ctx: ActionCtx, request: AuthorizeRequest): Promise<Verdict> {
  const verdict: unknown = await ykeep.authorize(ctx, request);
  const v = (typeof verdict === "object" && verdict !== null ? verdict : {}) as Record<string, unknown>;
  if (v.allowed === true && (typeof v.userId === "string" || v.userId === null || v.userId === undefined)) {
    return { allowed: true, userId: (v.userId as string | undefined) ?? null };
  }
  if (v.allowed === false && (Object.values(REASON) as unknown[]).includes(v.reason)) {
    return { allowed: false, userId: null, reason: v.reason as Reason };
  }
  console.error("ykeep store: authorize returned", JSON.stringify(verdict), "; want {allowed: true, userId} or {allowed: false, reason}");
  throw new HttpError(500, CODE.internal, "internal error");
}

function isKind(kind: string): kind is Kind {
  return (KINDS as readonly string[]).includes(kind);
}

function parseResource(request: Request, prefix: string): { kind: Kind; id: string } {
  const path = new URL(request.url).pathname;
  const rest = path.slice(`${prefix}/snapshots/`.length);
  const slash = rest.indexOf("/");
  const kind = slash < 0 ? rest : rest.slice(0, slash);
  const id = slash < 0 ? "" : rest.slice(slash + 1);
  if (!isKind(kind)) throw new HttpError(400, CODE.badKind, "kind must be one of document, diagram, task");
  if (!ID_RULE.test(id)) {
    throw new HttpError(400, CODE.badId, "id must be 1-128 characters of [A-Za-z0-9_-]");
  }
  return { kind, id };
}

function secretMissingWarning() {
  if (!env("YKEEP_SECRET")) {
    console.error("ykeep store: YKEEP_SECRET is not set; every request that needs the secret is refused");
  }
}

async function requireSecret(request: Request): Promise<void> {
  if (!(await isServerSecret(bearer(request)))) {
    secretMissingWarning();
    throw new HttpError(401, CODE.unauthorized, "missing or wrong credentials");
  }
}

function maxSnapshotBytes(): number {
  const raw = env("YKEEP_MAX_SNAPSHOT_BYTES");
  const n = raw === undefined ? NaN : Number(raw);
  return Number.isSafeInteger(n) && n > 0 ? n : DEFAULT_MAX_SNAPSHOT_BYTES;
}

function unquote(value: string): string {
  let v = value.trim();
  if (v.startsWith("W/")) v = v.slice(2);
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
  return v;
}

function parsePrecondition(request: Request): Precondition {
  const ifMatch = request.headers.get("If-Match");
  const ifNoneMatch = request.headers.get("If-None-Match");
  if (ifMatch !== null && ifNoneMatch !== null) {
    throw new HttpError(400, CODE.badRequest, "give If-Match or If-None-Match, not both");
  }
  if (ifNoneMatch !== null) {
    if (ifNoneMatch.trim() !== "*") throw new HttpError(400, CODE.badRequest, "If-None-Match only takes *");
    return { type: "ifNoneMatch" };
  }
  if (ifMatch !== null) {
    // Like the embedded store: any other value is a snapshot id (that will not match).
    const snapshotId = unquote(ifMatch);
    if (snapshotId === "") throw new HttpError(400, CODE.badRequest, "If-Match is empty");
    return { type: "ifMatch", snapshotId };
  }
  return { type: "none" };
}

/** Reads the body, refusing with 413 as soon as it passes `limit` bytes. */
async function readBody(request: Request, limit: number): Promise<Uint8Array<ArrayBuffer>> {
  const declared = request.headers.get("Content-Length");
  if (declared !== null && Number(declared) > limit) {
    throw new HttpError(413, CODE.tooLarge, `snapshot is over the limit of ${limit} bytes`);
  }
  if (request.body === null) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => {});
      throw new HttpError(413, CODE.tooLarge, `snapshot is over the limit of ${limit} bytes`);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

/** 404 for a request that found no live row: `resource_deleted` only for a tombstone. */
function missingRow(kind: Kind, code: Missing): HttpError {
  return code === CODE.resourceDeleted
    ? new HttpError(404, CODE.resourceDeleted, `this ${kind} was deleted`)
    : new HttpError(404, CODE.notFound, `no ${kind} with this id`);
}

function conflict(currentSnapshotId: string | null, message: string): HttpError {
  return new HttpError(409, CODE.conflict, message, { currentSnapshotId });
}

const CONFLICT_MESSAGES: Record<Precondition["type"], string> = {
  ifMatch: "If-Match does not name the current snapshot",
  ifNoneMatch: "the resource already has a snapshot",
  none: "the saved state does not contain the current snapshot; merge it and retry",
};

/** The Yjs snapshot of a stored blob, or null if it is gone or not a valid update. */
async function markerOfBlob(ctx: ActionCtx, snapshotId: string): Promise<Uint8Array | null> {
  const blob = await ctx.storage.get(snapshotId as GenericId<"_storage">);
  if (blob === null) return null;
  try {
    return checkUpdate(new Uint8Array(await blob.arrayBuffer())).marker;
  } catch (e) {
    if (e instanceof BadUpdate) {
      console.error("ykeep store: the current snapshot blob is not a valid update", snapshotId);
      return null;
    }
    throw e;
  }
}

const save = (ykeep: Ykeep, prefix: string) => route(async (ctx, request) => {
  const { kind, id } = parseResource(request, prefix);
  await requireSecret(request);
  const precondition = parsePrecondition(request);
  const body = await readBody(request, maxSnapshotBytes());
  let checked;
  try {
    checked = checkUpdate(body);
  } catch (e) {
    if (e instanceof BadUpdate) throw new HttpError(400, CODE.badUpdate, `body is not a Yjs v1 update: ${e.message}`);
    throw e;
  }
  const marker = toArrayBuffer(checked.marker);

  // Cheap pre-check so a save that will be refused stores no blob. The mutation below
  // checks again, atomically with the switch.
  const cur = await ctx.runQuery(ykeep.ref<"query">("current"), { kind, id });
  if (!cur.found) throw missingRow(kind, cur.code);
  let effective = precondition;
  if (precondition.type === "none" && cur.snapshotId !== null && cur.marker === null) {
    // The row's snapshot has no Yjs snapshot marker (too big to keep on the row, or
    // written by something other than this route): read the blob and check containment
    // here, then commit only if the row still points at that very blob.
    const currentMarker = await markerOfBlob(ctx, cur.snapshotId);
    if (currentMarker === null || !snapshotContains(checked.marker, currentMarker)) {
      throw conflict(cur.snapshotId, CONFLICT_MESSAGES.none);
    }
    effective = { type: "ifMatch", snapshotId: cur.snapshotId };
  } else if (!preconditionHolds(precondition, cur.snapshotId, cur.marker, marker)) {
    throw conflict(cur.snapshotId, CONFLICT_MESSAGES[precondition.type]);
  }

  const newSnapshotId = await ctx.storage.store(new Blob([body], { type: "application/octet-stream" }));
  const result = await ctx.runMutation(ykeep.ref<"mutation">("commitSave"), {
    kind,
    id,
    newSnapshotId,
    marker,
    size: body.byteLength,
    precondition: effective,
  });
  if (!result.ok) {
    if (result.code !== CODE.conflict) throw missingRow(kind, result.code);
    throw conflict(result.currentSnapshotId, CONFLICT_MESSAGES[precondition.type]);
  }
  return json(
    200,
    {
      snapshotId: result.snapshotId,
      size: body.byteLength,
      stateVector: base64url(checked.stateVector),
      savedAt: result.savedAt,
    },
    { ETag: etag(result.snapshotId) },
  );
});

const load = (ykeep: Ykeep, prefix: string) => route(async (ctx, request) => {
  const { kind, id } = parseResource(request, prefix);
  const credential = bearer(request);
  if (credential === null) throw new HttpError(401, CODE.unauthorized, "missing or wrong credentials");
  if (!(await isServerSecret(credential))) {
    const verdict = await authorized(ykeep, ctx, { token: credential, kind, id, table: ykeep.tables[kind] });
    if (!verdict.allowed) {
      if (verdict.reason === REASON.wrongResource) {
        throw new HttpError(403, CODE.forbidden, "this token is not for this resource");
      }
      throw new HttpError(401, CODE.unauthorized, "missing or wrong credentials");
    }
  }
  return readSnapshot(async () => {
    const cur = await ctx.runQuery(ykeep.ref<"query">("current"), { kind, id });
    if (!cur.found) throw missingRow(kind, cur.code);
    if (cur.snapshotId === null) throw new HttpError(404, CODE.noSnapshot, "this resource has no snapshot yet");
    if (notModified(request, cur.snapshotId)) {
      // The caller holds this snapshot already (a relay checking for other relays' saves).
      return new Response(null, { status: 304, headers: { ...CORS_HEADERS, ETag: etag(cur.snapshotId) } });
    }
    const blob = await ctx.storage.get(cur.snapshotId as GenericId<"_storage">);
    if (blob === null) return null;
    return new Response(blob, {
      status: 200,
      headers: {
        ...CORS_HEADERS,
        "Content-Type": "application/octet-stream",
        ETag: etag(cur.snapshotId),
        "X-Ykeep-Saved-At": String(cur.savedAt ?? 0),
      },
    });
  });
});

/**
 * The load's retry rule (`SNAPSHOT_READ_TRIES`, as the embedded store): `read` looks at the row
 * and then its blob, and answers null when the blob is gone (a save that landed between the two
 * reads deletes the blob the row named; the next try finds the new one). After the last try:
 * `503 snapshot_unavailable`, retryable; nothing was deleted.
 */
export async function readSnapshot<T>(read: () => Promise<T | null>): Promise<T> {
  for (let attempt = 0; attempt < SNAPSHOT_READ_TRIES; attempt++) {
    const found = await read();
    if (found !== null) return found;
  }
  throw new HttpError(503, CODE.snapshotUnavailable, "the snapshot could not be read; retry");
}

/** An entity tag for a snapshot id (`ykeep_core::wire::etag`). */
function etag(snapshotId: string): string {
  return `"${snapshotId}"`;
}

/** Whether a load's If-None-Match names the current snapshot (one tag, quoted or not). */
function notModified(request: Request, current: string): boolean {
  const header = request.headers.get("If-None-Match");
  if (header === null) return false;
  return header.split(",").some((t) => unquote(t) === current);
}

const remove = (ykeep: Ykeep, prefix: string) => route(async (ctx, request) => {
  const { kind, id } = parseResource(request, prefix);
  await requireSecret(request);
  const result = await ctx.runMutation(ykeep.ref<"mutation">("remove"), { kind, id });
  if (!result.ok) throw missingRow(kind, result.code);
  return new Response(null, { status: 204, headers: CORS_HEADERS });
});

const verify = (ykeep: Ykeep) => route(async (ctx, request) => {
  await requireSecret(request);
  let body: unknown;
  try {
    body = JSON.parse(await request.text());
  } catch {
    throw new HttpError(400, CODE.badRequest, "body must be JSON {token, kind, id}");
  }
  if (typeof body !== "object" || body === null) {
    throw new HttpError(400, CODE.badRequest, "body must be JSON {token, kind, id}");
  }
  const { token, kind, id } = body as Record<string, unknown>;
  if (typeof token !== "string" || typeof kind !== "string" || typeof id !== "string") {
    throw new HttpError(400, CODE.badRequest, "body must be JSON {token, kind, id}");
  }
  if (!isKind(kind)) throw new HttpError(400, CODE.badKind, "kind must be one of document, diagram, task");
  if (!ID_RULE.test(id)) throw new HttpError(400, CODE.badId, "id must be 1-128 characters of [A-Za-z0-9_-]");
  const verdict = await authorized(ykeep, ctx, { token, kind, id, table: ykeep.tables[kind] });
  return json(200, verdict);
});

const healthz = route(async () => json(200, { ok: true }));

/** `GET /contract`: a relay checks it before it serves (wrong URL, wrong secret, not ykeep). */
const contract = route(async (_ctx, request) => {
  await requireSecret(request);
  return json(200, { contract: CONTRACT_VERSION, store: STORE_NAME });
});

const preflight = httpActionGeneric(async () => {
  return new Response(null, {
    status: 204,
    headers: {
      ...CORS_HEADERS,
      "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
      "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match, If-None-Match",
      "Access-Control-Max-Age": "86400",
    },
  });
});

/** A route prefix: empty, or `/` and path segments, with no `/` at the end. */
const PREFIX_RULE = /^(\/[A-Za-z0-9_.~-]+)*$/;

/**
 * Registers the store's routes on the app's router under `prefix` (for example `/ykeep`; the
 * relay's `--store-url` is then `https://<deployment>.convex.site/ykeep`). Each route answers
 * its own CORS preflight; nothing is registered outside the prefix, and there is no catch-all.
 */
export function registerRoutes(http: HttpRouter, ykeep: Ykeep, prefix: string): void {
  if (!PREFIX_RULE.test(prefix)) {
    throw new YkeepConfigError(`ykeep: route prefix "${prefix}" must be empty or like "/ykeep" (no "/" at the end)`);
  }
  const snapshots = `${prefix}/snapshots/`;
  http.route({ pathPrefix: snapshots, method: "POST", handler: save(ykeep, prefix) });
  http.route({ pathPrefix: snapshots, method: "GET", handler: load(ykeep, prefix) });
  http.route({ pathPrefix: snapshots, method: "DELETE", handler: remove(ykeep, prefix) });
  http.route({ pathPrefix: snapshots, method: "OPTIONS", handler: preflight });
  const exact = [
    [`${prefix}/collaboration/verify`, "POST", verify(ykeep)],
    [`${prefix}/contract`, "GET", contract],
    [`${prefix}/healthz`, "GET", healthz],
  ] as const;
  for (const [path, method, handler] of exact) {
    http.route({ path, method, handler });
    http.route({ path, method: "OPTIONS", handler: preflight });
  }
}
