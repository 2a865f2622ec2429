// The `ykeep` npm package as an app uses it: `pkg/` (scripts/build-wasm) imported with the real
// `yjs`. Node has no IndexedDB: these tests use fake-indexeddb (an in-memory IndexedDB), and one
// runs with no IndexedDB at all (warn and work without a cache). Real IndexedDB is covered by the
// wasm-bindgen browser tests (tests/browser_client.rs) and bench/client-load.
// The load-chain test starts the real `ykeep-relay serve --demo` (relay + embedded store).
import 'fake-indexeddb/auto'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createServer } from 'node:http'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'
import { KeepCore, YKeep } from '../../pkg/ykeep.js'

const relayBin = process.env.YKEEP_RELAY_BIN || new URL('../../target/debug/ykeep-relay', import.meta.url).pathname
const noRelay = existsSync(relayBin) ? false : `relay binary not built (${relayBin}): cargo build -p ykeep-relay`
let dbCounter = 0
const freshDb = () => `ykeep-js-${process.pid}-${++dbCounter}`

async function until (what, fn, timeoutMs = 20_000) {
  const start = Date.now()
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

test('bind, edit, destroy, rebind -> same text (IndexedDB cache)', async () => {
  const dbName = freshDb()
  const doc = new Y.Doc()
  const keep = new YKeep(doc, { kind: 'document', id: 'js-rebind', dbName })
  const first = await keep.whenSynced
  assert.deepEqual(first.sources.map((s) => [s.source, s.status]),
    [['relay', 'skipped'], ['store', 'skipped'], ['indexeddb', 'missing']])
  const text = doc.getText('t')
  text.insert(0, 'hello world')
  text.delete(0, 6)
  text.insert(5, '!')
  doc.getMap('m').set('k', 42)
  await keep.destroy()
  assert.equal(keep.status, 'destroyed')
  text.insert(0, 'not stored: ')  // after destroy nothing is written

  const doc2 = new Y.Doc()
  const keep2 = new YKeep(doc2, { kind: 'document', id: 'js-rebind', dbName })
  const statuses = []
  keep2.on('status', (s) => statuses.push(s.status))
  const report = await keep2.whenSynced
  assert.equal(report.sources[2].status, 'ok')
  assert.equal(doc2.getText('t').toString(), 'world!')
  assert.equal(doc2.getMap('m').get('k'), 42)
  assert.deepEqual(statuses, ['synced'])
  // Another room in the same database stays empty.
  const other = new Y.Doc()
  const keep3 = new YKeep(other, { kind: 'task', id: 'js-rebind', dbName })
  await keep3.whenSynced
  assert.equal(other.getText('t').toString(), '')
  await keep2.clearData()
  await Promise.all([keep2.destroy(), keep3.destroy()])
  const doc4 = new Y.Doc()
  const keep4 = new YKeep(doc4, { kind: 'document', id: 'js-rebind', dbName })
  await keep4.whenSynced
  assert.equal(doc4.getText('t').toString(), '', 'clearData removed the room')
  await keep4.destroy()
})

test('edits made before whenSynced and content present before binding are kept', async () => {
  const dbName = freshDb()
  const doc = new Y.Doc()
  doc.getText('t').insert(0, 'before-bind;')
  const keep = new YKeep(doc, { kind: 'diagram', id: 'early', dbName })
  doc.getText('t').insert(0, 'while-loading;')
  await keep.whenSynced
  await keep.destroy()
  const again = new Y.Doc()
  const k2 = new YKeep(again, { kind: 'diagram', id: 'early', dbName })
  await k2.whenSynced
  assert.equal(again.getText('t').toString(), doc.getText('t').toString())
  await k2.destroy()
})

test('bad options throw real Error objects before any I/O', () => {
  const doc = new Y.Doc()
  assert.throws(() => new YKeep(doc, { kind: 'doc', id: 'x' }), (e) => e instanceof RangeError && /unknown kind "doc"/.test(e.message))
  assert.throws(() => new YKeep(doc, { kind: 'task', id: 'a/b' }), RangeError)
  assert.throws(() => new YKeep(doc, { kind: 'task', id: 'x', relayUrl: 'ws://x' }), RangeError)
  assert.throws(() => new YKeep(doc, { kind: 'task', id: 'x', timeoutMs: 0 }), RangeError)
  // The options are read field by field (bindings/convert.rs): wrong types and unknown fields
  // are refused by name.
  const refused = (options, why) =>
    assert.throws(() => new YKeep(doc, options), (e) => e instanceof RangeError && why.test(e.message), why.source)
  refused(undefined, /ykeep: invalid option: the options must be an object/)
  refused({ kind: 'task', id: 'x', timeoutMs: 1.5 }, /timeoutMs must be a non-negative integer/)
  refused({ kind: 'task', id: 'x', compactionFloorBytes: -1 }, /compactionFloorBytes must be a non-negative integer/)
  refused({ kind: 'task', id: 7 }, /id must be a string/)
  refused({ kind: 'task', id: 'x', indexeddb: 'no' }, /indexeddb must be a boolean/)
  refused({ kind: 'task', id: 'x', relayURL: 'http://x' }, /unknown option relayURL \(the options are kind, id, relayUrl,/)
  // Absent and null are the same: the defaults.
  const core = new KeepCore({ kind: 'task', id: 'x', relayUrl: null, timeoutMs: undefined, indexeddb: false })
  assert.equal(core.room, 'task/x')
  core.free()
  assert.throws(() => new YKeep({}, { kind: 'task', id: 'x' }), TypeError)
})

test('no IndexedDB: warns and works without a cache', async () => {
  const saved = globalThis.indexedDB
  delete globalThis.indexedDB
  const warn = console.warn
  const warnings = []
  console.warn = (...a) => warnings.push(a.join(' '))
  try {
    const doc = new Y.Doc()
    const keep = new YKeep(doc, { kind: 'document', id: 'no-idb' })
    const report = await keep.whenSynced
    assert.equal(report.sources[2].status, 'skipped')
    assert.match(report.sources[2].error, /indexedDB is not available/)
    assert.ok(warnings.some((w) => /without a local cache/.test(w)), warnings.join('\n'))
    doc.getText('t').insert(0, 'still editable')
    await keep.flush()
    assert.deepEqual(await keep.outbox(), [])
    assert.equal(await keep.compact(), null)
    await keep.destroy()
  } finally {
    globalThis.indexedDB = saved
    console.warn = warn
  }
})

// A fake HTTP source: a slow, failing or corrupt relay / store next to a working one.
function fakeServer (handler) {
  const server = createServer(handler)
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () =>
    resolve({ url: `http://127.0.0.1:${server.address().port}`, close: () => { server.closeAllConnections(); server.close() } })))
}

