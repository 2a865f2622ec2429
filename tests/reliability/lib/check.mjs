// Coverage checks over Yjs snapshots (state vector + delete set), never bare state vectors.
import * as Y from 'yjs'

export function docFrom (update) {
  const d = new Y.Doc()
  if (update && update.length) Y.applyUpdate(d, update)
  return d
}

/** Updates from `updates` that the state `update` does not contain (inserts or deletes). */
export function missingUpdates (state, updates) {
  const snap = Y.snapshot(docFrom(state))
  return updates.filter((u) => !Y.snapshotContainsUpdate(snap, u))
}

/** True when the state contains everything the encoded Yjs snapshot `marker` describes. */
export function coversMarker (state, marker) {
  if (!marker) return true
  const m = Y.decodeSnapshot(marker)
  const s = Y.snapshot(docFrom(state))
  for (const [client, clock] of m.sv) if ((s.sv.get(client) || 0) < clock) return false
  return Y.equalDeleteSets(s.ds, Y.mergeDeleteSets([s.ds, m.ds]))
}

export const textOf = (update, name = 't') => docFrom(update).getText(name).toString()

/** True when encoded Yjs snapshot `a` contains everything encoded snapshot `b` describes. */
export function markerCovers (a, b) {
  if (!b) return true
  if (!a) return false
  const sa = Y.decodeSnapshot(a)
  const sb = Y.decodeSnapshot(b)
  for (const [client, clock] of sb.sv) if ((sa.sv.get(client) || 0) < clock) return false
  const norm = Y.mergeDeleteSets([sa.ds])
  return Y.equalDeleteSets(norm, Y.mergeDeleteSets([sa.ds, sb.ds]))
}
