// The legacy-content migration on the example app (legacySchema.ts, `ykeep:migrateLegacyContent`),
// with rows of every case. After each run, every legacy value is either still on its row or
// in the archive, exactly as it was; `expectNothingLost` fails the test otherwise.
import { convexTest } from "convex-test";
import { afterEach, beforeEach, expect, test, vi } from "vitest";
import * as Y from "yjs";
import { Node } from "prosemirror-model";
import { defineYkeep, DROP_ARCHIVE_CONFIRMATION, excalidrawElementsOf } from "ykeep/convex";
import type { MigrationReport } from "ykeep/convex";
import { prosemirrorJSONOf } from "ykeep/convex/prosemirror";
import legacySchema from "./legacySchema";
import schema from "./schema";
import { editorSchema } from "./editorSchema";
import { modules } from "./test.setup";
import { internal } from "./_generated/api";
import { PREFIX } from "./test.helpers";

const SECRET = "migration-secret";
const AUTH = { Authorization: `Bearer ${SECRET}` };

beforeEach(() => vi.stubEnv("YKEEP_SECRET", SECRET));
afterEach(() => vi.unstubAllEnvs());

type T = ReturnType<typeof convexTest>;
type LegacyTable = "documents" | "diagrams";

const proseMirror = {
  type: "doc",
  content: [
    { type: "heading", attrs: { level: 1 }, content: [{ type: "text", text: "Quarterly plan" }] },
    {
      type: "paragraph",
      content: [
        { type: "text", text: "Ship the " },
        { type: "text", marks: [{ type: "strong" }], text: "migration" },
        { type: "text", text: " without losing 文書 or 🎉." },
      ],
    },
    {
      type: "bullet_list",
      content: [
        { type: "list_item", content: [{ type: "paragraph", content: [{ type: "text", text: "archive first" }] }] },
        { type: "list_item", content: [{ type: "paragraph", content: [{ type: "text", text: "then clear" }] }] },
      ],
    },
  ],
};

const elements = [
  {
    id: "rect-1",
    type: "rectangle",
    x: 10,
    y: 20,
    width: 200,
    height: 100,
    angle: 0,
    strokeColor: "#1e1e1e",
    backgroundColor: "transparent",
    version: 3,
    versionNonce: 123,
    isDeleted: false,
    boundElements: [{ id: "arrow-1", type: "arrow" }],
  },
  {
    id: "arrow-1",
    type: "arrow",
    x: 210,
    y: 70,
    width: 100,
    height: 0,
    angle: 0,
    points: [
      [0, 0],
      [100, 0],
    ],
    version: 2,
    versionNonce: 456,
    isDeleted: false,
    startBinding: { elementId: "rect-1", focus: 0, gap: 1 },
    endBinding: null,
  },
  { id: "text-1", type: "text", x: 30, y: 40, width: 80, height: 20, angle: 0, text: "Hello", fontSize: 20, version: 1, versionNonce: 7, isDeleted: false },
];
const scene = { type: "excalidraw", version: 2, source: "https://excalidraw.com", elements, appState: {}, files: {} };

function textState(text: string): Uint8Array<ArrayBuffer> {
  const doc = new Y.Doc();
  doc.getXmlFragment("prosemirror").insert(0, [new Y.XmlText(text)]);
  return Y.encodeStateAsUpdate(doc) as Uint8Array<ArrayBuffer>;
}

/** A document that had text once and lost all of it: empty, though its update is not. */
function emptiedState(): Uint8Array<ArrayBuffer> {
  const doc = new Y.Doc();
  doc.getText("t").insert(0, "gone");
  doc.getText("t").delete(0, 4);
  return Y.encodeStateAsUpdate(doc) as Uint8Array<ArrayBuffer>;
}

