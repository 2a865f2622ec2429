// The page's own durability check: the relay's GET /rooms/{kind}/{id}/durable gives two Yjs
// snapshots (state vector + delete set): what the relay's log holds and what the store last
// confirmed. Each covers this tab when it contains every insert AND every delete the tab has.
// (A state vector alone would call a delete-only edit durable before it is.)
import * as Y from 'yjs'

export function fromBase64url (text) {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/')
  const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4))
  const out = new Uint8Array(bin.length)
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i)
  return out
}

/** Sorted, merged [start, end) ranges per client of a Yjs delete set. */
function ranges (ds) {
  const out = new Map()
  for (const [client, items] of ds.clients) {
    const sorted = items.map((it) => [it.clock, it.clock + it.len]).sort((a, b) => a[0] - b[0])
    const merged = []
    for (const r of sorted) {
      const last = merged[merged.length - 1]
      if (last && r[0] <= last[1]) last[1] = Math.max(last[1], r[1])
      else merged.push([r[0], r[1]])
    }
    out.set(client, merged)
  }
  return out
}

/** True when the snapshot `outer` contains everything in the snapshot `inner`. */
export function snapshotCovers (outer, inner) {
  for (const [client, clock] of inner.sv) {
    if ((outer.sv.get(client) || 0) < clock) return false
  }
  const have = ranges(outer.ds)
  for (const [client, items] of ranges(inner.ds)) {
    const own = have.get(client) || []
    for (const [start, end] of items) {
      if (!own.some(([s, e]) => s <= start && end <= e)) return false
    }
  }
  return true
}

/** Decodes a base64url Yjs snapshot from /durable (null stays null). */
export function decodeMarker (text) {
  if (!text) return null
  return Y.decodeSnapshot(fromBase64url(text))
}

/**
 * Compares this tab's doc with the relay's /durable answer.
 * @returns {{relay: boolean, store: boolean, savedAt: number|null, storeSnapshotId: string|null}}
 */
export function compareWithDurable (ydoc, body) {
  const local = Y.snapshot(ydoc)
  const relay = decodeMarker(body.relay)
  const store = decodeMarker(body.store)
  return {
    relay: relay ? snapshotCovers(relay, local) : false,
    store: store ? snapshotCovers(store, local) : false,
    savedAt: body.savedAt ?? null,
    storeSnapshotId: body.storeSnapshotId ?? null
  }
}
