// Deploy step 1 of removing the legacy `content` fields (README.md): the final schema plus
// `content` as optional on the tables that had it. Deploy this, run the migration
// (`ykeep:migrateLegacyContent`) until it reports done with nothing untouched, then deploy
// schema.ts. To deploy it, make schema.ts `export { default } from "./legacySchema";`.
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";
import { legacyContentTable, snapshotFields } from "ykeep/convex";
import { appTables, diagramFields, documentFields, taskFields } from "./schema";

export default defineSchema({
  ...appTables,
  documents: defineTable({
    ...documentFields,
    ...snapshotFields,
    /** Legacy: ProseMirror JSON. Superseded by the Yjs snapshot. */
    content: v.optional(v.any()),
  }).index("by_workspace", ["workspaceId"]),
  diagrams: defineTable({
    ...diagramFields,
    ...snapshotFields,
    /** Legacy: Excalidraw scene JSON. Superseded by the Yjs snapshot. */
    content: v.optional(v.any()),
  }),
  tasks: defineTable({ ...taskFields, ...snapshotFields }),
  legacyContent: legacyContentTable,
});