test('load chain with fakes: slow relay times out, corrupt store is skipped, cache still loads', async () => {
  const dbName = freshDb()
  const seedDoc = new Y.Doc()
  const seed = new YKeep(seedDoc, { kind: 'document', id: 'fakes', dbName })
  await seed.whenSynced
  seedDoc.getText('t').insert(0, 'cached')
  await seed.destroy()
  const relay = await fakeServer(() => { /* never answers */ })
  const store = await fakeServer((req, res) => { res.writeHead(200); res.end(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x7f, 1, 2])) })
  try {
    const doc = new Y.Doc()
    // The timeout bounds each source; the corrupt store answers at once, but on a loaded 2-core CI
    // machine 300 ms was once too short for it too (it reported 'timeout'), so leave it room.
    const keep = new YKeep(doc, { kind: 'document', id: 'fakes', dbName, relayUrl: relay.url, storeUrl: store.url, timeoutMs: 2000 })
    const report = await keep.whenSynced
    assert.deepEqual(report.sources.map((s) => s.status), ['timeout', 'corrupt', 'ok'])
    assert.equal(doc.getText('t').toString(), 'cached')
    await keep.destroy()
  } finally {
    relay.close()
    store.close()
  }
})

// A compacted record alone is handed to Y.applyUpdate without a decode in wasm: if it is corrupt,
// Yjs' refusal is reported (cache `corrupt`, a warning), whenSynced still resolves and the page's
// edits are still stored.
test('a corrupt compacted cache record is reported and skipped, not thrown', async () => {
  const dbName = freshDb()
  const seedDoc = new Y.Doc()
  const seed = new YKeep(seedDoc, { kind: 'document', id: 'bad-record', dbName })
  await seed.whenSynced
  seedDoc.getText('t').insert(0, 'soon overwritten')
  await seed.compact()
  await seed.destroy()
  const db = await new Promise((resolve, reject) => {
    const r = indexedDB.open(dbName)
    r.onsuccess = () => resolve(r.result)
    r.onerror = () => reject(r.error)
  })
  await new Promise((resolve, reject) => {
    const tx = db.transaction('rooms', 'readwrite')
    const garbage = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3])
    tx.objectStore('rooms').put({ v: 1, state: garbage, pending: new Uint8Array(), pendingAll: true, marker: new Uint8Array() }, 'document/bad-record')
    tx.oncomplete = resolve
    tx.onerror = () => reject(tx.error)
  })
  db.close()

  const doc = new Y.Doc()
  const keep = new YKeep(doc, { kind: 'document', id: 'bad-record', dbName })
  const warnings = []
  keep.on('warning', (w) => warnings.push(w.message))
  const report = await keep.whenSynced
  assert.equal(report.sources[2].status, 'corrupt')
  assert.match(report.sources[2].error, /Y.applyUpdate refused the cached state/)
  assert.equal(report.loaded, false)
  assert.ok(warnings.some((w) => /refused the cached state/.test(w)), warnings.join('\n'))
  doc.getText('t').insert(0, 'new edit')
  await keep.flush()
  assert.equal((await keep.outbox()).length > 0, true, 'later edits are still stored')
  await keep.destroy()
})

