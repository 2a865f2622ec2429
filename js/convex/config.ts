// The options an app gives `defineYkeep`, checked once and resolved into the `Ykeep` every
// function and route reads.
import { makeFunctionReference } from "convex/server";
import type { FunctionReference, FunctionType, GenericActionCtx, GenericDataModel } from "convex/server";
import { verifyToken } from "./access.js";
import type { Verdict } from "./access.js";
import type { Converter } from "./convert.js";
import { DEFAULT_ARCHIVE_TABLE, DEFAULT_TABLES, KINDS } from "./schema.js";
import type { Kind, Tables } from "./schema.js";

/** What the `authorize` hook is asked: may the holder of `token` open this resource? */
export type AuthorizeRequest = {
  token: string;
  kind: Kind;
  /** The row's `_id` as it appears in the URL. */
  id: string;
  /** The app's table of `kind`. */
  table: string;
};

/**
 * Decides who may read or join which room. It is asked by `POST {prefix}/collaboration/verify`
 * (the relay and the party host ask it when a user connects) and by token loads of
 * `GET {prefix}/snapshots/...`. A refusal with `reason: "wrong_resource"` answers 403, any other
 * 401. The default checks ykeep's HMAC token with `YKEEP_TOKEN_KEY` (`verifyToken`).
 */
export type Authorize = (ctx: GenericActionCtx<GenericDataModel>, request: AuthorizeRequest) => Promise<Verdict>;

export type LegacyOptions = {
  /** The legacy field on the resource rows. Default `content`. */
  contentField?: string;
  /** The archive table's name in the app's schema. Default `legacyContent`. */
  archiveTable?: string;
  /** Kind → how its legacy content becomes a Yjs update. A kind without one is reported, not changed. */
  converters?: Partial<Record<Kind, Converter>>;
};

export type YkeepOptions = {
  /**
   * The module (file under `convex/`, without `.ts`) that re-exports `ykeep.functions`, so that
   * the routes can call them. Default `ykeep` (`convex/ykeep.ts`).
   */
  module?: string;
  /** Kind → the app's table name. Default `documents`, `diagrams`, `tasks`. */
  tables?: Partial<Tables>;
  authorize?: Authorize;
  legacy?: LegacyOptions;
};

/** The resolved options. */
export type Ykeep = {
  module: string;
  tables: Tables;
  authorize: Authorize;
  legacy: Required<Omit<LegacyOptions, "converters">> & { converters: Partial<Record<Kind, Converter>> };
  /** A reference to one of the functions the app re-exports from `module`. */
  ref<T extends FunctionType>(name: string): FunctionReference<T>;
};

const NAME_RULE = /^[A-Za-z][A-Za-z0-9_]*$/;
const MODULE_RULE = /^[A-Za-z0-9_]+(\/[A-Za-z0-9_]+)*$/;

/** Thrown at deploy time (module load) for options that cannot work. */
export class YkeepConfigError extends Error {}

export function resolveOptions(options: YkeepOptions = {}): Ykeep {
  const module = options.module ?? "ykeep";
  if (!MODULE_RULE.test(module)) {
    throw new YkeepConfigError(`ykeep: module "${module}" is not a module path like "ykeep" or "lib/ykeep"`);
  }
  for (const key of Object.keys(options.tables ?? {})) {
    if (!(KINDS as readonly string[]).includes(key)) {
      throw new YkeepConfigError(`ykeep: tables has "${key}"; the kinds are ${KINDS.join(", ")}`);
    }
  }
  const tables: Tables = { ...DEFAULT_TABLES, ...options.tables };
  const names = Object.values(tables);
  for (const name of names) {
    if (!NAME_RULE.test(name)) throw new YkeepConfigError(`ykeep: "${name}" is not a table name`);
  }
  if (new Set(names).size !== names.length) {
    throw new YkeepConfigError(`ykeep: each kind needs a table of its own (${KINDS.map((k) => `${k}: ${tables[k]}`).join(", ")})`);
  }
  const legacy = options.legacy ?? {};
  const archiveTable = legacy.archiveTable ?? DEFAULT_ARCHIVE_TABLE;
  if (!NAME_RULE.test(archiveTable) || names.includes(archiveTable)) {
    throw new YkeepConfigError(`ykeep: legacy.archiveTable "${archiveTable}" must be a table name of its own`);
  }
  const contentField = legacy.contentField ?? "content";
  if (!NAME_RULE.test(contentField) || contentField.startsWith("yjs")) {
    throw new YkeepConfigError(`ykeep: legacy.contentField "${contentField}" is not a field name ykeep may clear`);
  }
  return {
    module,
    tables,
    authorize: options.authorize ?? ((_ctx, { token, kind, id }) => verifyToken(token, kind, id)),
    legacy: { archiveTable, contentField, converters: { ...legacy.converters } },
    ref: <T extends FunctionType>(name: string) => makeFunctionReference<T>(`${module}:${name}`),
  };
}
