/* Hand-written stand-in for `npx convex codegen` output (codegen needs a deployment;
 * `npx convex dev` / `npx convex deploy` regenerate this directory). */
import { anyApi, componentsGeneric } from "convex/server";

export const api = anyApi;
export const internal = anyApi;
export const components = componentsGeneric();
