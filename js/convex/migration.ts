// The legacy-content migration: each row's old `content` (ProseMirror JSON, Excalidraw
// elements, ...) ends up either in the row's Yjs snapshot and the archive, or only in the
// archive when the snapshot already holds the document, or still on its row (reported).
// Nothing is destroyed: a value leaves its row only in the mutation that archives it.
//
//   npx convex run ykeep:migrateLegacyContent '{"dryRun": true}'   counts, changes nothing
//   npx convex run ykeep:migrateLegacyContent                      runs; rerun until "done"
//   npx convex run ykeep:dropLegacyArchive '{"confirm": "drop the legacy archive"}'
//
// Per row with content:
//   row deleted (tombstone)              → archive, clear
//   snapshot holds content               → archive, clear (the snapshot is the live document)
//   snapshot empty,  converter succeeds  → merge the converted update into it, save, archive, clear
//   no snapshot,     converter succeeds  → store the converted update, point the row at it, archive, clear
//   no converter, or conversion fails    → untouched, reported
// The mutation that commits a row re-checks that its content and snapshot did not change since
// the action read them; a row that did is left as it now is and reported as `changed`.
import { v } from "convex/values";
import { internalActionGeneric, internalMutationGeneric, internalQueryGeneric } from "convex/server";
import type { GenericActionCtx, GenericDataModel } from "convex/server";
import type { GenericId } from "convex/values";
import * as Y from "yjs";
import type { Ykeep } from "./config.js";
import { isEmptyDocument } from "./convert.js";
import { pointAt, rowOf } from "./functions.js";
import type { SnapshotRow } from "./functions.js";
import { KINDS, kindValidator } from "./schema.js";
import type { Kind } from "./schema.js";
import { checkUpdate } from "./yupdate.js";

const DEFAULT_BATCH_SIZE = 25;
/** A run stops after this long and reports where to resume (an action may run 10 minutes). */
const DEFAULT_TIME_BUDGET_MS = 5 * 60 * 1000;
/** Untouched rows listed one by one in a report; the counts cover all of them. */
const MAX_LISTED = 100;
export const DROP_ARCHIVE_CONFIRMATION = "drop the legacy archive";

/** What the migration does (or, in a dry run, would do) with one row. */
export type Outcome =
  /** No legacy content on the row: nothing to do. */
  | "none"
  /** Converted into a new snapshot. */
  | "converted"
  /** Converted and merged into a snapshot whose document was empty. */
  | "merged"
  /** The snapshot holds the document (or the row is deleted): archived only. */
  | "archived"
  /** Left as it is: no converter for the kind. */
  | "noConverter"
  /** Left as it is: the converter refused the content. */
  | "conversionFailed"
  /** Left as it is: the row names a snapshot blob that cannot be read. */
  | "snapshotUnreadable"
  /** Left as it now is: the row changed while the migration looked at it; the next run sees it. */
  | "changed";

const UNTOUCHED: readonly Outcome[] = ["noConverter", "conversionFailed", "snapshotUnreadable", "changed"];

export type TableReport = Record<Outcome, number> & { rows: number };

export type MigrationReport = {
  dryRun: boolean;
  /** True when every table was read to its end; otherwise resume with `next`. */
  done: boolean;
  next: Resume | null;
  tables: Record<string, TableReport>;
  /** Rows left with their content, with why (the first 100; the counts cover all). */
  untouched: { table: string; rowId: string; outcome: Outcome; message?: string }[];
};

export type Resume = { kind: Kind; cursor: string | null };

const committedOutcome = v.union(v.literal("converted"), v.literal("merged"), v.literal("archived"));

function emptyTableReport(): TableReport {
  return {
    rows: 0,
    none: 0,
    converted: 0,
    merged: 0,
    archived: 0,
    noConverter: 0,
    conversionFailed: 0,
    snapshotUnreadable: 0,
    changed: 0,
  };
}

/** Deep equality of two Convex values (content is read once by the action and re-checked by the mutation). */
export function sameValue(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (a instanceof ArrayBuffer || b instanceof ArrayBuffer) {
    if (!(a instanceof ArrayBuffer && b instanceof ArrayBuffer) || a.byteLength !== b.byteLength) return false;
    const x = new Uint8Array(a);
    const y = new Uint8Array(b);
    return x.every((byte, i) => byte === y[i]);
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => sameValue(x, b[i]));
  }
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return (
    ka.length === kb.length &&
    ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && sameValue((a as never)[k], (b as never)[k]))
  );
}

function contentOf(row: SnapshotRow, ykeep: Ykeep): unknown {
  return (row as Record<string, unknown>)[ykeep.legacy.contentField];
}

/** One page of a resource table: each row's id, snapshot, tombstone and legacy content. */
const legacyPage = (ykeep: Ykeep) =>
  internalQueryGeneric({
    args: { kind: kindValidator, cursor: v.union(v.string(), v.null()), batchSize: v.number() },
    handler: async (ctx, { kind, cursor, batchSize }) => {
      const page = await ctx.db.query(ykeep.tables[kind]).paginate({ cursor, numItems: batchSize });
      return {
        rows: (page.page as SnapshotRow[]).map((row) => ({
          rowId: row._id as string,
          snapshotId: (row.yjsSnapshotId as string | undefined) ?? null,
          deleted: row.deletedAt !== undefined,
          content: contentOf(row, ykeep),
        })),
        isDone: page.isDone,
        cursor: page.continueCursor,
      };
    },
  });

