// Bad inputs shared by the relay's bad-input test (tests/js/reliability-bad-input.test.mjs) and
// the party host's (tests/party/bad-input.test.mjs): the frames, the ids and kinds, the fuzz
// regression inputs, a raw WebSocket that reports how it ended, and what counts as a refusal.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import WebSocket from 'ws'
import { syncFrame } from './client.mjs'

export const varint = (n) => { const out = []; while (n >= 0x80) { out.push((n & 0x7f) | 0x80); n = Math.floor(n / 128) } out.push(n); return out }
export const varintFF = (n) => new Uint8Array(n).fill(0xff)

/** Malformed y-sync frames, by name: each must close the socket. */
export function malformedFrames () {
  return {
    'empty frame': new Uint8Array([]),
    'sync without step': new Uint8Array([0]),
    'update without length': new Uint8Array([0, 2]),
    'truncated varint length': new Uint8Array([0, 2, 0x80]),
    'truncated varint step': new Uint8Array([0, 0x80]),
    'huge declared length (4 GiB)': new Uint8Array([0, 2, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3]),
    'declared length past the frame': new Uint8Array([0, 2, 50, 1, 2, 3]),
    'varint overflow (11 bytes of 0xff)': new Uint8Array([0, 2, ...varintFF(11), 1]),
    'unknown sync step': new Uint8Array([0, 7, 1, 0]),
    'message type varint overflow': varintFF(12),
    'awareness with huge length': new Uint8Array([1, 0xff, 0xff, 0xff, 0x7f]),
    'step1 with a state vector that does not decode': syncFrame(0, new Uint8Array([0xff, 0xff, 0xff]))
  }
}

/** Text frames: ignored, or refused. */
export const textFrames = ['hello', '\u0000\u0002\u0001x', 'x'.repeat(1000)]

/** Unknown message types: ignored as y-websocket does, or refused. */
export const unknownTypeFrames = () => [new Uint8Array([99, 1, 2, 3]), new Uint8Array([4]), new Uint8Array([0x80, 0x01])]

/** Update payloads that do not decode (four fixed, twelve random from `rng`). */
export function undecodableUpdates (rng) {
  const bad = [
    new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x7f]),
    new TextEncoder().encode('not a yjs update at all'),
    new Uint8Array([1, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]),
    new Uint8Array([5, 1, 200, 1, 0, 4, 1, 1, 116, 10]) // plausible header, truncated content
  ]
  for (let i = 0; i < 12; i++) bad.push(Uint8Array.from({ length: rng.int(1, 200) }, () => rng.int(0, 255)))
  return bad
}

export const badIds = ['..%2F..%2Fetc%2Fpasswd', '%2e%2e', '..', 'a.b', '%C3%A9t%C3%A9', '%F0%9F%99%82', 'a%00b', 'a%20b', 'x'.repeat(129), 'y'.repeat(10_000), '%2Fabs']
export const badKinds = ['evil', 'documents', 'Document', '..', '%C3%A9']

const FUZZ_REGRESSIONS = new URL('../../../fuzz/regressions/', import.meta.url).pathname
/** Regression inputs: snapshot_save files are one update; frame_decoder files are [len][frame]... */
export function regressionFrames () {
  const out = []
  for (const target of ['snapshot_save', 'frame_decoder']) {
    const dirp = `${FUZZ_REGRESSIONS}${target}`
    if (!fs.existsSync(dirp)) continue
    for (const name of fs.readdirSync(dirp).sort()) {
      const bytes = new Uint8Array(fs.readFileSync(`${dirp}/${name}`))
      if (target === 'snapshot_save') { out.push({ name: `${target}/${name}`, frames: [syncFrame(2, bytes)] }); continue }
      const frames = []
      let rest = bytes
      while (rest.length && frames.length < 8) {
        const n = Math.min(rest[0], rest.length - 1)
        if (n === 0) { frames.push(rest.slice(1)); break }
        frames.push(rest.slice(1, 1 + n)); rest = rest.slice(1 + n)
      }
      out.push({ name: `${target}/${name}`, frames })
    }
  }
  return out
}

