// ykeep/convex: the snapshot store as a library an existing Convex app mounts into its own
// schema, router and auth.
//
//   // convex/schema.ts: spread the fields into the app's own tables
//   documents: defineTable({ title: v.string(), ...snapshotFields }),
//
//   // convex/ykeep.ts: one file re-exports the functions
//   export const ykeep = defineYkeep({ authorize: myAuthorize });
//   export const { current, commitSave, remove, legacyPage, commitLegacy,
//     migrateLegacyContent, dropArchivePage, dropLegacyArchive } = ykeep.functions;
//
//   // convex/http.ts: the routes under a prefix of the app's router
//   ykeep.registerRoutes(http, { prefix: "/ykeep" });
import type { HttpRouter } from "convex/server";
import { resolveOptions } from "./config.js";
import type { YkeepOptions } from "./config.js";
import { snapshotFunctions } from "./functions.js";
import { migrationFunctions } from "./migration.js";
import { registerRoutes } from "./routes.js";

export type { Authorize, AuthorizeRequest, LegacyOptions, YkeepOptions } from "./config.js";
export { YkeepConfigError } from "./config.js";
export type { Verdict } from "./access.js";
export { bearer, isServerSecret, mintToken, verifyToken } from "./access.js";
export type { Converter } from "./convert.js";
export { ConversionError, isEmptyDocument } from "./convert.js";
export { excalidrawConverter, excalidrawElementsOf, excalidrawFilesOf } from "./excalidraw.js";
export type { ExcalidrawConverterOptions, ExcalidrawElementJSON } from "./excalidraw.js";
export type { MigrationReport, Outcome, Resume, TableReport } from "./migration.js";
export { DROP_ARCHIVE_CONFIRMATION } from "./migration.js";
export { CODE, CONTRACT_VERSION, REASON, STORE_NAME } from "./contract.js";
export type { Reason } from "./contract.js";
export { DEFAULT_ARCHIVE_TABLE, DEFAULT_TABLES, KINDS, kindValidator, legacyContentTable, snapshotFields } from "./schema.js";
export type { Kind, Tables } from "./schema.js";

/**
 * Binds ykeep to the app: its table names, its `authorize` hook, its legacy converters and the
 * module that re-exports `functions`. Throws `YkeepConfigError` for options that cannot work.
 */
export function defineYkeep(options: YkeepOptions = {}) {
  const ykeep = resolveOptions(options);
  return {
    /** The internal functions; re-export all of them from the module named by `options.module`. */
    functions: { ...snapshotFunctions(ykeep), ...migrationFunctions(ykeep) },
    /** Registers the store's routes under `prefix` (e.g. `/ykeep`) on the app's router. */
    registerRoutes(http: HttpRouter, { prefix }: { prefix: string }): void {
      registerRoutes(http, ykeep, prefix);
    },
    /** The resolved table names (kind → table). */
    tables: ykeep.tables,
  };
}
