// Every path of the Convex store that deletes a blob, and every one that must not
// (DESIGN.md, "Nothing is deleted on anyone's say-so but an explicit one"): a save deletes
// the blob it replaced only in the transaction that switches the row, a refused save deletes
// nothing of the current snapshot, DELETE deletes the blob only with the tombstone, and only a
// tombstone answers `resource_deleted`. Plus the `GET /contract` answer of this store.
import { convexTest } from "convex-test";
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";
import { afterEach, beforeEach, expect, test, vi } from "vitest";
import * as Y from "yjs";
import schema, { appTables, documentFields } from "./schema";
import { modules } from "./test.setup";
import { internal } from "./_generated/api";
import { snapshotFields } from "ykeep/convex";
import type { Id } from "./_generated/dataModel";

const SECRET = "deletes-secret";
const AUTH = { Authorization: `Bearer ${SECRET}` };
const LIMIT = 4096;
beforeEach(() => {
  vi.stubEnv("YKEEP_SECRET", SECRET);
  vi.stubEnv("YKEEP_MAX_SNAPSHOT_BYTES", String(LIMIT));
});
afterEach(() => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
});

function state(text: string, client = 1): Uint8Array<ArrayBuffer> {
  const d = new Y.Doc();
  d.clientID = client;
  d.getText("t").insert(0, text);
  return Y.encodeStateAsUpdate(d) as Uint8Array<ArrayBuffer>;
}

function extended(base: Uint8Array, more: string): Uint8Array<ArrayBuffer> {
  const d = new Y.Doc();
  Y.applyUpdate(d, base);
  d.getText("t").insert(d.getText("t").length, more);
  return Y.encodeStateAsUpdate(d) as Uint8Array<ArrayBuffer>;
}

type AnyTest = { run: ReturnType<typeof convexTest>["run"] };

async function storageIds(t: AnyTest): Promise<string[]> {
  return t.run(async (ctx) => (await ctx.db.system.query("_storage").collect()).map((b) => b._id as string).sort());
}

async function loadBytes(t: ReturnType<typeof convexTest>, path: string): Promise<{ status: number; etag: string | null; bytes: Uint8Array }> {
  const res = await t.fetch(path, { headers: AUTH });
  return { status: res.status, etag: res.headers.get("etag"), bytes: new Uint8Array(await res.arrayBuffer()) };
}

test("GET /contract names this store: {contract: 1, store: convex}", async () => {
  const t = convexTest(schema, modules);
  const res = await t.fetch("/ykeep/contract", { headers: AUTH });
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({ contract: 1, store: "convex" });
  const wrong = await t.fetch("/ykeep/contract", { headers: { Authorization: "Bearer nope" } });
  expect(wrong.status).toBe(401);
  expect(await wrong.json()).toMatchObject({ error: { code: "unauthorized" } });
});

test("refused saves and deletes delete nothing of the current snapshot", async () => {
  const t = convexTest(schema, modules);
  const doc = await t.mutation(internal.app.createResource, { kind: "document" });
  const gone = await t.mutation(internal.app.createResource, { kind: "document" });
  const v1 = state("the current snapshot");
  const first = await t.fetch(`/ykeep/snapshots/document/${doc}`, { method: "POST", headers: AUTH, body: v1 });
  expect(first.status).toBe(200);
  const current = ((await first.json()) as { snapshotId: string }).snapshotId;
  expect((await t.fetch(`/ykeep/snapshots/document/${gone}`, { method: "POST", headers: AUTH, body: state("x", 3) })).status).toBe(200);
  expect((await t.fetch(`/ykeep/snapshots/document/${gone}`, { method: "DELETE", headers: AUTH })).status).toBe(204);
  expect(await storageIds(t)).toEqual([current]);

  const superset = extended(v1, " and more");
  const refusals: { row: string; method: string; headers?: Record<string, string>; body?: Uint8Array<ArrayBuffer>; status: number; code: string }[] = [
    { row: doc, method: "POST", body: state("does not contain it", 2), status: 409, code: "conflict" },
    { row: doc, method: "POST", headers: { "If-Match": "not-the-current-one" }, body: superset, status: 409, code: "conflict" },
    { row: doc, method: "POST", headers: { "If-None-Match": "*" }, body: superset, status: 409, code: "conflict" },
    { row: doc, method: "POST", body: new TextEncoder().encode("not a yjs update") as Uint8Array<ArrayBuffer>, status: 400, code: "bad_update" },
    { row: doc, method: "POST", headers: { "If-Match": "a", "If-None-Match": "*" }, body: superset, status: 400, code: "bad_request" },
    { row: doc, method: "POST", body: new Uint8Array(LIMIT + 1), status: 413, code: "too_large" },
    { row: "nobody", method: "POST", body: superset, status: 404, code: "not_found" },
    { row: gone, method: "POST", body: superset, status: 404, code: "resource_deleted" },
    { row: "nobody", method: "DELETE", status: 404, code: "not_found" },
    { row: gone, method: "DELETE", status: 404, code: "resource_deleted" },
  ];
  for (const r of refusals) {
    const at = `${r.method} ${r.row === doc ? "doc" : r.row} -> ${r.status} ${r.code}`;
    const res = await t.fetch(`/ykeep/snapshots/document/${r.row}`, { method: r.method, headers: { ...AUTH, ...r.headers }, body: r.body });
    expect(res.status, at).toBe(r.status);
    expect(await res.json(), at).toMatchObject({ error: { code: r.code } });
    expect(await storageIds(t), at).toEqual([current]);
    const loaded = await loadBytes(t, `/ykeep/snapshots/document/${doc}`);
    expect(loaded.status, at).toBe(200);
    expect(loaded.etag, at).toBe(`"${current}"`);
    expect(loaded.bytes, at).toEqual(v1);
  }
});