/**
 * Commits one row, if it is as the action saw it: archives its content, clears it from the row,
 * and for `converted` / `merged` points the row at the new snapshot (deleting the empty one a
 * merge replaced). Otherwise deletes the new blob and changes nothing.
 */
const commitLegacy = (ykeep: Ykeep) =>
  internalMutationGeneric({
    args: {
      kind: kindValidator,
      rowId: v.string(),
      outcome: committedOutcome,
      /** The content and snapshot id the action read. */
      content: v.any(),
      snapshotId: v.union(v.string(), v.null()),
      snapshot: v.optional(
        v.object({ blobId: v.id("_storage"), marker: v.bytes(), size: v.number() }),
      ),
    },
    handler: async (ctx, args) => {
      const row = await rowOf(ctx.db, ykeep, args.kind, args.rowId);
      const unchanged =
        row !== null &&
        ((row.yjsSnapshotId as string | undefined) ?? null) === args.snapshotId &&
        sameValue(contentOf(row, ykeep), args.content) &&
        contentOf(row, ykeep) !== undefined;
      if (!unchanged || (args.outcome !== "archived") !== (args.snapshot !== undefined)) {
        if (args.snapshot !== undefined) await ctx.storage.delete(args.snapshot.blobId);
        return { ok: false as const };
      }
      const table = ykeep.tables[args.kind];
      await ctx.db.insert(ykeep.legacy.archiveTable, {
        table,
        rowId: args.rowId,
        content: args.content,
        outcome: args.outcome,
        archivedAt: Date.now(),
      });
      const { blobId, marker, size } = args.snapshot ?? {};
      await ctx.db.patch(row._id, {
        [ykeep.legacy.contentField]: undefined,
        ...(blobId === undefined ? {} : pointAt(blobId, marker!, size!)),
      });
      // The merged snapshot contains the empty one it replaces; delete that only now that the
      // row no longer names it, in this transaction.
      if (args.outcome === "merged" && args.snapshotId !== null) {
        await ctx.storage.delete(args.snapshotId as GenericId<"_storage">);
      }
      return { ok: true as const };
    },
  });

type Row = { rowId: string; snapshotId: string | null; deleted: boolean; content: unknown };

type Plan =
  | { outcome: "none" | "noConverter" | "snapshotUnreadable" | "archived" }
  | { outcome: "conversionFailed"; message: string }
  /** `update` is the new snapshot, checked as the save route checks one; `marker` its Yjs snapshot. */
  | { outcome: "converted" | "merged"; update: Uint8Array; marker: Uint8Array };

/** What to do with one row, without writing anything. */
async function plan(ctx: GenericActionCtx<GenericDataModel>, ykeep: Ykeep, kind: Kind, row: Row): Promise<Plan> {
  if (row.content === undefined) return { outcome: "none" };
  if (row.deleted) return { outcome: "archived" };
  let current: Uint8Array | null = null;
  if (row.snapshotId !== null) {
    const blob = await ctx.storage.get(row.snapshotId as GenericId<"_storage">);
    if (blob === null) return { outcome: "snapshotUnreadable" };
    current = new Uint8Array(await blob.arrayBuffer());
    try {
      if (!isEmptyDocument(current)) return { outcome: "archived" };
    } catch {
      return { outcome: "snapshotUnreadable" };
    }
  }
  const converter = ykeep.legacy.converters[kind];
  if (converter === undefined) return { outcome: "noConverter" };
  try {
    const converted = converter.toUpdate(row.content);
    const update = current === null ? converted : Y.mergeUpdates([current, converted]);
    return { outcome: current === null ? "converted" : "merged", update, marker: checkUpdate(update).marker };
  } catch (e) {
    // Whatever fails here (the converter refusing the content, an app's converter throwing, its
    // output not decoding), this row cannot be converted: it stays as it is, reported.
    return { outcome: "conversionFailed", message: `${converter.name}: ${e instanceof Error ? e.message : String(e)}` };
  }
}

