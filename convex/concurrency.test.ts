// Two (or more) savers on one resource, as two relays would save one room: no edit is
// lost, nothing is silently overwritten, and only the current blob stays in storage.
import { convexTest } from "convex-test";
import { afterEach, beforeEach, expect, test, vi } from "vitest";
import * as Y from "yjs";
import schema from "./schema";
import { modules } from "./test.setup";
import { internal } from "./_generated/api";
import { serialFetch } from "./test.helpers";

const SECRET = "concurrency-secret";
const AUTH = { Authorization: `Bearer ${SECRET}` };

beforeEach(() => vi.stubEnv("YKEEP_SECRET", SECRET));
afterEach(() => vi.unstubAllEnvs());

/** convex-test instance with its requests serialized (see test.helpers.ts). */
type T = { fetch: (path: string, init?: RequestInit) => Promise<Response>; run: ReturnType<typeof convexTest>["run"] };

function start(): { t: T; raw: ReturnType<typeof convexTest> } {
  const raw = convexTest(schema, modules);
  return { raw, t: { fetch: serialFetch(raw), run: raw.run } };
}

async function load(t: T, path: string): Promise<{ id: string | null; bytes: Uint8Array | null }> {
  const res = await t.fetch(path, { headers: AUTH });
  if (res.status === 404) return { id: null, bytes: null };
  expect(res.status).toBe(200);
  return { id: res.headers.get("etag")!.replace(/"/g, ""), bytes: new Uint8Array(await res.arrayBuffer()) };
}

function save(t: T, path: string, doc: Y.Doc, headers: Record<string, string> = {}) {
  return t.fetch(path, { method: "POST", headers: { ...AUTH, ...headers }, body: Y.encodeStateAsUpdate(doc) as Uint8Array<ArrayBuffer> });
}

/** What the relay does: save with If-Match; on 409 fetch, merge, and retry (here until it lands). */
async function relaySave(t: T, path: string, doc: Y.Doc, knownId: string | null): Promise<{ attempts: number }> {
  let expected = knownId;
  for (let attempts = 1; attempts <= 20; attempts++) {
    const res = await save(t, path, doc, expected === null ? { "If-None-Match": "*" } : { "If-Match": expected });
    if (res.status === 200) return { attempts };
    expect(res.status).toBe(409);
    const body = (await res.json()) as { error: { code: string; currentSnapshotId: string | null } };
    expect(body.error.code).toBe("conflict");
    const cur = await load(t, path);
    if (cur.bytes !== null) Y.applyUpdate(doc, cur.bytes);
    expected = cur.id;
  }
  throw new Error("save did not land in 20 attempts");
}

async function storageCount(t: T): Promise<number> {
  return t.run(async (ctx) => (await ctx.db.system.query("_storage").collect()).length);
}

test("two relays saving the same room concurrently: one conflict, merge, both edits kept", async () => {
  const { t, raw } = start();
  const id = await raw.mutation(internal.app.createResource, { kind: "document" });
  const path = `/ykeep/snapshots/document/${id}`;
  const base = new Y.Doc();
  base.getText("t").insert(0, "base");
  const first = await save(t, path, base);
  expect(first.status).toBe(200);
  const baseId = ((await first.json()) as { snapshotId: string }).snapshotId;

  // Both relays loaded the base snapshot, then each got different edits.
  const a = new Y.Doc();
  const b = new Y.Doc();
  Y.applyUpdate(a, Y.encodeStateAsUpdate(base));
  Y.applyUpdate(b, Y.encodeStateAsUpdate(base));
  a.getText("t").insert(0, "A:");
  b.getText("t").insert(4, ":B");
  b.getText("t").delete(0, 1); // a delete-only edit does not change b's own state vector entry for "base"

  const [ra, rb] = await Promise.all([
    save(t, path, a, { "If-Match": baseId }),
    save(t, path, b, { "If-Match": baseId }),
  ]);
  const statuses = [ra.status, rb.status].sort();
  expect(statuses).toEqual([200, 409]);
  const [winner, loser, loserDoc] = ra.status === 200 ? [ra, rb, b] : [rb, ra, a];
  const winnerId = ((await winner.json()) as { snapshotId: string }).snapshotId;
  const conflict = (await loser.json()) as { error: { code: string; currentSnapshotId: string } };
  expect(conflict.error).toMatchObject({ code: "conflict", currentSnapshotId: winnerId });

  // The loser merges the current snapshot and retries once, as the relay does.
  const cur = await load(t, path);
  expect(cur.id).toBe(winnerId);
  Y.applyUpdate(loserDoc, cur.bytes!);
  const retry = await save(t, path, loserDoc, { "If-Match": winnerId });
  expect(retry.status).toBe(200);

  const final = await load(t, path);
  const doc = new Y.Doc();
  Y.applyUpdate(doc, final.bytes!);
  const merged = new Y.Doc();
  Y.applyUpdate(merged, Y.encodeStateAsUpdate(a));
  Y.applyUpdate(merged, Y.encodeStateAsUpdate(b));
  expect(doc.getText("t").toString()).toBe(merged.getText("t").toString());
  expect(doc.getText("t").toString()).toContain("A:");
  expect(doc.getText("t").toString()).toContain(":B");
  expect(doc.getText("t").toString()).not.toContain("base"); // b's deletion of "b" survived
  expect(await storageCount(t)).toBe(1); // replaced blobs are deleted, the refused one never kept
});

test("saves without a precondition never replace a snapshot they do not contain", async () => {
  const { t, raw } = start();
  const id = await raw.mutation(internal.app.createResource, { kind: "diagram" });
  const path = `/ykeep/snapshots/diagram/${id}`;
  const a = new Y.Doc();
  const b = new Y.Doc();
  a.getText("t").insert(0, "from a");
  b.getText("t").insert(0, "from b");
  const [ra, rb] = await Promise.all([save(t, path, a), save(t, path, b)]);
  expect([ra.status, rb.status].sort()).toEqual([200, 409]);
  // The one that lost cannot win by saving again blindly either.
  const loserDoc = ra.status === 200 ? b : a;
  expect((await save(t, path, loserDoc)).status).toBe(409);
  // After merging the current state it can.
  Y.applyUpdate(loserDoc, (await load(t, path)).bytes!);
  expect((await save(t, path, loserDoc)).status).toBe(200);
  const doc = new Y.Doc();
  Y.applyUpdate(doc, (await load(t, path)).bytes!);
  expect(doc.getText("t").toString()).toContain("from a");
  expect(doc.getText("t").toString()).toContain("from b");

  // A delete-only state (same state vector, bigger delete set) is refused when stale...
  const stale = new Y.Doc();
  Y.applyUpdate(stale, (await load(t, path)).bytes!);
  const deleter = new Y.Doc();
  Y.applyUpdate(deleter, (await load(t, path)).bytes!);
  deleter.getText("t").delete(0, 4);
  expect((await save(t, path, deleter)).status).toBe(200);
  // ...the state without the deletion does not contain the saved one: 409, deletion kept.
  expect((await save(t, path, stale)).status).toBe(409);
  const after = new Y.Doc();
  Y.applyUpdate(after, (await load(t, path)).bytes!);
  expect(after.getText("t").toString()).toBe(deleter.getText("t").toString());
  expect(await storageCount(t)).toBe(1);
});

test("five savers racing with fetch-merge-retry: every edit survives", async () => {
  const { t, raw } = start();
  const id = await raw.mutation(internal.app.createResource, { kind: "task" });
  const path = `/ykeep/snapshots/task/${id}`;
  const docs = Array.from({ length: 5 }, (_, i) => {
    const d = new Y.Doc();
    d.getText("t").insert(0, `[edit ${i}]`);
    return d;
  });
  const results = await Promise.all(docs.map((d) => relaySave(t, path, d, null)));
  expect(results.some((r) => r.attempts > 1)).toBe(true); // they really did collide
  const final = new Y.Doc();
  Y.applyUpdate(final, (await load(t, path)).bytes!);
  for (let i = 0; i < 5; i++) expect(final.getText("t").toString()).toContain(`[edit ${i}]`);
  expect(await storageCount(t)).toBe(1);
});

test("the compare-and-set window: both saves pre-checked against the same snapshot, only one commits", async () => {
  const t = convexTest(schema, modules);
  const id = await t.mutation(internal.app.createResource, { kind: "document" });
  const path = `/ykeep/snapshots/document/${id}`;
  const base = new Y.Doc();
  base.getText("t").insert(0, "base");
  const first = await t.fetch(path, { method: "POST", headers: AUTH, body: Y.encodeStateAsUpdate(base) as Uint8Array<ArrayBuffer> });
  const baseId = ((await first.json()) as { snapshotId: string }).snapshotId;
  const edit = (s: string) => {
    const d = new Y.Doc();
    Y.applyUpdate(d, Y.encodeStateAsUpdate(base));
    d.getText("t").insert(0, s);
    return d;
  };
  const { checkUpdate } = await import("../js/convex/yupdate");
  // What two save actions do up to the commit: both passed the pre-check, both stored a blob.
  const outcome = await t.action(async (ctx) => {
    const out = [];
    const staged = [];
    for (const s of ["A", "B"]) {
      const bytes = Y.encodeStateAsUpdate(edit(s));
      const checked = checkUpdate(bytes);
      const blobId = await ctx.storage.store(new Blob([bytes as Uint8Array<ArrayBuffer>]));
      staged.push({ blobId, marker: checked.marker.slice().buffer, size: bytes.byteLength });
    }
    for (const s of staged) {
      for (const precondition of [{ type: "ifMatch" as const, snapshotId: baseId }]) {
        out.push(
          await ctx.runMutation(internal.ykeep.commitSave, {
            kind: "document",
            id,
            newSnapshotId: s.blobId,
            marker: s.marker,
            size: s.size,
            precondition,
          }),
        );
      }
    }
    return { out, staged: staged.map((s) => s.blobId) };
  });
  expect(outcome.out[0]).toMatchObject({ ok: true, snapshotId: outcome.staged[0] });
  expect(outcome.out[1]).toEqual({ ok: false, code: "conflict", currentSnapshotId: outcome.staged[0] });
  // The base blob was replaced and deleted; the refused blob was deleted too.
  const blobs = await t.run(async (ctx) => (await ctx.db.system.query("_storage").collect()).map((b) => b._id));
  expect(blobs).toEqual([outcome.staged[0]]);
});