async function save(t: T, kind: "document" | "diagram", id: string, body: Uint8Array<ArrayBuffer>): Promise<string> {
  const res = await t.fetch(`${PREFIX}/snapshots/${kind}/${id}`, { method: "POST", headers: AUTH, body });
  expect(res.status).toBe(200);
  return ((await res.json()) as { snapshotId: string }).snapshotId;
}

async function load(t: T, kind: "document" | "diagram", id: string): Promise<Uint8Array> {
  const res = await t.fetch(`${PREFIX}/snapshots/${kind}/${id}`, { headers: AUTH });
  expect(res.status).toBe(200);
  return new Uint8Array(await res.arrayBuffer());
}

/** Inserts a row of the app's table with its own fields and, when given, legacy content. */
async function seed(t: T, table: LegacyTable, content: unknown): Promise<string> {
  return t.run(async (ctx) => {
    const workspaceId = await ctx.db.insert("workspaces", { name: "w" });
    const fields = table === "documents" ? { title: "doc", workspaceId, ownerId: "ada" } : { name: "dia", workspaceId };
    return (await ctx.db.insert(table, { ...fields, ...(content === undefined ? {} : { content }) } as never)) as string;
  });
}

type Seeded = { table: LegacyTable; rowId: string; content: unknown };

/**
 * A value's JSON with object keys sorted: Convex keeps an object's fields, not their order, so
 * this is "the same value" for objects, and byte for byte for strings (a JSON string stays one).
 */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/** Every seeded value is on its row, or archived for that row exactly as it was. */
async function expectNothingLost(t: T, seeded: Seeded[]) {
  const { rows, archive } = await t.run(async (ctx) => ({
    rows: [...(await ctx.db.query("documents").collect()), ...(await ctx.db.query("diagrams").collect())],
    archive: await ctx.db.query("legacyContent").collect(),
  }));
  for (const s of seeded) {
    const row = rows.find((r) => r._id === s.rowId) as Record<string, unknown> | undefined;
    expect(row, `row ${s.rowId}`).toBeDefined();
    const kept = row!.content;
    const archived = archive.filter((a) => a.rowId === s.rowId && a.table === s.table);
    if (kept !== undefined) {
      expect(canonical(kept), `content on ${s.table} ${s.rowId}`).toBe(canonical(s.content));
      expect(archived, `a row that keeps its content is not archived: ${s.rowId}`).toHaveLength(0);
    } else {
      expect(archived, `archive of ${s.table} ${s.rowId}`).toHaveLength(1);
      expect(canonical(archived[0].content), `archived ${s.table} ${s.rowId}`).toBe(canonical(s.content));
    }
  }
}

const migrate = (t: T, args: Record<string, unknown> = {}) =>
  t.action(internal.ykeep.migrateLegacyContent, args) as Promise<MigrationReport>;

test("the final schema refuses a row with legacy content (why deploy step 1 exists)", async () => {
  const t = convexTest(schema, modules);
  await expect(seed(t, "documents", proseMirror)).rejects.toThrow(/content/);
});

