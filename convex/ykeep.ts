// ykeep mounted into the example app: its tables, its auth (`authorize` below) and its
// legacy formats. Every function ykeep needs is re-exported here (module "ykeep").
import { defineYkeep, excalidrawConverter, verifyToken } from "ykeep/convex";
import type { Authorize } from "ykeep/convex";
import { prosemirrorConverter } from "ykeep/convex/prosemirror";
import { internal } from "./_generated/api";
import { editorSchema } from "./editorSchema";
import { RESOURCE_TABLES, SESSION_PREFIX } from "./auth";

/**
 * The app's own rule decides: a session of a member of the resource's workspace may open it.
 * Tokens the relay mints (`ykeep-relay token`) are not sessions; they keep ykeep's HMAC check.
 */
const authorize: Authorize = async (ctx, { token, kind, id }) => {
  if (token.startsWith(SESSION_PREFIX)) return ctx.runQuery(internal.auth.sessionVerdict, { token, kind, id });
  return verifyToken(token, kind, id);
};

export const ykeep = defineYkeep({
  module: "ykeep",
  tables: RESOURCE_TABLES,
  authorize,
  legacy: {
    archiveTable: "legacyContent",
    contentField: "content",
    converters: {
      document: prosemirrorConverter({ schema: editorSchema }),
      diagram: excalidrawConverter(),
    },
  },
});

export const {
  current,
  commitSave,
  remove,
  legacyPage,
  commitLegacy,
  migrateLegacyContent,
  dropArchivePage,
  dropLegacyArchive,
} = ykeep.functions;
