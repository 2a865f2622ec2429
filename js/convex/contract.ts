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

/** Error codes (`{"error": {"code": ...}}`): `ykeep_core::contract::code`, one for one. */
export const CODE = {
  resourceDeleted: "resource_deleted",
  notFound: "not_found",
  noSnapshot: "no_snapshot",
  /** 503, retryable: the row's blob was gone on each of SNAPSHOT_READ_TRIES reads. */
  snapshotUnavailable: "snapshot_unavailable",
  conflict: "conflict",
  tooLarge: "too_large",
  badUpdate: "bad_update",
  badRequest: "bad_request",
  badKind: "bad_kind",
  badId: "bad_id",
  unauthorized: "unauthorized",
  forbidden: "forbidden",
  internal: "internal",
  // Relay only (listed so the mirror is whole).
  notLive: "not_live",
  badStateVector: "bad_state_vector",
  unavailable: "unavailable",
} as const;

/** The `reason` of a refused verify: `ykeep_core::contract::reason`. */
export const REASON = {
  malformed: "malformed",
  badSignature: "bad_signature",
  expired: "expired",
  wrongResource: "wrong_resource",
} as const;

export type Reason = (typeof REASON)[keyof typeof REASON];

/**
 * How many times a load reads the row and then its blob before it answers
 * `503 snapshot_unavailable` (`ykeep_core::contract::SNAPSHOT_READ_TRIES`): a save that
 * lands between the two reads deletes the blob the row named, and the next try finds the new one.
 */
export const SNAPSHOT_READ_TRIES = 3;

/** Why a save, load or delete found no live row. */
export type Missing = typeof CODE.notFound | typeof CODE.resourceDeleted;