/** The migration: one run reads pages until every table is done or the time budget is spent. */
const migrateLegacyContent = (ykeep: Ykeep) =>
  internalActionGeneric({
    args: {
      dryRun: v.optional(v.boolean()),
      batchSize: v.optional(v.number()),
      /** Where an earlier run stopped (its report's `next`). */
      resume: v.optional(v.object({ kind: kindValidator, cursor: v.union(v.string(), v.null()) })),
      /** Stop after this many pages (for tests and careful operators); default: the time budget. */
      maxPages: v.optional(v.number()),
    },
    handler: async (ctx, args): Promise<MigrationReport> => {
      const dryRun = args.dryRun ?? false;
      const batchSize = args.batchSize ?? DEFAULT_BATCH_SIZE;
      if (!Number.isSafeInteger(batchSize) || batchSize < 1 || batchSize > 1000) {
        throw new Error(`ykeep migration: batchSize must be 1-1000, got ${batchSize}`);
      }
      const started = Date.now();
      const report: MigrationReport = { dryRun, done: false, next: null, tables: {}, untouched: [] };
      let pages = 0;
      const first = args.resume === undefined ? 0 : KINDS.indexOf(args.resume.kind);
      for (let k = first; k < KINDS.length; k++) {
        const kind = KINDS[k];
        const table = ykeep.tables[kind];
        const counts = (report.tables[table] = emptyTableReport());
        let cursor = k === first && args.resume !== undefined ? args.resume.cursor : null;
        for (;;) {
          if ((args.maxPages !== undefined && pages >= args.maxPages) || Date.now() - started > DEFAULT_TIME_BUDGET_MS) {
            report.next = { kind, cursor };
            console.log(`ykeep migration: stopped at ${table}; resume with`, JSON.stringify({ resume: report.next }));
            return report;
          }
          const page: { rows: Row[]; isDone: boolean; cursor: string } = await ctx.runQuery(
            ykeep.ref<"query">("legacyPage"),
            { kind, cursor, batchSize },
          );
          pages += 1;
          for (const row of page.rows) {
            counts.rows += 1;
            const outcome = await migrateRow(ctx, ykeep, kind, row, dryRun, report);
            counts[outcome] += 1;
          }
          console.log(`ykeep migration${dryRun ? " (dry run)" : ""}: ${table}: ${counts.rows} rows read`, JSON.stringify(counts));
          if (page.isDone) break;
          cursor = page.cursor;
        }
      }
      report.done = true;
      return report;
    },
  });

async function migrateRow(
  ctx: GenericActionCtx<GenericDataModel>,
  ykeep: Ykeep,
  kind: Kind,
  row: Row,
  dryRun: boolean,
  report: MigrationReport,
): Promise<Outcome> {
  const table = ykeep.tables[kind];
  const p = await plan(ctx, ykeep, kind, row);
  let outcome: Outcome = p.outcome;
  if (!dryRun && (p.outcome === "archived" || p.outcome === "converted" || p.outcome === "merged")) {
    let snapshot: { blobId: GenericId<"_storage">; marker: ArrayBuffer; size: number } | undefined;
    if (p.outcome === "converted" || p.outcome === "merged") {
      const { marker } = p;
      const blobId = await ctx.storage.store(new Blob([p.update as Uint8Array<ArrayBuffer>], { type: "application/octet-stream" }));
      snapshot = { blobId, marker: marker.slice().buffer as ArrayBuffer, size: p.update.byteLength };
    }
    const result: { ok: boolean } = await ctx.runMutation(ykeep.ref<"mutation">("commitLegacy"), {
      kind,
      rowId: row.rowId,
      outcome: p.outcome,
      content: row.content,
      snapshotId: row.snapshotId,
      snapshot,
    });
    if (!result.ok) outcome = "changed";
  }
  if (UNTOUCHED.includes(outcome) && report.untouched.length < MAX_LISTED) {
    report.untouched.push({
      table,
      rowId: row.rowId,
      outcome,
      ...(p.outcome === "conversionFailed" ? { message: p.message } : {}),
    });
  }
  return outcome;
}

/**
 * Deletes the archive, one page per mutation. Never called by the migration: run it on its
 * own, once the converted documents are checked, with the confirmation text.
 */
const dropArchivePage = (ykeep: Ykeep) =>
  internalMutationGeneric({
    args: { batchSize: v.number() },
    handler: async (ctx, { batchSize }) => {
      const rows = await ctx.db.query(ykeep.legacy.archiveTable).take(batchSize);
      for (const row of rows) await ctx.db.delete(row._id);
      return { deleted: rows.length };
    },
  });

const dropLegacyArchive = (ykeep: Ykeep) =>
  internalActionGeneric({
    args: { confirm: v.string(), batchSize: v.optional(v.number()) },
    handler: async (ctx, { confirm, batchSize }): Promise<{ deleted: number }> => {
      if (confirm !== DROP_ARCHIVE_CONFIRMATION) {
        throw new Error(`ykeep: dropLegacyArchive deletes every archived legacy value; pass {"confirm": "${DROP_ARCHIVE_CONFIRMATION}"}`);
      }
      let deleted = 0;
      for (;;) {
        const r: { deleted: number } = await ctx.runMutation(ykeep.ref<"mutation">("dropArchivePage"), {
          batchSize: batchSize ?? 100,
        });
        deleted += r.deleted;
        if (r.deleted === 0) return { deleted };
      }
    },
  });

/** The migration's internal functions, bound to the app's tables and converters. */
export function migrationFunctions(ykeep: Ykeep) {
  return {
    legacyPage: legacyPage(ykeep),
    commitLegacy: commitLegacy(ykeep),
    migrateLegacyContent: migrateLegacyContent(ykeep),
    dropArchivePage: dropArchivePage(ykeep),
    dropLegacyArchive: dropLegacyArchive(ykeep),
  };
}