// The load's apply runs without ykeep's own 'update' listener (Yjs would encode the whole state
// for it); an edit an observer makes inside that apply must still reach the cache.
test('an edit made by an observer during the load apply is stored', async () => {
  const dbName = freshDb()
  const seedDoc = new Y.Doc()
  const seed = new YKeep(seedDoc, { kind: 'task', id: 'observer', dbName })
  await seed.whenSynced
  seedDoc.getText('t').insert(0, 'loaded text')
  await seed.compact()
  await seed.destroy()

  const doc = new Y.Doc()
  doc.getText('t').observe(() => {
    if (!doc.getMap('m').has('seen')) doc.getMap('m').set('seen', doc.getText('t').toString())
  })
  const keep = new YKeep(doc, { kind: 'task', id: 'observer', dbName })
  await keep.whenSynced
  assert.equal(doc.getMap('m').get('seen'), 'loaded text')
  await keep.destroy()

  const again = new Y.Doc()
  const k2 = new YKeep(again, { kind: 'task', id: 'observer', dbName })
  await k2.whenSynced
  assert.equal(again.getText('t').toString(), 'loaded text')
  assert.equal(again.getMap('m').get('seen'), 'loaded text', 'the observer\'s edit was stored')
  await k2.destroy()
})

const TOKEN_KEY = 'client-test-token-key'

function mintToken (kind, id) {
  return new Promise((resolve, reject) => {
    const child = spawn(relayBin, ['token', '--kind', kind, '--id', id, '--token-key', TOKEN_KEY], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d) => { out += d })
    child.on('exit', (code) => code === 0 ? resolve(out.trim()) : reject(new Error(`token exited ${code}`)))
  })
}

function startServe (dataDir) {
  const child = spawn(relayBin, ['serve', '--demo', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--save-debounce-ms', '200',
    '--token-key', TOKEN_KEY, '--secret', 'client-test-secret'],
    { stdio: ['ignore', 'pipe', 'inherit'] })
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout })
    rl.on('line', (line) => {
      const m = line.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/)
      if (m) resolve({ child, url: m[1], host: m[1].slice(7) })
    })
    child.once('exit', (code) => reject(new Error(`ykeep-relay exited early (${code})`)))
  })
}

