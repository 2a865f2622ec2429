/* Hand-written stand-in for `npx convex codegen` output. */
import type { ApiFromModules, FilterApi, FunctionReference } from "convex/server";
import type * as http from "../http.js";
import type * as migrations from "../migrations.js";
import type * as resources from "../resources.js";
import type * as snapshots from "../snapshots.js";

declare const fullApi: ApiFromModules<{
  http: typeof http;
  migrations: typeof migrations;
  resources: typeof resources;
  snapshots: typeof snapshots;
}>;
export declare const api: FilterApi<typeof fullApi, FunctionReference<any, "public">>;
export declare const internal: FilterApi<typeof fullApi, FunctionReference<any, "internal">>;
export declare const components: {};
