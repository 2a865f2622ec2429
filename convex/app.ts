// The example app's own mutations: workspaces, members, sessions and resource rows with the
// app's required fields. ykeep never creates rows; the app does, here. Internal, for the tests,
// the dev server (tests/convex-relay/dev-server.ts) and `npx convex run`.
import { v } from "convex/values";
import { internalMutation, internalQuery } from "./_generated/server";
import { kindValidator } from "ykeep/convex";
import type { Id } from "./_generated/dataModel";
import { RESOURCE_TABLES } from "./auth";

export const createWorkspace = internalMutation({
  args: { name: v.string() },
  handler: (ctx, { name }) => ctx.db.insert("workspaces", { name }),
});

export const addMember = internalMutation({
  args: { workspaceId: v.id("workspaces"), userId: v.string() },
  handler: (ctx, args) => ctx.db.insert("members", args),
});

export const createSession = internalMutation({
  args: { userId: v.string(), token: v.string(), ttlMs: v.number() },
  handler: (ctx, { userId, token, ttlMs }) => ctx.db.insert("sessions", { userId, token, expiresAt: Date.now() + ttlMs }),
});

/** A resource row of `kind` with the app's fields; a workspace is made when none is given. */
export const createResource = internalMutation({
  args: { kind: kindValidator, workspaceId: v.optional(v.id("workspaces")), title: v.optional(v.string()) },
  handler: async (ctx, { kind, workspaceId, title }): Promise<string> => {
    const ws: Id<"workspaces"> = workspaceId ?? (await ctx.db.insert("workspaces", { name: "default" }));
    const name = title ?? `untitled ${kind}`;
    switch (kind) {
      case "document":
        return ctx.db.insert("documents", { title: name, workspaceId: ws, ownerId: "owner" });
      case "diagram":
        return ctx.db.insert("diagrams", { name, workspaceId: ws });
      case "task":
        return ctx.db.insert("tasks", { title: name, workspaceId: ws, status: "todo" });
    }
  },
});

/** ykeep's fields of a row, for tests and operators; null when there is no such row. */
export const snapshotOf = internalQuery({
  args: { kind: kindValidator, id: v.string() },
  handler: async (ctx, { kind, id }) => {
    const rowId = ctx.db.normalizeId(RESOURCE_TABLES[kind], id);
    const row = rowId === null ? null : await ctx.db.get(rowId);
    if (row === null) return null;
    return {
      yjsSnapshotId: row.yjsSnapshotId ?? null,
      yjsSnapshotSize: row.yjsSnapshotSize ?? null,
      yjsSavedAt: row.yjsSavedAt ?? null,
      deleted: row.deletedAt !== undefined,
    };
  },
});
