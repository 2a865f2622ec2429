// The example app's own access rule, which predates ykeep: a session token names a user, and a
// user may open a resource of a workspace they are a member of. The app's `/collaboration/verify`
// (http.ts) and ykeep's `authorize` hook (ykeep.ts) both ask `sessionVerdict`.
import { v } from "convex/values";
import { internalQuery } from "./_generated/server";
import type { QueryCtx } from "./_generated/server";
import { kindValidator } from "ykeep/convex";
import type { Kind, Verdict } from "ykeep/convex";

/** The app's session tokens start with this; anything else is not a session. */
export const SESSION_PREFIX = "sess_";

/** Kind → the app's table (the same map ykeep.ts gives `defineYkeep`). */
export const RESOURCE_TABLES = { document: "documents", diagram: "diagrams", task: "tasks" } as const;

async function verdictOf(ctx: QueryCtx, token: string, kind: Kind, id: string): Promise<Verdict> {
  const session = await ctx.db
    .query("sessions")
    .withIndex("by_token", (q) => q.eq("token", token))
    .unique();
  if (session === null) return { allowed: false, userId: null, reason: "bad_signature" };
  if (session.expiresAt <= Date.now()) return { allowed: false, userId: null, reason: "expired" };
  const rowId = ctx.db.normalizeId(RESOURCE_TABLES[kind], id);
  const row = rowId === null ? null : await ctx.db.get(rowId);
  if (row === null) return { allowed: false, userId: null, reason: "wrong_resource" };
  const member = await ctx.db
    .query("members")
    .withIndex("by_workspace_user", (q) => q.eq("workspaceId", row.workspaceId).eq("userId", session.userId))
    .unique();
  if (member === null) return { allowed: false, userId: null, reason: "wrong_resource" };
  return { allowed: true, userId: session.userId };
}

export const sessionVerdict = internalQuery({
  args: { token: v.string(), kind: kindValidator, id: v.string() },
  handler: (ctx, { token, kind, id }) => verdictOf(ctx, token, kind, id),
});