test("every case: converted, merged into an empty snapshot, archived beside a full one, refused; nothing lost", async () => {
  const t = convexTest(legacySchema, modules);
  const seeded: Seeded[] = [];
  const add = async (table: LegacyTable, content: unknown) => {
    const rowId = await seed(t, table, content);
    if (content !== undefined) seeded.push({ table, rowId, content });
    return rowId;
  };
  const plain = await add("documents", proseMirror); // no snapshot → converted
  const asString = await add("documents", JSON.stringify(proseMirror)); // a JSON string → converted
  const full = await add("documents", proseMirror); // snapshot with content → archived only
  const fullSnapshot = await save(t, "document", full, textState("the live document"));
  const empty = await add("documents", proseMirror); // empty snapshot → merged
  const emptySnapshot = await save(t, "document", empty, new Uint8Array([0, 0]));
  const emptied = await add("documents", proseMirror); // snapshot whose text was all deleted → merged
  await save(t, "document", emptied, emptiedState());
  const unknownNode = await add("documents", { type: "doc", content: [{ type: "video", attrs: { src: "x" } }] });
  const noContent = await add("documents", undefined);
  const deleted = await add("documents", proseMirror);
  await save(t, "document", deleted, textState("to be deleted"));
  expect((await t.fetch(`${PREFIX}/snapshots/document/${deleted}`, { method: "DELETE", headers: AUTH })).status).toBe(204);
  const drawing = await add("diagrams", scene);
  const drawingArray = await add("diagrams", JSON.stringify(elements));
  const notADrawing = await add("diagrams", { type: "excalidraw", elements: "nope" });

  // A dry run counts and changes nothing.
  const before = await t.run(async (ctx) => ({
    rows: [...(await ctx.db.query("documents").collect()), ...(await ctx.db.query("diagrams").collect())],
    blobs: (await ctx.db.system.query("_storage").collect()).length,
  }));
  const dry = await migrate(t, { dryRun: true, batchSize: 2 });
  expect(dry.done).toBe(true);
  expect(dry.tables.documents).toMatchObject({ rows: 8, none: 1, converted: 2, merged: 2, archived: 2, conversionFailed: 1 });
  expect(dry.tables.diagrams).toMatchObject({ rows: 3, converted: 2, conversionFailed: 1 });
  const afterDry = await t.run(async (ctx) => ({
    rows: [...(await ctx.db.query("documents").collect()), ...(await ctx.db.query("diagrams").collect())],
    blobs: (await ctx.db.system.query("_storage").collect()).length,
  }));
  expect(afterDry).toEqual(before);
  expect(await t.run((ctx) => ctx.db.query("legacyContent").collect())).toHaveLength(0);

  // The run, in pages of two, stopped after three pages and resumed where it stopped.
  const first = await migrate(t, { batchSize: 2, maxPages: 3 });
  expect(first.done).toBe(false);
  expect(first.next).toMatchObject({ kind: "document" });
  await expectNothingLost(t, seeded);
  const rest = await migrate(t, { batchSize: 2, resume: first.next });
  expect(rest.done).toBe(true);
  await expectNothingLost(t, seeded);
  const total = (k: keyof MigrationReport["tables"][string], table: string) =>
    (first.tables[table]?.[k] ?? 0) + (rest.tables[table]?.[k] ?? 0);
  expect(total("converted", "documents")).toBe(2);
  expect(total("merged", "documents")).toBe(2);
  expect(total("archived", "documents")).toBe(2);
  expect(total("conversionFailed", "documents")).toBe(1);
  expect(total("converted", "diagrams")).toBe(2);
  expect(total("conversionFailed", "diagrams")).toBe(1);
  expect([...first.untouched, ...rest.untouched].map((u) => [u.rowId, u.outcome]).sort()).toEqual(
    [
      [unknownNode, "conversionFailed"],
      [notADrawing, "conversionFailed"],
    ].sort(),
  );
  expect(rest.untouched.concat(first.untouched).every((u) => u.outcome !== "conversionFailed" || /prosemirror|excalidraw/.test(u.message ?? ""))).toBe(true);

  // Each converted document is its content, in the layout the editors' bindings read.
  const normalized = Node.fromJSON(editorSchema, proseMirror).toJSON();
  for (const id of [plain, asString, empty, emptied]) {
    expect(prosemirrorJSONOf(await load(t, "document", id), editorSchema), id).toEqual(normalized);
  }
  for (const id of [drawing, drawingArray]) {
    expect(excalidrawElementsOf(await load(t, "diagram", id)), id).toEqual(elements);
  }
  // The full snapshot is untouched (same blob); the emptied one was replaced and its blob deleted.
  const rows = await t.run(async (ctx) => ({
    full: await ctx.db.get(full as never),
    empty: await ctx.db.get(empty as never),
    deleted: await ctx.db.get(deleted as never),
    noContent: await ctx.db.get(noContent as never),
  }));
  expect((rows.full as { yjsSnapshotId?: string }).yjsSnapshotId).toBe(fullSnapshot);
  expect(new TextDecoder().decode(await load(t, "document", full))).toContain("the live document");
  expect((rows.empty as { yjsSnapshotId?: string }).yjsSnapshotId).not.toBe(emptySnapshot);
  expect(await t.run(async (ctx) => ctx.storage.get(emptySnapshot as never))).toBeNull();
  expect((rows.deleted as { deletedAt?: number; yjsSnapshotId?: string }).yjsSnapshotId).toBeUndefined();
  // The app's own fields are as they were.
  expect(rows.full).toMatchObject({ title: "doc", ownerId: "ada" });
  expect(rows.noContent).toMatchObject({ title: "doc", ownerId: "ada" });
  // Storage holds exactly the blobs rows point at.
  const { pointed, stored } = await t.run(async (ctx) => ({
    pointed: [...(await ctx.db.query("documents").collect()), ...(await ctx.db.query("diagrams").collect())]
      .map((r) => r.yjsSnapshotId)
      .filter((x) => x !== undefined)
      .sort(),
    stored: (await ctx.db.system.query("_storage").collect()).map((b) => b._id).sort(),
  }));
  expect(stored).toEqual(pointed);

  // Idempotent: a second run changes nothing and archives nothing twice.
  const archivedBefore = await t.run((ctx) => ctx.db.query("legacyContent").collect());
  const again = await migrate(t);
  expect(again.done).toBe(true);
  expect(again.tables.documents).toMatchObject({ converted: 0, merged: 0, archived: 0, conversionFailed: 1, none: 7 });
  expect(await t.run((ctx) => ctx.db.query("legacyContent").collect())).toEqual(archivedBefore);
  await expectNothingLost(t, seeded);

  // Rows whose content was migrated fit the final schema; the refused ones keep theirs and do not.
  const after = await t.run(async (ctx) => ({
    documents: await ctx.db.query("documents").collect(),
    diagrams: await ctx.db.query("diagrams").collect(),
  }));
  const t2 = convexTest(schema, modules);
  await t2.run(async (ctx) => {
    const ws = await ctx.db.insert("workspaces", { name: "w" });
    for (const table of ["documents", "diagrams"] as const) {
      for (const row of after[table]) {
        const { _id, _creationTime, yjsSnapshotId, workspaceId, ...fields } = row as Record<string, unknown>;
        if ([unknownNode, notADrawing].includes(_id as string)) {
          expect(fields.content).toBeDefined();
          continue;
        }
        await ctx.db.insert(table, { ...fields, workspaceId: ws } as never);
      }
    }
  });
});

