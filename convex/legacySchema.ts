// Deploy step 1 of removing the legacy `content` fields (see README.md).
//
// Convex validates every existing row against the schema on deploy, so a field that
// rows still carry cannot simply be dropped. Step 1 deploys this schema (the final
// fields plus `content` as optional), then runs `migrations:clearLegacyContent` until it
// reports done. Step 2 deploys `schema.ts`, which no longer has `content`.
//
// To deploy step 1, make schema.ts `export { default } from "./legacySchema";`.
// The migration test (migration.test.ts) runs against this schema.
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";
import { legacyContentTable, snapshotFields } from "./model";

export default defineSchema({
  documents: defineTable({
    ...snapshotFields,
    /** Legacy: ProseMirror JSON. Superseded by the Yjs snapshot. */
    content: v.optional(v.any()),
  }),
  diagrams: defineTable({
    ...snapshotFields,
    /** Legacy: Excalidraw JSON. Superseded by the Yjs snapshot. */
    content: v.optional(v.any()),
  }),
  tasks: defineTable(snapshotFields),
  ykeepLegacyContent: legacyContentTable,
});
