// The workload for bench/party/run.mjs, built in Node with Yjs (not by the Rust bench): the
// automerge-paper trace (josephg/editing-traces format) replayed into a Yjs doc before timing,
// one v1 update per trace transaction captured with doc.on('update') (the per-transaction update,
// as ../shared/notes/benchmarking.md says), each wrapped as a y-sync Update frame
// [0, 2, varuint len, update]. Traces are read from YKEEP_BENCH_DATA (default
// ../shared/bench-data), never copied into the repo. Without the trace: a seeded synthetic
// typing stream (inserts and deletes on one Y.Text), with a message saying so.
//
// progressOf(update): the "progress" of an update as in bench/src/relay.rs: highest clock of the
// writer (client 1) inserted + units deleted. Update i has been delivered once the messages seen
// carry progress >= progress[i]; this stays right when a host merges several updates into one
// message. Parsed by hand from the v1 encoding (cheap enough to run on every arriving message);
// falls back to Y.decodeUpdate for content kinds a text trace does not produce.

import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import * as Y from 'yjs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const WRITER_CLIENT = 1;

export function dataDir() {
  return process.env.YKEEP_BENCH_DATA || path.resolve(here, '../../../shared/bench-data');
}

/** Loads a trace ({txns: [[pos, del, ins], ...][], end}) or returns null when it is absent. */
export function loadTrace(name = 'automerge-paper') {
  const file = path.join(dataDir(), `${name}.json.gz`);
  if (!fs.existsSync(file)) return null;
  const v = JSON.parse(zlib.gunzipSync(fs.readFileSync(file)).toString('utf8'));
  const bmp = (s) => !/[\u{10000}-\u{10FFFF}]/u.test(s);
  const txns = v.txns.map((t) => t.patches);
  if (!bmp(v.endContent) || !txns.every((t) => t.every((p) => bmp(p[2])))) {
    throw new Error(`${name}: characters outside the BMP; code point positions would need mapping`);
  }
  return { name, txns, end: v.endContent, file };
}

/** A seeded synthetic typing stream in the trace's shape: mostly inserts, some deletes. */
export function syntheticTrace(n, seed = 42) {
  let s = seed >>> 0;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const txns = [];
  let len = 0;
  let cursor = 0;
  const alphabet = 'abcdefghijklmnopqrstuvwxyz      ,.\n';
  for (let i = 0; i < n; i++) {
    if (rnd() < 0.05) cursor = Math.floor(rnd() * (len + 1));
    if (len > 0 && cursor > 0 && rnd() < 0.15) {
      txns.push([[cursor - 1, 1, '']]);
      cursor--;
      len--;
    } else {
      txns.push([[cursor, 0, alphabet[Math.floor(rnd() * alphabet.length)]]]);
      cursor++;
      len++;
    }
  }
  return { name: `synthetic(seed ${seed})`, txns, end: null };
}

/** Replays the first `n` transactions; returns the per-transaction v1 updates and progress. */
export function buildWorkload(trace, n = trace.txns.length) {
  n = Math.min(n, trace.txns.length);
  const doc = new Y.Doc({ gc: true });
  doc.clientID = WRITER_CLIENT;
  const text = doc.getText('t');
  const updates = [];
  doc.on('update', (u) => updates.push(u));
  const progress = new Float64Array(n);
  let clock = 0;
  let del = 0;
  for (let i = 0; i < n; i++) {
    const patches = trace.txns[i];
    doc.transact(() => {
      for (const [pos, d, ins] of patches) {
        if (d > 0) text.delete(pos, d);
        if (ins) text.insert(pos, ins);
      }
    });
    for (const [, d, ins] of patches) {
      clock += ins.length;
      del += d;
    }
    progress[i] = clock + del;
  }
  if (updates.length !== n) throw new Error(`expected one update per transaction, got ${updates.length} for ${n}`);
  const expectedText = text.toString();
  if (n === trace.txns.length && trace.end !== null && expectedText !== trace.end) {
    throw new Error('replayed text differs from the trace endContent');
  }
  const frames = updates.map(updateFrame);
  return { n, updates, frames, progress, expectedText, bytes: updates.reduce((a, u) => a + u.length, 0) };
}

/** Text after the first k updates of a workload (for checking what a host kept). */
export function textAfter(work, k) {
  const doc = new Y.Doc();
  for (let i = 0; i < k; i++) Y.applyUpdate(doc, work.updates[i]);
  return doc.getText('t').toString();
}

// ---- y-sync framing ----

export function writeVarUint(out, v) {
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
}