test("a row that changed while the migration looked at it is left as it now is, and the new blob is deleted", async () => {
  const t = convexTest(legacySchema, modules);
  const id = await seed(t, "documents", proseMirror);
  const blobId = await t.run((ctx) => ctx.storage.store(new Blob([textState("converted")])));
  const marker = new Uint8Array(Y.encodeSnapshot(Y.snapshot(new Y.Doc()))).buffer as ArrayBuffer;
  // The app edited the legacy content after the action read it.
  await t.run((ctx) => ctx.db.patch(id as never, { content: { type: "doc", content: [] } } as never));
  const stale = await t.mutation(internal.ykeep.commitLegacy, {
    kind: "document",
    rowId: id,
    outcome: "converted",
    content: proseMirror,
    snapshotId: null,
    snapshot: { blobId, marker, size: 10 },
  });
  expect(stale).toEqual({ ok: false });
  expect(await t.run((ctx) => ctx.storage.get(blobId))).toBeNull();
  const row = (await t.run((ctx) => ctx.db.get(id as never))) as Record<string, unknown>;
  expect(row.content).toEqual({ type: "doc", content: [] });
  expect(row.yjsSnapshotId).toBeUndefined();
  expect(await t.run((ctx) => ctx.db.query("legacyContent").collect())).toHaveLength(0);
  // A save landing meanwhile (the row now names a snapshot) refuses the commit the same way.
  await save(t, "document", id, textState("saved meanwhile"));
  const raced = await t.mutation(internal.ykeep.commitLegacy, {
    kind: "document",
    rowId: id,
    outcome: "archived",
    content: { type: "doc", content: [] },
    snapshotId: null,
  });
  expect(raced).toEqual({ ok: false });
  expect(((await t.run((ctx) => ctx.db.get(id as never))) as Record<string, unknown>).content).toEqual({ type: "doc", content: [] });
});

