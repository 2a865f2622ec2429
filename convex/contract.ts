// The store contract's words that decide what a relay may do with its data, as in
// crates/core/src/contract.rs (docs/store-api.md): the error codes a client acts on and
// the `GET /contract` answer.
//
// Only `resource_deleted` ever means "this resource was deleted": it answers a row deleted
// through `DELETE /snapshots/{kind}/{id}` (`deletedAt` set) and nothing else. `not_found`
// (no such row: a wrong id, table or deployment) is a failed request; the caller keeps its data.

/** The contract version these functions speak (`GET /contract` → `{"contract": 1, ...}`). */
export const CONTRACT_VERSION = 1;

/** The `store` of the `GET /contract` answer. */
export const STORE_NAME = "convex";

export const CODE = {
  resourceDeleted: "resource_deleted",
  notFound: "not_found",
  noSnapshot: "no_snapshot",
} as const;

/** Why a save, load or delete found no live row. */
export type Missing = typeof CODE.notFound | typeof CODE.resourceDeleted;