/** [0 = sync, step, varuint len, payload] */
export function syncFrame(step, payload) {
  const head = [0, step];
  writeVarUint(head, payload.length);
  const f = new Uint8Array(head.length + payload.length);
  f.set(head, 0);
  f.set(payload, head.length);
  return f;
}
export const updateFrame = (u) => syncFrame(2, u);
/** SyncStep1 with an empty state vector: asks for the whole doc. */
export const SYNC_STEP1_EMPTY = syncFrame(0, Uint8Array.of(0));

/** Parses a y-sync message: {step, payload} for sync messages, null for anything else. */
export function parseSync(buf) {
  if (buf.length < 3 || buf[0] !== 0) return null;
  const step = buf[1];
  let len = 0;
  let mul = 1;
  let i = 2;
  for (;;) {
    const b = buf[i++];
    len += (b & 0x7f) * mul;
    if (b < 0x80) break;
    mul *= 128;
    if (i >= buf.length) return null;
  }
  return { step, payload: buf.subarray(i, i + len) };
}

// ---- progress of a v1 update, parsed by hand ----

class Reader {
  constructor(b) {
    this.b = b;
    this.i = 0;
  }
  u8() {
    return this.b[this.i++];
  }
  vu() {
    let v = 0;
    let mul = 1;
    for (;;) {
      const x = this.b[this.i++];
      v += (x & 0x7f) * mul;
      if (x < 0x80) return v;
      mul *= 128;
    }
  }
  skipStr() {
    const n = this.vu();
    this.i += n;
  }
  /** UTF-16 length of the next varstring, skipping it. */
  strUtf16() {
    const n = this.vu();
    let units = 0;
    const end = this.i + n;
    for (let j = this.i; j < end; j++) {
      const c = this.b[j];
      if ((c & 0xc0) !== 0x80) units += c >= 0xf0 ? 2 : 1;
    }
    this.i = end;
    return units;
  }
}

class Unsupported extends Error {}

/** [writer clock end, deleted units] of one v1 update. */
export function progressParts(update) {
  try {
    return fastParts(update);
  } catch (e) {
    if (!(e instanceof Unsupported)) throw e;
    return slowParts(update);
  }
}

export function progressOf(update) {
  const [c, d] = progressParts(update);
  return c + d;
}

function fastParts(b) {
  const r = new Reader(b);
  let clockEnd = 0;
  const nClients = r.vu();
  for (let k = 0; k < nClients; k++) {
    const nStructs = r.vu();
    const client = r.vu();
    let clock = r.vu();
    for (let s = 0; s < nStructs; s++) {
      const info = r.u8();
      const ref = info & 0x1f;
      if (ref === 0 || ref === 10) {
        clock += r.vu(); // GC or Skip
        continue;
      }
      const noParentCopy = (info & 0xc0) === 0;
      if (info & 0x80) { r.vu(); r.vu(); } // origin
      if (info & 0x40) { r.vu(); r.vu(); } // right origin
      if (noParentCopy) {
        if (r.vu() === 1) r.skipStr(); // parent by root name
        else { r.vu(); r.vu(); } // parent by id
        if (info & 0x20) r.skipStr(); // parentSub
      }
      switch (ref) {
        case 1: clock += r.vu(); break; // ContentDeleted
        case 4: clock += r.strUtf16(); break; // ContentString
        case 3: r.i += r.vu(); clock += 1; break; // ContentBinary
        case 5: r.skipStr(); clock += 1; break; // ContentEmbed
        case 6: r.skipStr(); r.skipStr(); clock += 1; break; // ContentFormat
        case 2: { const n = r.vu(); for (let j = 0; j < n; j++) r.skipStr(); clock += n; break; } // JSON
        default: throw new Unsupported(); // ContentType / Any / Doc
      }
    }
    if (client === WRITER_CLIENT) clockEnd = Math.max(clockEnd, clock);
  }
  let del = 0;
  const nDs = r.vu();
  for (let k = 0; k < nDs; k++) {
    r.vu(); // client
    const n = r.vu();
    for (let j = 0; j < n; j++) {
      r.vu(); // clock
      del += r.vu();
    }
  }
  return [clockEnd, del];
}

function slowParts(update) {
  const { structs, ds } = Y.decodeUpdate(update);
  let clockEnd = 0;
  for (const s of structs) {
    if (s.id.client === WRITER_CLIENT) clockEnd = Math.max(clockEnd, s.id.clock + s.length);
  }
  let del = 0;
  for (const items of ds.clients.values()) for (const it of items) del += it.len;
  return [clockEnd, del];
}