/**
 * The real functions on a schema that refuses the value one patch writes, so exactly that
 * mutation fails (convex-test validates every write against the schema).
 */
function strictSchema(refuse: "yjsSavedAt" | "deletedAt") {
  const fields = { ...snapshotFields, [refuse]: v.optional(v.string()) };
  return defineSchema({
    ...appTables,
    documents: defineTable({ ...documentFields, ...fields }),
    diagrams: defineTable(fields),
    tasks: defineTable(fields),
  });
}

async function rowWithBlob(t: ReturnType<typeof convexTest>, bytes: Uint8Array<ArrayBuffer>) {
  return t.run(async (ctx) => {
    const blobId = await ctx.storage.store(new Blob([bytes]));
    const workspaceId = await ctx.db.insert("workspaces", { name: "w" });
    const id = await ctx.db.insert("documents", { title: "t", workspaceId, ownerId: "ada", yjsSnapshotId: blobId });
    return { id: id as string, blobId: blobId as string };
  });
}

test("a save whose row switch does not commit keeps the current blob", async () => {
  vi.spyOn(console, "error").mockImplementation(() => {});
  const t = convexTest(strictSchema("yjsSavedAt"), modules);
  const v1 = state("v1");
  const { id, blobId } = await rowWithBlob(t, v1);
  const res = await t.fetch(`/ykeep/snapshots/document/${id}`, {
    method: "POST",
    headers: { ...AUTH, "If-Match": blobId },
    body: extended(v1, " v2"),
  });
  expect(res.status).toBe(500); // commitSave's patch was refused: its transaction rolled back
  const row = await t.run(async (ctx) => ctx.db.get(id as Id<"documents">));
  expect(row?.yjsSnapshotId).toBe(blobId);
  expect(await t.run(async (ctx) => (await ctx.storage.get(blobId as Id<"_storage">)) !== null)).toBe(true);
  const loaded = await loadBytes(t, `/ykeep/snapshots/document/${id}`);
  expect([loaded.status, loaded.etag]).toEqual([200, `"${blobId}"`]);
  expect(loaded.bytes).toEqual(v1);
  // The new blob stays behind, unreferenced (as after a crash of the action: convex/README.md).
  expect((await storageIds(t)).length).toBe(2);
});

test("a DELETE whose tombstone does not commit keeps the blob", async () => {
  vi.spyOn(console, "error").mockImplementation(() => {});
  const t = convexTest(strictSchema("deletedAt"), modules);
  const v1 = state("kept");
  const { id, blobId } = await rowWithBlob(t, v1);
  const res = await t.fetch(`/ykeep/snapshots/document/${id}`, { method: "DELETE", headers: AUTH });
  expect(res.status).toBe(500);
  expect(await storageIds(t)).toEqual([blobId]);
  const loaded = await loadBytes(t, `/ykeep/snapshots/document/${id}`);
  expect([loaded.status, loaded.etag]).toEqual([200, `"${blobId}"`]);
  expect(loaded.bytes).toEqual(v1);
});

test("the replaced blob is deleted in the switch's transaction, not before", async () => {
  const t = convexTest(schema, modules);
  const v1 = state("v1");
  const { id, blobId } = await rowWithBlob(t, v1);
  const v2 = extended(v1, " v2");
  // What the save action does up to the commit, then a commit that is refused: the current
  // blob is untouched and only the staged one is deleted.
  const staged = await t.run(async (ctx) => ctx.storage.store(new Blob([v2])));
  const { checkUpdate } = await import("../js/convex/yupdate");
  const marker = checkUpdate(v2).marker.slice().buffer as ArrayBuffer;
  const args = { kind: "document" as const, id, newSnapshotId: staged, marker, size: v2.byteLength };
  const refused = await t.mutation(internal.ykeep.commitSave, { ...args, precondition: { type: "ifMatch", snapshotId: "other" } });
  expect(refused).toEqual({ ok: false, code: "conflict", currentSnapshotId: blobId });
  expect(await storageIds(t)).toEqual([blobId]);
  // A commit that passes switches the row and deletes the replaced blob together.
  const staged2 = await t.run(async (ctx) => ctx.storage.store(new Blob([v2])));
  const ok = await t.mutation(internal.ykeep.commitSave, {
    ...args,
    newSnapshotId: staged2,
    precondition: { type: "ifMatch", snapshotId: blobId },
  });
  expect(ok).toMatchObject({ ok: true, snapshotId: staged2 });
  expect(await storageIds(t)).toEqual([staged2]);
  // On a deleted row the staged blob is deleted and the answer names the tombstone.
  expect((await t.mutation(internal.ykeep.remove, { kind: "document", id })).ok).toBe(true);
  const staged3 = await t.run(async (ctx) => ctx.storage.store(new Blob([v2])));
  const late = await t.mutation(internal.ykeep.commitSave, { ...args, newSnapshotId: staged3, precondition: { type: "none" } });
  expect(late).toEqual({ ok: false, code: "resource_deleted" });
  expect(await storageIds(t)).toEqual([]);
  expect(await t.mutation(internal.ykeep.remove, { kind: "document", id })).toEqual({ ok: false, code: "resource_deleted" });
});
