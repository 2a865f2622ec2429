// Resource rows. On Convex the app creates its documents/diagrams/tasks rows in its own
// mutations (ykeep only reads and writes the snapshot fields); `create` is internal, for
// tests, scripts (`npx convex run resources:create '{"kind":"document"}'`) and the dev
// server. There is deliberately no public create: `POST /resources/{kind}` belongs to the
// embedded store only.
import { v } from "convex/values";
import { internalMutation, internalQuery } from "./_generated/server";
import { kindValidator, TABLES } from "./model";

export const create = internalMutation({
  args: { kind: kindValidator, title: v.optional(v.string()) },
  handler: async (ctx, { kind, title }) => {
    const id = await ctx.db.insert(TABLES[kind], title === undefined ? {} : { title });
    return id as string;
  },
});

/** The snapshot fields of a row (for tests and operators), or null if no such row. */
export const get = internalQuery({
  args: { kind: kindValidator, id: v.string() },
  handler: async (ctx, { kind, id }) => {
    const rowId = ctx.db.normalizeId(TABLES[kind], id);
    if (rowId === null) return null;
    const row = await ctx.db.get(rowId);
    if (row === null) return null;
    return {
      id: row._id as string,
      yjsSnapshotId: row.yjsSnapshotId ?? null,
      yjsSnapshotSize: row.yjsSnapshotSize ?? null,
      yjsSavedAt: row.yjsSavedAt ?? null,
      deleted: row.deletedAt !== undefined,
    };
  },
});
