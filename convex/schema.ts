// Final schema (deploy step 2): no legacy `content` fields.
// See README.md "Removing the legacy content fields" for the two deploys.
import { defineSchema, defineTable } from "convex/server";
import { legacyContentTable, snapshotFields } from "./model";

export default defineSchema({
  documents: defineTable(snapshotFields),
  diagrams: defineTable(snapshotFields),
  tasks: defineTable(snapshotFields),
  ykeepLegacyContent: legacyContentTable,
});
