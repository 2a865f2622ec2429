// Browser side of the acks benchmark (bundled by run.mjs with esbuild, served by the relay's
// --static-dir, so the page and its WebSocket have the demo's origin). One Y.Doc with the built
// pkg/ client and a y-websocket provider attached with keep.attach(provider).
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { YKeep } from '../../pkg/ykeep.js'

const now = () => performance.now()
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const wsBase = location.origin.replace(/^http/, 'ws') + '/rooms/document'

async function until (what, fn, timeoutMs = 20_000) {
  const start = now()
  while (!fn()) {
    if (now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await sleep(2)
  }
}

function readVar (b, i) {
  let n = 0; let shift = 0
  for (;;) {
    const x = b[i++]
    n += (x & 0x7f) * 2 ** shift
    if (x < 0x80) return [n, i]
    shift += 7
  }
}

let s = null

// The doc, its YKeep (cache in IndexedDB, loads through the relay) and the attached provider.
// Every ykeep message on the socket is stamped on arrival (a listener next to the provider's
// onmessage, same task) and every mark on sending (a wrapper around ws.send).
async function setup (room) {
  const doc = new Y.Doc()
  const keep = new YKeep(doc, { kind: 'document', id: room, relayUrl: location.origin, dbName: `acks-${room}` })
  await keep.whenSynced
  const provider = new WebsocketProvider(wsBase, room, doc, { disableBc: true })
  await until('provider synced', () => provider.synced)
  const wire = []
  const ws = provider.ws
  ws.addEventListener('message', (e) => {
    const b = new Uint8Array(e.data)
    if (b[0] !== 107) return
    const [kind, i] = readVar(b, 1)
    const n = i < b.length ? readVar(b, i)[0] : null
    wire.push({ t: now(), dir: 'in', kind, n, bytes: b.length })
  })
  const send = ws.send.bind(ws)
  ws.send = (data) => {
    const b = data instanceof Uint8Array ? data : new Uint8Array(data)
    if (b[0] === 107) {
      const [kind, i] = readVar(b, 1)
      wire.push({ t: now(), dir: 'out', kind, n: i < b.length ? readVar(b, i)[0] : null, bytes: b.length })
    } else if (b[0] === 0 && b[1] === 2) {
      wire.push({ t: now(), dir: 'out', kind: 'update', n: null, bytes: b.length })
    }
    return send(data)
  }
  const events = []
  keep.on('durability', (r) => events.push({ t: now(), tier: r.tier }))
  keep.attach(provider)
  await until('Welcome', () => keep.core.acknowledged)
  s = { doc, keep, provider, wire, events, text: doc.getText('t') }
  return { room }
}

// One edit, then wait for its tier `until` event (and its browser event); timestamps relative
// to the edit: browser event, mark sent, Committed/Saved on the socket, relay / store event.
async function edit (i, untilTier) {
  const { text, wire, events } = s
  const w0 = wire.length
  const e0 = events.length
  const t0 = now()
  text.insert(text.length, String.fromCharCode(97 + (i % 26)))
  const tEdit = now() - t0
  const have = (tier) => events.slice(e0).find((e) => e.tier === tier)
  await until(`${untilTier} event of edit ${i}`, () => have(untilTier) && have('browser'), 60_000)
  const rel = (x) => (x ? x.t - t0 : null)
  const mine = wire.slice(w0)
  const mark = mine.find((m) => m.dir === 'out' && m.kind === 1)
  const update = mine.find((m) => m.dir === 'out' && m.kind === 'update')
  const committed = mine.find((m) => m.dir === 'in' && m.kind === 3 && mark && m.n >= mark.n)
  const saved = mine.find((m) => m.dir === 'in' && m.kind === 4 && mark && m.n >= mark.n)
  return {
    i,
    editMs: tEdit,
    browser: rel(have('browser')),
    updateSent: rel(update),
    markSent: rel(mark),
    committedWire: rel(committed),
    relay: rel(have('relay')),
    savedWire: rel(saved),
    store: rel(have('store')),
    mark: mark?.n ?? null
  }
}

async function edits (n, untilTier, gapMs) {
  const rows = []
  for (let i = 0; i < n; i++) {
    rows.push(await edit(i, untilTier))
    if (gapMs) await sleep(gapMs)
  }
  return rows
}

// The floor, on a fresh socket of the same kind to an empty room of the same relay: a raw
// y-sync SyncStep1 (empty state vector) -> SyncStep2, and (opted in with ?ykeep=acks) a Mark
// with nothing to commit -> its Committed, which the room answers in the same step without
// appending to the log.
async function floor (room, n) {
  const ws = new WebSocket(`${wsBase}/${room}?ykeep=acks`)
  ws.binaryType = 'arraybuffer'
  let waiting = null
  let welcomed = false
  ws.onmessage = (e) => {
    const b = new Uint8Array(e.data)
    if (b[0] === 107 && b[1] === 2) welcomed = true
    if (waiting && waiting.match(b)) { const w = waiting; waiting = null; w.resolve(now()) }
  }
  await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject })
  await until('Welcome on the floor socket', () => welcomed)
  const rtt = (frame, match) => new Promise((resolve) => {
    const t0 = now()
    waiting = { match, resolve: (t) => resolve(t - t0) }
    ws.send(frame)
  })
  const sync = []
  const mark = []
  for (let i = 0; i < n; i++) {
    sync.push(await rtt(new Uint8Array([0, 0, 1, 0]), (b) => b[0] === 0 && b[1] === 1))
    const k = i + 1
    const frame = k < 128 ? new Uint8Array([107, 1, k]) : new Uint8Array([107, 1, (k & 0x7f) | 0x80, k >> 7])
    mark.push(await rtt(frame, (b) => b[0] === 107 && b[1] === 3))
  }
  ws.close()
  return { sync, mark }
}

async function teardown () {
  if (!s) return
  s.provider.destroy()
  await s.keep.destroy()
  s = null
}

window.bench = { setup, edits, floor, teardown }
window.benchReady = true