test("a kind without a converter keeps its content on the row, reported", async () => {
  // The same app, with ykeep configured without converters.
  const bare = defineYkeep({ module: "ykeep" }).functions;
  const t = convexTest(legacySchema, { ...modules, "./ykeep.ts": async () => bare });
  const id = await seed(t, "diagrams", scene);
  const report = await migrate(t);
  expect(report.tables.diagrams).toMatchObject({ rows: 1, noConverter: 1 });
  expect(report.untouched).toEqual([{ table: "diagrams", rowId: id, outcome: "noConverter" }]);
  await expectNothingLost(t, [{ table: "diagrams", rowId: id, content: scene }]);
  const row = (await t.run((ctx) => ctx.db.get(id as never))) as Record<string, unknown>;
  expect(row.content).toEqual(scene);
});

test("only the explicit command drops the archive, and only with its confirmation", async () => {
  const t = convexTest(legacySchema, modules);
  const seeded: Seeded[] = [];
  for (let i = 0; i < 5; i++) {
    const rowId = await seed(t, "documents", proseMirror);
    seeded.push({ table: "documents", rowId, content: proseMirror });
  }
  await migrate(t, { batchSize: 2 });
  await migrate(t);
  expect(await t.run((ctx) => ctx.db.query("legacyContent").collect())).toHaveLength(5);
  await expect(t.action(internal.ykeep.dropLegacyArchive, { confirm: "yes" })).rejects.toThrow(/confirm/);
  expect(await t.run((ctx) => ctx.db.query("legacyContent").collect())).toHaveLength(5);
  await expectNothingLost(t, seeded);
  expect(await t.action(internal.ykeep.dropLegacyArchive, { confirm: DROP_ARCHIVE_CONFIRMATION, batchSize: 2 })).toEqual({
    deleted: 5,
  });
  expect(await t.run((ctx) => ctx.db.query("legacyContent").collect())).toHaveLength(0);
});

test("an app's converter that throws or returns bytes that are no update leaves its rows as they are, reported", async () => {
  const broken = defineYkeep({
    module: "ykeep",
    legacy: {
      converters: {
        document: { name: "garbage", toUpdate: () => new Uint8Array([9, 9, 9, 9]) },
        diagram: {
          name: "throws",
          toUpdate: () => {
            throw new TypeError("the app's bug");
          },
        },
      },
    },
  }).functions;
  const t = convexTest(legacySchema, { ...modules, "./ykeep.ts": async () => broken });
  const doc = await seed(t, "documents", proseMirror);
  const dia = await seed(t, "diagrams", scene);
  const report = await migrate(t);
  expect(report.done).toBe(true);
  expect(report.tables.documents).toMatchObject({ rows: 1, conversionFailed: 1 });
  expect(report.tables.diagrams).toMatchObject({ rows: 1, conversionFailed: 1 });
  expect(report.untouched.map((u) => [u.rowId, u.message?.split(":")[0]])).toEqual([
    [doc, "garbage"],
    [dia, "throws"],
  ]);
  await expectNothingLost(t, [
    { table: "documents", rowId: doc, content: proseMirror },
    { table: "diagrams", rowId: dia, content: scene },
  ]);
  expect(await t.run(async (ctx) => (await ctx.db.system.query("_storage").collect()).length)).toBe(0);
});
