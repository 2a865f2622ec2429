// Deploy step 1 of removing the legacy `content` fields, on rows that have them:
// legacySchema.ts + migrations:runClearLegacyContent, then the rows fit schema.ts.
import { convexTest } from "convex-test";
import { afterEach, beforeEach, expect, test, vi } from "vitest";
import * as Y from "yjs";
import legacySchema from "./legacySchema";
import schema from "./schema";
import { modules } from "./test.setup";
import { internal } from "./_generated/api";

const SECRET = "migration-secret";

beforeEach(() => vi.stubEnv("YKEEP_SECRET", SECRET));
afterEach(() => vi.unstubAllEnvs());

function state(text: string): Uint8Array {
  const doc = new Y.Doc();
  doc.getText("t").insert(0, text);
  return Y.encodeStateAsUpdate(doc);
}

test("the final schema refuses a row with legacy content (why step 1 exists)", async () => {
  const t = convexTest(schema, modules);
  await expect(
    t.run((ctx) => ctx.db.insert("documents", { content: { type: "doc" } } as never)),
  ).rejects.toThrow(/content/);
});

test("clearing legacy content keeps ids, snapshots and app fields, and the rows then fit the final schema", async () => {
  const t = convexTest(legacySchema, modules);
  const proseMirror = { type: "doc", content: [{ type: "paragraph", content: [{ type: "text", text: "old" }] }] };
  const excalidraw = JSON.stringify({ type: "excalidraw", elements: [{ id: "a", type: "rectangle" }] });
  const ids = await t.run(async (ctx) => {
    const docs = [];
    for (let i = 0; i < 7; i++) {
      docs.push(await ctx.db.insert("documents", { title: `doc ${i}`, content: i === 3 ? undefined : proseMirror }));
    }
    const dias = [];
    for (let i = 0; i < 4; i++) dias.push(await ctx.db.insert("diagrams", { title: `dia ${i}`, content: excalidraw }));
    const task = await ctx.db.insert("tasks", { title: "task" });
    return { docs, dias, task };
  });
  // Some rows already have Yjs snapshots (saved through the real route).
  const saved: Record<string, string> = {};
  for (const [kind, id, text] of [
    ["document", ids.docs[0], "doc zero"],
    ["document", ids.docs[5], "doc five"],
    ["diagram", ids.dias[1], "dia one"],
    ["task", ids.task, "task text"],
  ] as const) {
    const res = await t.fetch(`/snapshots/${kind}/${id}`, {
      method: "POST",
      headers: { Authorization: `Bearer ${SECRET}` },
      body: state(text) as Uint8Array<ArrayBuffer>,
    });
    expect(res.status).toBe(200);
    saved[id] = ((await res.json()) as { snapshotId: string }).snapshotId;
  }
  const before = await t.run(async (ctx) => ({
    documents: await ctx.db.query("documents").collect(),
    diagrams: await ctx.db.query("diagrams").collect(),
    tasks: await ctx.db.query("tasks").collect(),
  }));
  expect(before.documents.filter((r) => r.content !== undefined)).toHaveLength(6);
  expect(before.diagrams.filter((r) => r.content !== undefined)).toHaveLength(4);

  const result = await t.action(internal.migrations.runClearLegacyContent, { batchSize: 3 });
  expect(result).toEqual({ documents: 6, diagrams: 4 });

  const after = await t.run(async (ctx) => ({
    documents: await ctx.db.query("documents").collect(),
    diagrams: await ctx.db.query("diagrams").collect(),
    tasks: await ctx.db.query("tasks").collect(),
  }));
  for (const table of ["documents", "diagrams", "tasks"] as const) {
    expect(after[table].map((r) => r._id)).toEqual(before[table].map((r) => r._id));
    for (const [i, row] of after[table].entries()) {
      expect("content" in row).toBe(false);
      const { content: _legacy, ...rest } = before[table][i] as Record<string, unknown>;
      expect(row).toEqual(rest);
    }
  }
  // Every legacy value is in the archive, the rows without a snapshot above all.
  const archived = await t.run((ctx) => ctx.db.query("ykeepLegacyContent").collect());
  const wanted = [...before.documents, ...before.diagrams]
    .filter((r) => r.content !== undefined)
    .map((r) => ({ rowId: r._id as string, content: r.content }));
  expect(archived.map((a) => ({ rowId: a.rowId, content: a.content })).sort((a, b) => a.rowId.localeCompare(b.rowId)))
    .toEqual(wanted.sort((a, b) => a.rowId.localeCompare(b.rowId)));
  for (const a of archived) expect(a.table).toBe(before.documents.some((r) => r._id === a.rowId) ? "documents" : "diagrams");

  // Snapshots are intact and still load.
  for (const [kind, id, text] of [
    ["document", ids.docs[0], "doc zero"],
    ["diagram", ids.dias[1], "dia one"],
    ["task", ids.task, "task text"],
  ] as const) {
    const res = await t.fetch(`/snapshots/${kind}/${id}`, { headers: { Authorization: `Bearer ${SECRET}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get("etag")).toBe(`"${saved[id]}"`);
    const doc = new Y.Doc();
    Y.applyUpdate(doc, new Uint8Array(await res.arrayBuffer()));
    expect(doc.getText("t").toString()).toBe(text);
  }

  // Every migrated row is valid under the final schema (deploy step 2 would accept it).
  const t2 = convexTest(schema, modules);
  await t2.run(async (ctx) => {
    for (const table of ["documents", "diagrams", "tasks"] as const) {
      for (const row of after[table]) {
        const { _id, _creationTime, ...fields } = row;
        await ctx.db.insert(table, fields as never);
      }
    }
  });

  // Running it again finds nothing to do, and archives nothing twice.
  expect(await t.action(internal.migrations.runClearLegacyContent, {})).toEqual({ documents: 0, diagrams: 0 });
  expect(await t.run((ctx) => ctx.db.query("ykeepLegacyContent").collect())).toHaveLength(10);
});