test('load chain against the real relay and store (ykeep-relay serve --demo)', { skip: noRelay, timeout: 60_000 }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'ykeep-client-'))
  const serve = await startServe(dataDir)
  const id = `lc-${process.pid}`
  const token = await mintToken('document', id)
  try {
    // A stock y-websocket client writes into the live room.
    const writerDoc = new Y.Doc()
    const writer = new WebsocketProvider(`ws://${serve.host}/rooms/document`, id, writerDoc, { WebSocketPolyfill: WebSocket, disableBc: true })
    await until('writer synced', () => writer.synced)
    writerDoc.getText('t').insert(0, 'live edit; ')
    writerDoc.getText('t').delete(0, 5)
    const want = writerDoc.getText('t').toString()
    const liveText = async () => {
      const r = await fetch(`${serve.url}/rooms/document/${id}/state`, { headers: { authorization: `Bearer ${token}` } })
      if (r.status !== 200) return false
      const d = new Y.Doc()
      Y.applyUpdate(d, new Uint8Array(await r.arrayBuffer()))
      return d.getText('t').toString() === want
    }
    await until('the relay has the edit', liveText)

    // 1. Relay live: the relay answers, the store may not have it yet; one apply into the doc.
    const dbName = freshDb()
    const doc = new Y.Doc()
    let applied = 0
    doc.on('update', () => applied++)
    const keep = new YKeep(doc, { kind: 'document', id, relayUrl: serve.url, storeUrl: serve.url, token, dbName })
    const report = await keep.whenSynced
    assert.equal(report.sources[0].source, 'relay')
    assert.equal(report.sources[0].status, 'ok', JSON.stringify(report))
    assert.equal(doc.getText('t').toString(), want)
    assert.equal(applied, 1, 'one Y.applyUpdate of the merged state')

    // 2. The writer leaves; the relay saves to the store (debounce 200 ms).
    writer.destroy()
    writer.awareness.destroy() // its check interval would keep node alive
    const view = await until('the store covers the page state', async () => {
      const v = await keep.durability()
      return v.store === true ? v : false
    })
    assert.equal(view.relay, true)
    assert.equal(view.local, true)
    assert.equal(view.pendingUpdates, 0)

    // 3. Store only (no relay URL): the snapshot loads.
    const storeDoc = new Y.Doc()
    const storeKeep = new YKeep(storeDoc, { kind: 'document', id, storeUrl: serve.url, token, indexeddb: false })
    const storeReport = await storeKeep.whenSynced
    assert.deepEqual(storeReport.sources.map((s) => s.status), ['skipped', 'ok', 'skipped'], JSON.stringify(storeReport))
    assert.equal(storeDoc.getText('t').toString(), want)
    await storeKeep.destroy()

    // 4. A local edit is in the outbox until the relay has it.
    doc.getText('t').insert(0, 'offline ')
    await keep.flush()
    assert.equal((await keep.outbox()).length, 1)
    const again = await keep.durability()
    assert.equal(again.relay, false, 'the relay lacks the local edit')
    assert.equal(again.pendingUpdates, 1)
    await keep.destroy()

    // 5. Relay and store gone: the cache alone restores everything, local edit included.
    serve.child.kill('SIGKILL')
    const cachedDoc = new Y.Doc()
    const cachedKeep = new YKeep(cachedDoc, { kind: 'document', id, relayUrl: serve.url, storeUrl: serve.url, token, dbName, timeoutMs: 1000 })
    const cachedReport = await cachedKeep.whenSynced
    assert.deepEqual(cachedReport.sources.map((s) => s.status), ['error', 'error', 'ok'])
    assert.equal(cachedDoc.getText('t').toString(), 'offline ' + want)
    await cachedKeep.destroy()
  } finally {
    serve.child.kill('SIGKILL')
    rmSync(dataDir, { recursive: true, force: true })
  }
})
