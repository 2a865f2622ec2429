// The example app's router: its own routes, and ykeep's under the prefix /ykeep (the relay's
// store URL is then https://<deployment>.convex.site/ykeep).
import { httpRouter } from "convex/server";
import { httpAction } from "./_generated/server";
import { internal } from "./_generated/api";
import { ykeep } from "./ykeep";

const http = httpRouter();

ykeep.registerRoutes(http, { prefix: "/ykeep" });

/**
 * The app's own room-access check, as it was before ykeep: `{sessionToken, kind, id}` →
 * `{allowed}`. ykeep's verify route (`/ykeep/collaboration/verify`) asks the same rule through
 * the `authorize` hook.
 */
http.route({
  path: "/collaboration/verify",
  method: "POST",
  handler: httpAction(async (ctx, request) => {
    const body = (await request.json().catch(() => null)) as { sessionToken?: unknown; kind?: unknown; id?: unknown } | null;
    const { sessionToken, kind, id } = body ?? {};
    if (typeof sessionToken !== "string" || typeof id !== "string" || (kind !== "document" && kind !== "diagram" && kind !== "task")) {
      return Response.json({ error: "body must be {sessionToken, kind, id}" }, { status: 400 });
    }
    const verdict = await ctx.runQuery(internal.auth.sessionVerdict, { token: sessionToken, kind, id });
    return Response.json({ allowed: verdict.allowed });
  }),
});

export default http;
