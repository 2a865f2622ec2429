// The example app's schema (deploy step 2, final): the app's own tables and fields, with
// ykeep's snapshot fields spread into the three resource tables and ykeep's archive table.
// See README.md "Removing the legacy content fields" for step 1 (legacySchema.ts).
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";
import { legacyContentTable, snapshotFields } from "ykeep/convex";

/** The app's own tables, which ykeep never reads. */
export const appTables = {
  workspaces: defineTable({ name: v.string() }),
  members: defineTable({ workspaceId: v.id("workspaces"), userId: v.string() }).index("by_workspace_user", [
    "workspaceId",
    "userId",
  ]),
  /** The app's own sessions: its `collaboration/verify` and ykeep's `authorize` hook read them. */
  sessions: defineTable({ token: v.string(), userId: v.string(), expiresAt: v.number() }).index("by_token", ["token"]),
};

/** The resource tables' own fields (required ones too: ykeep only patches its fields). */
export const documentFields = { title: v.string(), workspaceId: v.id("workspaces"), ownerId: v.string() };
export const diagramFields = { name: v.string(), workspaceId: v.id("workspaces") };
export const taskFields = {
  title: v.string(),
  workspaceId: v.id("workspaces"),
  status: v.union(v.literal("todo"), v.literal("doing"), v.literal("done")),
};

export default defineSchema({
  ...appTables,
  documents: defineTable({ ...documentFields, ...snapshotFields }).index("by_workspace", ["workspaceId"]),
  diagrams: defineTable({ ...diagramFields, ...snapshotFields }),
  tasks: defineTable({ ...taskFields, ...snapshotFields }),
  legacyContent: legacyContentTable,
});
