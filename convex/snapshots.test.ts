// Save paths the shared contract cases do not reach.
import { convexTest } from "convex-test";
import { afterEach, beforeEach, expect, test, vi } from "vitest";
import * as Y from "yjs";
import schema from "./schema";
import { modules } from "./test.setup";
import { internal } from "./_generated/api";
import { CODE, SNAPSHOT_READ_TRIES } from "../js/convex/contract";
import { readSnapshot } from "../js/convex/routes";

const SECRET = "snapshots-secret";
const AUTH = { Authorization: `Bearer ${SECRET}` };
beforeEach(() => vi.stubEnv("YKEEP_SECRET", SECRET));
afterEach(() => vi.unstubAllEnvs());

const bytes = (d: Y.Doc) => Y.encodeStateAsUpdate(d) as Uint8Array<ArrayBuffer>;

test("a row whose snapshot has no marker (written by the app): containment is checked against the blob", async () => {
  const t = convexTest(schema, modules);
  const base = new Y.Doc();
  base.getText("t").insert(0, "imported by the app");
  // The app stored a snapshot itself: blob + yjsSnapshotId, no ykeep marker.
  const { id, blobId } = await t.run(async (ctx) => {
    const blobId = await ctx.storage.store(new Blob([bytes(base)]));
    const workspaceId = await ctx.db.insert("workspaces", { name: "w" });
    const id = await ctx.db.insert("documents", { title: "imported", workspaceId, ownerId: "ada", yjsSnapshotId: blobId });
    return { id, blobId };
  });
  const path = `/ykeep/snapshots/document/${id}`;

  const stranger = new Y.Doc();
  stranger.getText("t").insert(0, "does not contain it");
  const refused = await t.fetch(path, { method: "POST", headers: AUTH, body: bytes(stranger) });
  expect(refused.status).toBe(409);
  expect(await refused.json()).toMatchObject({ error: { code: "conflict", currentSnapshotId: blobId } });

  const next = new Y.Doc();
  Y.applyUpdate(next, bytes(base));
  next.getText("t").insert(0, "edited: ");
  const ok = await t.fetch(path, { method: "POST", headers: AUTH, body: bytes(next) });
  expect(ok.status).toBe(200);
  const row = await t.query(internal.app.snapshotOf, { kind: "document", id });
  expect(row?.yjsSnapshotId).not.toBe(blobId);
  expect(await t.run(async (ctx) => ctx.storage.get(blobId))).toBeNull(); // replaced blob deleted
  const marker = await t.run(async (ctx) => (await ctx.db.get(id))?.yjsSnapshotMarker);
  expect(marker).toBeInstanceOf(ArrayBuffer); // from now on the row has a marker
});

test("a 413 is decided before the body is read when Content-Length is over the limit, and changes nothing", async () => {
  vi.stubEnv("YKEEP_MAX_SNAPSHOT_BYTES", "64");
  const t = convexTest(schema, modules);
  const id = await t.mutation(internal.app.createResource, { kind: "task" });
  const path = `/ykeep/snapshots/task/${id}`;
  const small = new Y.Doc();
  small.getText("t").insert(0, "ok");
  expect((await t.fetch(path, { method: "POST", headers: AUTH, body: bytes(small) })).status).toBe(200);
  const big = new Y.Doc();
  big.getText("t").insert(0, "x".repeat(100));
  const res = await t.fetch(path, { method: "POST", headers: AUTH, body: bytes(big) });
  expect(res.status).toBe(413);
  expect(await res.json()).toMatchObject({ error: { code: "too_large" } });
  const loaded = await t.fetch(path, { headers: AUTH });
  const d = new Y.Doc();
  Y.applyUpdate(d, new Uint8Array(await loaded.arrayBuffer()));
  expect(d.getText("t").toString()).toBe("ok");
  expect(await t.run(async (ctx) => (await ctx.db.system.query("_storage").collect()).length)).toBe(1);
});