// The barrier behind what rawWs sends: ykeep's OptIn and a mark (docs/relay-api.md, type 107).
// Both hosts answer the mark with `Committed 99` only after everything before it on the socket
// was handled, so that answer proves the connection was left open, however slow the host.
const BARRIER = [Uint8Array.of(107, 0), Uint8Array.of(107, 1, 99)]
const isBarrierReply = (m) => m[0] === 107 && ((m.length === 2 && m[1] === 2) || (m.length === 3 && m[1] === 3 && m[2] === 99))

/**
 * Opens a raw WebSocket to `url`, sends `send`, and resolves with how it ended: refused over
 * HTTP ({status, body}), closed ({code, reason}), or left open ({open: true}); `got` is every
 * message it received. A close is taken from the close frame itself, not from the end of the TCP
 * connection.
 *
 * "Left open" is not a guess from a quiet moment: behind `send` goes a barrier (an OptIn and a
 * mark) whose answer comes only once the host has handled every frame before it, so a slow
 * refusal on a loaded machine is still seen as a refusal. With nothing to send, or with
 * `barrier: false`, it is still open after `waitMs`. The barrier's answers are not in `got`.
 */
export function rawWs (url, { send = [], text = false, waitMs = 3000, barrier = send.length > 0 } = {}) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { maxPayload: 1 << 30 })
    const got = []
    let done = false
    const finish = (r) => { if (!done) { done = true; clearTimeout(timer); clearInterval(poll); try { ws.terminate() } catch {} resolve({ ...r, got }) } }
    const timer = setTimeout(() => finish(barrier ? { barrierTimedOut: true, code: 0, reason: 'no answer to the barrier' } : { open: true }), waitMs + 30_000)
    // (ws emits 'close' once the TCP connection ends; its close frame is known before.)
    const poll = setInterval(() => { if (ws._closeFrameReceived) finish({ code: ws._closeCode, reason: String(ws._closeMessage) }) }, 5)
    ws.on('unexpected-response', (req, res) => {
      let body = ''
      res.on('data', (c) => { body += c })
      res.on('end', () => finish({ status: res.statusCode, body }))
    })
    ws.on('open', () => {
      for (const f of send) ws.send(f, { binary: !text })
      if (barrier) for (const f of BARRIER) ws.send(f, { binary: true })
      else setTimeout(() => finish({ open: true }), waitMs)
    })
    ws.on('message', (m) => {
      if (barrier && isBarrierReply(m)) { if (m[1] === 3) setImmediate(() => finish({ open: true })); return }
      got.push(m)
    })
    ws.on('close', (code, reason) => finish({ code, reason: reason.toString() }))
    ws.on('error', () => {})
  })
}

/** A clear refusal: an HTTP 4xx with the JSON error body, or a close with one of `codes` and a reason. */
export function assertRefused (r, { codes = [1002, 1003, 1007, 1008], statuses = [400, 401, 403, 404, 413, 414, 431], what }) {
  if (r.status !== undefined) {
    assert.ok(statuses.includes(r.status), `${what}: HTTP ${r.status} ${r.body}`)
    // A 404 with no body is the router finding no route: the client library normalised the path
    // (e.g. %2e%2e to ..), so the request never named a room.
    if (r.status !== 414 && r.status !== 431 && !(r.status === 404 && r.body === '')) {
      const j = JSON.parse(r.body)
      assert.ok(j.error && j.error.code && j.error.message, `${what}: error body ${r.body}`)
      assert.ok(r.body.length < 1000, `${what}: the error echoes the input (${r.body.length} bytes)`)
    }
    return
  }
  assert.ok(!r.open, `${what}: the connection was left open (no refusal)`)
  assert.ok(codes.includes(r.code), `${what}: close code ${r.code} (${r.reason})`)
  assert.ok(r.reason.length > 0, `${what}: close without a reason`)
}
