// Yjs helpers for the snapshot store: strict validation of a v1 update and the
// "contains" test between two Yjs snapshots (state vector + delete set).
//
// A state vector alone does not change when text is only deleted, so every
// comparison here uses full Yjs snapshots.
import * as Y from "yjs";
import * as decoding from "lib0/decoding";

export type CheckedUpdate = {
  /** `Y.encodeSnapshot` of the state the update holds. */
  marker: Uint8Array;
  /** `Y.encodeStateVector` of that state. */
  stateVector: Uint8Array;
};

export class BadUpdate extends Error {}

/**
 * Checks that `bytes` is one complete Yjs v1 update holding a full state:
 * - it decodes structurally (`Y.decodeUpdate`);
 * - applying it to a fresh doc consumes every byte (no trailing garbage);
 * Content that waits for missing predecessors (pending structs or deletes) is kept: a relay
 * that received an out-of-order update carries it in its full state, and refusing that state
 * would leave the room unsaveable for good (the Rust store does the same).
 * Returns the state's Yjs snapshot and state vector; throws `BadUpdate` otherwise.
 */
export function checkUpdate(bytes: Uint8Array): CheckedUpdate {
  if (bytes.length < 2) throw new BadUpdate("too short to be a Yjs update");
  try {
    Y.decodeUpdate(bytes);
  } catch {
    throw new BadUpdate("does not decode as a Yjs v1 update");
  }
  const doc = new Y.Doc();
  try {
    const decoder = decoding.createDecoder(bytes);
    Y.transact(doc, (tr) => {
      Y.readUpdate(decoder, doc, tr.origin);
    });
    if (decoding.hasContent(decoder)) {
      throw new BadUpdate("trailing bytes after the Yjs update");
    }
    return {
      marker: Y.encodeSnapshot(Y.snapshot(doc)),
      stateVector: Y.encodeStateVector(doc),
    };
  } catch (e) {
    if (e instanceof BadUpdate) throw e;
    throw new BadUpdate("does not apply as a Yjs v1 update");
  } finally {
    doc.destroy();
  }
}

type Range = { clock: number; len: number };

function mergedRanges(items: ReadonlyArray<Range>): Range[] {
  const sorted = [...items].sort((a, b) => a.clock - b.clock);
  const out: Range[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && r.clock <= last.clock + last.len) {
      last.len = Math.max(last.len, r.clock + r.len - last.clock);
    } else {
      out.push({ clock: r.clock, len: r.len });
    }
  }
  return out;
}

function covered(ranges: Range[], clock: number, len: number): boolean {
  // Last range starting at or before `clock` (ranges are merged, so one suffices).
  let lo = 0;
  let hi = ranges.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (ranges[mid].clock <= clock) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  if (found < 0) return false;
  const r = ranges[found];
  return clock + len <= r.clock + r.len;
}

/**
 * True when the state described by `outer` contains everything in `inner`: every
 * client's clock is at least as far, and every deletion in `inner` is also deleted
 * in `outer`. Both arguments are `Y.encodeSnapshot` bytes.
 */
export function snapshotContains(outerBytes: Uint8Array, innerBytes: Uint8Array): boolean {
  const outer = Y.decodeSnapshot(outerBytes);
  const inner = Y.decodeSnapshot(innerBytes);
  for (const [client, clock] of inner.sv) {
    if ((outer.sv.get(client) ?? 0) < clock) return false;
  }
  for (const [client, items] of inner.ds.clients) {
    if (items.length === 0) continue;
    const ranges = mergedRanges(outer.ds.clients.get(client) ?? []);
    for (const it of items) {
      if (it.len > 0 && !covered(ranges, it.clock, it.len)) return false;
    }
  }
  return true;
}

export function base64url(bytes: Uint8Array): string {
  let bin = "";
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) {
    bin += String.fromCharCode(...bytes.subarray(i, i + chunk));
  }
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Decodes base64url (padding optional); null when the text is not base64url. */
export function fromBase64url(text: string): Uint8Array<ArrayBuffer> | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return null;
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  try {
    const bin = atob(b64);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  } catch {
    return null;
  }
}
