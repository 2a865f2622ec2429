// What ykeep needs in the app's schema: the snapshot fields to spread into the app's own
// `defineTable(...)` calls, and the archive table of the legacy-content migration.
import { defineTable } from "convex/server";
import { v } from "convex/values";

/** The resource kinds of the store contract (`/snapshots/{kind}/{id}`). */
export const KINDS = ["document", "diagram", "task"] as const;
export type Kind = (typeof KINDS)[number];

export const kindValidator = v.union(v.literal("document"), v.literal("diagram"), v.literal("task"));

/** Kind → the app's table that holds that kind's rows. */
export type Tables = Record<Kind, string>;

/** The tables of the seed app; `defineYkeep({ tables })` takes the app's own names. */
export const DEFAULT_TABLES: Tables = { document: "documents", diagram: "diagrams", task: "tasks" };

/**
 * The fields ykeep reads and writes on a resource row. Spread them into the app's table:
 * `defineTable({ title: v.string(), ...snapshotFields })`. All are optional, so existing rows
 * stay valid; ykeep never inserts rows and patches only these fields.
 */
export const snapshotFields = {
  /** The current snapshot: a plain Yjs v1 update (full state) in file storage. */
  yjsSnapshotId: v.optional(v.id("_storage")),
  /**
   * The Yjs snapshot (state vector + delete set, `Y.encodeSnapshot`) of the blob that
   * `yjsSnapshotId` points at. A save whose state does not contain it is refused without
   * reading the blob. Left out when it would not fit in a Convex document.
   */
  yjsSnapshotMarker: v.optional(v.bytes()),
  /** Size in bytes of the current blob. */
  yjsSnapshotSize: v.optional(v.number()),
  /** When the current snapshot was saved, ms since the Unix epoch. */
  yjsSavedAt: v.optional(v.number()),
  /** Set by `DELETE .../snapshots/{kind}/{id}`: the resource is gone (ms since the epoch). */
  deletedAt: v.optional(v.number()),
};

/** The default name of the legacy-content archive table. */
export const DEFAULT_ARCHIVE_TABLE = "legacyContent";

/**
 * The archive of the legacy `content` values. The migration copies each value here in the
 * same mutation that clears it from its row; only `dropLegacyArchive`, run on its own, deletes
 * from it. Add it to the schema under the name given as `legacy.archiveTable`
 * (default `legacyContent`): `legacyContent: legacyContentTable`.
 */
export const legacyContentTable = defineTable({
  /** The resource table the value came from. */
  table: v.string(),
  rowId: v.string(),
  /** The value exactly as it was on the row. */
  content: v.any(),
  /** What the migration did with it: `converted`, `merged` or `archived` (the snapshot had content). */
  outcome: v.string(),
  archivedAt: v.number(),
}).index("by_row", ["table", "rowId"]);
