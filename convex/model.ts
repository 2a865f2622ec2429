// Table names, resource kinds and the fields every resource table carries.
// Shared by schema.ts (final), legacySchema.ts (deploy step 1) and the functions.
import { defineTable } from "convex/server";
import { v } from "convex/values";

/** Resource kind (as in URLs) -> table name. */
export const TABLES = {
  document: "documents",
  diagram: "diagrams",
  task: "tasks",
} as const;

export type Kind = keyof typeof TABLES;
export type TableName = (typeof TABLES)[Kind];

export const kindValidator = v.union(
  v.literal("document"),
  v.literal("diagram"),
  v.literal("task"),
);

/**
 * Fields of a resource row that ykeep reads and writes. Apps add their own fields
 * (title, owner, ...) next to these.
 */
export const snapshotFields = {
  /** The current snapshot: a plain Yjs v1 update (full state) in file storage. */
  yjsSnapshotId: v.optional(v.id("_storage")),
  /**
   * Yjs snapshot (state vector + delete set, `Y.encodeSnapshot`) of the blob that
   * `yjsSnapshotId` points at. The save mutation uses it to refuse a save whose
   * state does not contain the current one, without reading the blob.
   */
  yjsSnapshotMarker: v.optional(v.bytes()),
  /** Size in bytes of the current blob. */
  yjsSnapshotSize: v.optional(v.number()),
  /** When the current snapshot was saved, ms since the Unix epoch. */
  yjsSavedAt: v.optional(v.number()),
  /** Set by `DELETE /snapshots/{kind}/{id}`: the resource is gone (ms since epoch). */
  deletedAt: v.optional(v.number()),
  /** Optional app-facing label (used by the tests and the demo). */
  title: v.optional(v.string()),
};

/**
 * The archive of the legacy `content` values (ProseMirror JSON on documents, Excalidraw JSON
 * on diagrams): the migration copies each value here, in the same mutation that clears it
 * from its row, so that a row without a Yjs snapshot never loses its only copy. Nothing in
 * ykeep deletes from this table.
 */
export const legacyContentTable = defineTable({
  table: v.union(v.literal("documents"), v.literal("diagrams")),
  rowId: v.string(),
  content: v.any(),
  archivedAt: v.number(),
}).index("by_row", ["table", "rowId"]);
