// Step 1 of removing the legacy `content` fields (ProseMirror JSON on documents,
// Excalidraw JSON on diagrams). Runs while legacySchema.ts is deployed; see README.md.
//
//   npx convex run migrations:runClearLegacyContent
//
// Each mutation clears one page of rows, so a large table never exceeds a transaction's
// limits; the action drives the pages until both tables are done. Ids, snapshot fields
// and app fields are untouched (the rows are patched, not copied). Every value is first
// copied to the `ykeepLegacyContent` archive in the same mutation: for a row without a Yjs
// snapshot it is the only copy of the document.
import { v } from "convex/values";
import { internalAction, internalMutation } from "./_generated/server";
import { internal } from "./_generated/api";

const legacyTable = v.union(v.literal("documents"), v.literal("diagrams"));

export const clearLegacyContent = internalMutation({
  args: {
    table: legacyTable,
    cursor: v.union(v.string(), v.null()),
    batchSize: v.optional(v.number()),
  },
  handler: async (ctx, { table, cursor, batchSize }) => {
    const page = await ctx.db.query(table).paginate({ cursor, numItems: batchSize ?? 100 });
    let cleared = 0;
    for (const row of page.page) {
      // `content` is not in the final schema's types; under legacySchema it is optional.
      const content = (row as Record<string, unknown>).content;
      if (content !== undefined) {
        await ctx.db.insert("ykeepLegacyContent", { table, rowId: row._id, content, archivedAt: Date.now() });
        await ctx.db.patch(row._id, { content: undefined } as never);
        cleared += 1;
      }
    }
    return { cleared, isDone: page.isDone, cursor: page.continueCursor };
  },
});

export const runClearLegacyContent = internalAction({
  args: { batchSize: v.optional(v.number()) },
  handler: async (ctx, { batchSize }) => {
    const result: Record<string, number> = {};
    for (const table of ["documents", "diagrams"] as const) {
      let cursor: string | null = null;
      let total = 0;
      for (;;) {
        const r: { cleared: number; isDone: boolean; cursor: string } = await ctx.runMutation(
          internal.migrations.clearLegacyContent,
          { table, cursor, batchSize },
        );
        total += r.cleared;
        if (r.isDone) break;
        cursor = r.cursor;
      }
      result[table] = total;
    }
    return result;
  },
});
