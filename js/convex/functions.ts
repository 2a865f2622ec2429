// The internal functions behind the snapshot routes (routes.ts). The HTTP actions do the
// file-storage reads and writes (only actions may call ctx.storage.store/get); these
// queries and mutations hold every row decision, so each is atomic.
import { v } from "convex/values";
import { internalMutationGeneric, internalQueryGeneric } from "convex/server";
import type { GenericDatabaseReader, GenericDataModel, GenericDocument } from "convex/server";
import type { GenericId } from "convex/values";
import { kindValidator } from "./schema.js";
import type { Kind } from "./schema.js";
import type { Ykeep } from "./config.js";
import { snapshotContains } from "./yupdate.js";
import { CODE } from "./contract.js";
import type { Missing } from "./contract.js";

/** ykeep's fields of a resource row (the app's own fields are not ykeep's to read). */
export type SnapshotRow = GenericDocument & {
  _id: GenericId<string>;
  yjsSnapshotId?: GenericId<"_storage">;
  yjsSnapshotMarker?: ArrayBuffer;
  yjsSnapshotSize?: number;
  yjsSavedAt?: number;
  deletedAt?: number;
};

/** The row of `kind` with this id, or null when the id names no row of the kind's table. */
export async function rowOf(
  db: GenericDatabaseReader<GenericDataModel>,
  ykeep: Ykeep,
  kind: Kind,
  id: string,
): Promise<SnapshotRow | null> {
  const rowId = db.normalizeId(ykeep.tables[kind], id);
  return rowId === null ? null : ((await db.get(rowId)) as SnapshotRow | null);
}

/**
 * The live row, or why there is none: `not_found` (no row with this id in the kind's
 * table) or `resource_deleted` (the row carries the tombstone `deletedAt`).
 */
async function liveRow(db: GenericDatabaseReader<GenericDataModel>, ykeep: Ykeep, kind: Kind, id: string) {
  const row = await rowOf(db, ykeep, kind, id);
  if (row === null) return { row: null, missing: CODE.notFound as Missing };
  if (row.deletedAt !== undefined) return { row: null, missing: CODE.resourceDeleted as Missing };
  return { row, missing: null };
}

/** Yjs snapshot markers above this are not kept on the row (Convex documents max out at 1 MiB). */
const MAX_MARKER_BYTES = 512 * 1024;

/**
 * The snapshot fields of a row switched to the blob `blobId` (a save's commit, a migrated row):
 * its marker kept when it fits in a Convex document, its size, and now as the save time.
 */
export function pointAt(blobId: GenericId<"_storage">, marker: ArrayBuffer, size: number) {
  return {
    yjsSnapshotId: blobId,
    yjsSnapshotMarker: marker.byteLength <= MAX_MARKER_BYTES ? marker : undefined,
    yjsSnapshotSize: size,
    yjsSavedAt: Date.now(),
  };
}

/** The row's current snapshot, for loads and for checking a save before storing its blob. */
const current = (ykeep: Ykeep) => internalQueryGeneric({
  args: { kind: kindValidator, id: v.string() },
  handler: async (ctx, { kind, id }) => {
    const { row, missing } = await liveRow(ctx.db, ykeep, kind, id);
    if (row === null) return { found: false as const, code: missing };
    return {
      found: true as const,
      snapshotId: row.yjsSnapshotId ?? null,
      marker: row.yjsSnapshotMarker ?? null,
      savedAt: row.yjsSavedAt ?? null,
    };
  },
});

export const preconditionValidator = v.union(
  v.object({ type: v.literal("ifMatch"), snapshotId: v.string() }),
  v.object({ type: v.literal("ifNoneMatch") }),
  v.object({ type: v.literal("none") }),
);

export type Precondition =
  | { type: "ifMatch"; snapshotId: string }
  | { type: "ifNoneMatch" }
  | { type: "none" };

/**
 * Does a save with this precondition and this new state (Yjs snapshot `marker`) pass,
 * given the row's current snapshot? Shared by the pre-check in the action and the
 * atomic check in `commitSave`.
 */
export function preconditionHolds(
  pre: Precondition,
  currentId: string | null,
  currentMarker: ArrayBuffer | null,
  marker: ArrayBuffer,
): boolean {
  switch (pre.type) {
    case "ifMatch":
      return currentId !== null && currentId === pre.snapshotId;
    case "ifNoneMatch":
      return currentId === null;
    case "none":
      // No snapshot yet: anything goes. Otherwise the new state must contain the
      // current one, so a save can never replace a snapshot with a state that lacks it.
      if (currentId === null) return true;
      if (currentMarker === null) return false;
      return snapshotContains(new Uint8Array(marker), new Uint8Array(currentMarker));
  }
}

/**
 * Compare-and-set: points the row at the new blob and deletes the blob it replaced, in
 * one transaction, if the precondition still holds. Otherwise deletes the new blob
 * (nothing is kept) and reports why.
 */
const commitSave = (ykeep: Ykeep) => internalMutationGeneric({
  args: {
    kind: kindValidator,
    id: v.string(),
    newSnapshotId: v.id("_storage"),
    /** Yjs snapshot of the new state (for the "contains" check). */
    marker: v.bytes(),
    size: v.number(),
    precondition: preconditionValidator,
  },
  handler: async (ctx, args) => {
    const { row, missing } = await liveRow(ctx.db, ykeep, args.kind, args.id);
    if (row === null) {
      await ctx.storage.delete(args.newSnapshotId);
      return { ok: false as const, code: missing };
    }
    const currentId = row.yjsSnapshotId ?? null;
    if (!preconditionHolds(args.precondition, currentId, row.yjsSnapshotMarker ?? null, args.marker)) {
      await ctx.storage.delete(args.newSnapshotId);
      return { ok: false as const, code: "conflict" as const, currentSnapshotId: currentId };
    }
    const switched = pointAt(args.newSnapshotId, args.marker, args.size);
    await ctx.db.patch(row._id, switched);
    const savedAt = switched.yjsSavedAt;
    // In the same transaction as the patch: the replaced blob is deleted only if the row
    // switch commits.
    if (currentId !== null) await ctx.storage.delete(currentId);
    return { ok: true as const, snapshotId: args.newSnapshotId as string, savedAt };
  },
});

/**
 * The resource is gone: mark the row deleted (the tombstone later requests answer with
 * `resource_deleted`) and delete its blob, in one transaction.
 */
const remove = (ykeep: Ykeep) => internalMutationGeneric({
  args: { kind: kindValidator, id: v.string() },
  handler: async (ctx, { kind, id }) => {
    const { row, missing } = await liveRow(ctx.db, ykeep, kind, id);
    if (row === null) return { ok: false as const, code: missing };
    await ctx.db.patch(row._id, {
      yjsSnapshotId: undefined,
      yjsSnapshotMarker: undefined,
      yjsSnapshotSize: undefined,
      yjsSavedAt: undefined,
      deletedAt: Date.now(),
    });
    if (row.yjsSnapshotId !== undefined) await ctx.storage.delete(row.yjsSnapshotId);
    return { ok: true as const };
  },
});

/** The store's internal functions, bound to the app's tables. */
export function snapshotFunctions(ykeep: Ykeep) {
  return { current: current(ykeep), commitSave: commitSave(ykeep), remove: remove(ykeep) };
}