test("precondition headers: both at once, If-None-Match other than *, empty If-Match are 400", async () => {
  const t = convexTest(schema, modules);
  const id = await t.mutation(internal.app.createResource, { kind: "document" });
  const d = new Y.Doc();
  d.getText("t").insert(0, "x");
  const cases: Record<string, string>[] = [{ "If-Match": "a", "If-None-Match": "*" }, { "If-None-Match": "abc" }, { "If-Match": "\"\"" }];
  for (const headers of cases) {
    const res = await t.fetch(`/ykeep/snapshots/document/${id}`, { method: "POST", headers: { ...AUTH, ...headers }, body: bytes(d) });
    expect(res.status, JSON.stringify(headers)).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: "bad_request" } });
  }
  // A quoted, weak If-Match naming the current snapshot works.
  const first = await t.fetch(`/ykeep/snapshots/document/${id}`, { method: "POST", headers: AUTH, body: bytes(d) });
  const { snapshotId } = (await first.json()) as { snapshotId: string };
  d.getText("t").insert(1, "y");
  const res = await t.fetch(`/ykeep/snapshots/document/${id}`, {
    method: "POST",
    headers: { ...AUTH, "If-Match": `W/"${snapshotId}"` },
    body: bytes(d),
  });
  expect(res.status).toBe(200);
});

test("an id of another table gets a JSON 404; ykeep answers nothing outside its routes", async () => {
  const t = convexTest(schema, modules);
  const taskId = await t.mutation(internal.app.createResource, { kind: "task" });
  const d = new Y.Doc();
  const wrongTable = await t.fetch(`/ykeep/snapshots/document/${taskId}`, { method: "POST", headers: AUTH, body: bytes(d) });
  expect(wrongTable.status).toBe(404);
  expect(await wrongTable.json()).toMatchObject({ error: { code: "not_found" } });
  // No catch-all: a path outside ykeep's routes (under the prefix or not) is the app's router's
  // own 404, not a ykeep answer.
  for (const path of ["/resources/document", "/ykeep/resources/document", `/snapshots/document/${taskId}`]) {
    const unknown = await t.fetch(path, { method: "POST", headers: AUTH, body: "{}" });
    expect(unknown.status, path).toBe(404);
    expect(unknown.headers.get("Access-Control-Allow-Origin"), path).toBeNull();
  }
});

test("a load whose blob is gone on every read is 503 snapshot_unavailable, and the row keeps its snapshot", async () => {
  const t = convexTest(schema, modules);
  const id = await t.mutation(internal.app.createResource, { kind: "document" });
  const path = `/ykeep/snapshots/document/${id}`;
  const doc = new Y.Doc();
  doc.getText("t").insert(0, "kept");
  const saved = await t.fetch(path, { method: "POST", headers: AUTH, body: bytes(doc) });
  expect(saved.status).toBe(200);
  const { snapshotId } = await saved.json();
  await t.run(async (ctx) => ctx.storage.delete(snapshotId));

  const res = await t.fetch(path, { headers: AUTH });
  expect(res.status).toBe(503);
  expect(await res.json()).toMatchObject({ error: { code: CODE.snapshotUnavailable } });
  const row = await t.query(internal.app.snapshotOf, { kind: "document", id });
  expect(row?.yjsSnapshotId).toBe(snapshotId); // nothing was deleted
});

test("readSnapshot reads SNAPSHOT_READ_TRIES times (3, as the embedded store) and follows a blob that is back", async () => {
  expect(SNAPSHOT_READ_TRIES).toBe(3);
  let reads = 0;
  await expect(
    readSnapshot(async () => {
      reads++;
      return null;
    }),
  ).rejects.toMatchObject({ status: 503, code: CODE.snapshotUnavailable });
  expect(reads).toBe(SNAPSHOT_READ_TRIES);

  reads = 0;
  const found = await readSnapshot(async () => (++reads < SNAPSHOT_READ_TRIES ? null : "blob"));
  expect(found).toBe("blob");
  expect(reads).toBe(SNAPSHOT_READ_TRIES);
});
