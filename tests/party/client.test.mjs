// Issue 14, "the client module's load chain and durability view work against the party host":
// the `ykeep` package (pkg/, scripts/build-wasm) with `relayUrl` at the party host (workerd through
// Miniflare: /rooms/{kind}/{id}/state and /durable) and `storeUrl` at the real embedded store
// process (`ykeep-relay store`), wired as the demo page wires them (www/src/room.js): a YKeep for
// the load chain and the durability view, a stock y-websocket provider on /rooms/{kind} for the
// edits. Tokens are real user tokens, checked by the party host through the store's verify
// endpoint (no YKEEP_DEV_ALLOW_ALL). Node has no IndexedDB: fake-indexeddb, as tests/js/client.test.mjs.
import 'fake-indexeddb/auto'
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import * as Y from 'yjs'
import WebSocket from 'ws'
import { WebsocketProvider } from 'y-websocket'
import { startPartyStack, skipReason, TOKEN_KEY } from './lib.mjs'
import { mintToken } from '../reliability/lib/tokens.mjs'
import { createResource, loadSnapshot, waitFor } from '../reliability/lib/procs.mjs'
import { textOf } from '../reliability/lib/check.mjs'

const PKG = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../pkg/ykeep.js')
const skip = skipReason() || (fs.existsSync(PKG) ? false : `client module not built (${PKG}): run scripts/build-wasm`)
const { YKeep } = skip ? {} : await import(PKG)

const KIND = 'document'
let stack
let dbCounter = 0
const freshDb = () => `ykeep-party-client-${process.pid}-${++dbCounter}`
const cleanups = []

before(async () => {
  if (skip) return
  // Saves only on the last leave (the debounce): while a page is connected nothing is saved, so
  // the durability view is seen at `relay` before it moves to `store`.
  stack = await startPartyStack({ vars: { YKEEP_DEV_ALLOW_ALL: 'false', YKEEP_SAVE_INTERVAL_MS: '600000', YKEEP_SAVE_DEBOUNCE_MS: '300' } })
})
after(async () => {
  for (const c of cleanups.reverse()) await c()
  await stack?.stop()
})

function provider (doc, id, token) {
  const p = new WebsocketProvider(`${stack.party.wsUrl}/rooms/${KIND}`, id, doc, {
    WebSocketPolyfill: WebSocket, disableBc: true, params: { token }
  })
  cleanups.push(() => { p.destroy(); p.awareness.destroy() })
  return p
}
const leave = (p) => { p.destroy(); p.awareness.destroy() }

async function storeText (id) {
  const s = await loadSnapshot(stack.store.url, KIND, id)
  return s ? textOf(s.bytes) : null
}

test('load chain and durability view against the party host (relay) and the embedded store', { skip, timeout: 90_000 }, async () => {
  const id = `client-${process.pid}`
  const token = mintToken(TOKEN_KEY, { kind: KIND, id })
  const opts = (more) => ({ kind: KIND, id, relayUrl: stack.party.url, storeUrl: stack.store.url, token, ...more })
  await createResource(stack.store.url, KIND, id)

  // 0. A doc saved before: a stock provider writes through the party host and leaves; the
  //    debounced save brings it to the store.
  const seedDoc = new Y.Doc()
  const seed = provider(seedDoc, id, token)
  await waitFor('the seed provider to sync', () => seed.synced)
  seedDoc.getText('t').insert(0, 'saved before; ')
  seedDoc.getText('t').insert(0, 'x')
  seedDoc.getText('t').delete(0, 1)
  const before = seedDoc.getText('t').toString()
  await waitFor('the party host to hold the seed edit', async () => {
    const r = await fetch(`${stack.party.url}/rooms/${KIND}/${id}/state`, { headers: { authorization: `Bearer ${token}` } })
    return r.status === 200 && textOf(new Uint8Array(await r.arrayBuffer())) === before
  })
  leave(seed)
  await waitFor('the seed to reach the store', async () => (await storeText(id)) === before, { timeoutMs: 30_000, everyMs: 100 })

  // 1. A page loads it (relay first, then store, then its empty cache), in one apply.
  const dbName = freshDb()
  const doc = new Y.Doc()
  let applied = 0
  doc.on('update', () => applied++)
  const keep = new YKeep(doc, opts({ dbName }))
  cleanups.push(() => keep.destroy())
  const report = await keep.whenSynced
  const statuses = (r) => r.sources.map((s) => `${s.source} ${s.status}${s.error ? ` (${s.error})` : ''}`).join(', ')
  console.log(`party client: first load: ${statuses(report)}`)
  assert.deepEqual(report.sources.map((s) => s.source), ['relay', 'store', 'indexeddb'])
  // The party host answers /state while the room is open, 404 not_live once it unloaded: either
  // is the relay's own answer; the store holds the saved doc in both cases.
  assert.ok(['ok', 'missing'].includes(report.sources[0].status), JSON.stringify(report))
  assert.equal(report.sources[1].status, 'ok', JSON.stringify(report))
  assert.equal(doc.getText('t').toString(), before)
  assert.equal(applied, 1, 'one Y.applyUpdate of the merged state')

  // 2. The page edits through its provider: the view is at `relay` (the host's log covers the
  //    page's state; no save while a client is connected), with an empty outbox.
  const page = provider(doc, id, token)
  await waitFor('the page provider to sync', () => page.synced)
  doc.getText('t').insert(doc.getText('t').length, 'edited on the page')
  doc.getText('t').delete(0, 'saved '.length)
  const want = doc.getText('t').toString()
  assert.equal(want, 'before; edited on the page')
  const atRelay = await waitFor('the view to reach relay', async () => {
    const v = await keep.durability()
    return v.relay === true ? v : null
  })
  assert.equal(atRelay.store, false, `the store has not got the page's edit yet: ${JSON.stringify(atRelay)}`)
  assert.equal(atRelay.local, true)
  assert.equal(atRelay.pendingUpdates, 0, 'the relay marker empties the outbox')
  assert.equal(atRelay.error ?? null, null)
  const savedBefore = atRelay.storeSnapshotId
  assert.ok(savedBefore, 'the host reports the snapshot it loaded from the store')

  // 3. The page's provider leaves; the host saves; the view moves to `store`.
  leave(page)
  const atStore = await waitFor('the view to reach store', async () => {
    const v = await keep.durability()
    return v.store === true ? v : null
  }, { timeoutMs: 30_000, everyMs: 100 })
  assert.equal(atStore.relay, true)
  assert.notEqual(atStore.storeSnapshotId, savedBefore, 'a new snapshot')
  assert.ok(atStore.savedAt > 0, JSON.stringify(atStore))
  assert.equal(await storeText(id), want, 'the store snapshot holds the page\'s edit')
  await keep.destroy()

  // 4. A fresh page (no cache) loads it back through the chain after workerd was kill -9ed and
  //    restarted on the same storage: relay (cold room, 404 not_live) or store, same text.
  await stack.crash()
  const fresh = new Y.Doc()
  const freshKeep = new YKeep(fresh, opts({ dbName: freshDb() }))
  cleanups.push(() => freshKeep.destroy())
  const freshReport = await freshKeep.whenSynced
  console.log(`party client: fresh page after kill -9 and restart: ${statuses(freshReport)}`)
  assert.equal(freshReport.sources[1].status, 'ok', JSON.stringify(freshReport))
  assert.equal(fresh.getText('t').toString(), want)
  const view = await freshKeep.durability()
  console.log(`party client: views: at relay ${JSON.stringify(atRelay)}; at store ${JSON.stringify(atStore)}; after restart ${JSON.stringify(view)}`)
  assert.equal(view.store, true, `the restarted host reports the store covering it: ${JSON.stringify(view)}`)
  assert.equal(view.relay, true, JSON.stringify(view))
  await freshKeep.destroy()

  // 5. The first page again, from its cache (its state vector goes to /state?sv=), with the
  //    host live: a provider holds the room open, so /state answers from the live room.
  const holderDoc = new Y.Doc()
  const holder = provider(holderDoc, id, token)
  await waitFor('a provider to hold the room open', () => holder.synced)
  assert.equal(holderDoc.getText('t').toString(), want, 'the restarted host\'s room has the page\'s edit')
  const again = new Y.Doc()
  const againKeep = new YKeep(again, opts({ dbName }))
  cleanups.push(() => againKeep.destroy())
  const againReport = await againKeep.whenSynced
  // The host's room holds what the cache holds (the page's edits reached both): a 304 to the
  // cache's state tag, computed by the page and by the Durable Object alike (issue 16). The store
  // has saved since the first load, so its snapshot is new to the cache.
  assert.deepEqual(againReport.sources.map((s) => s.status), ['unchanged', 'ok', 'ok'], JSON.stringify(againReport))
  assert.equal(again.getText('t').toString(), want)
  await againKeep.destroy()
  leave(holder)

  // 6. Party host down: the store alone restores it (relay error), as does the cache.
  await stack.party.kill9()
  const storeOnly = new Y.Doc()
  const storeKeep = new YKeep(storeOnly, opts({ indexeddb: false, timeoutMs: 2000 }))
  const storeReport = await storeKeep.whenSynced
  assert.deepEqual(storeReport.sources.map((s) => s.status), ['error', 'ok', 'skipped'], JSON.stringify(storeReport))
  assert.equal(storeOnly.getText('t').toString(), want)
  await storeKeep.destroy()
  await stack.crash() // back up for the next test (crash() restarts on the same storage and port)
})

test('a token the store refuses is refused by the party host on /state, /durable and the socket', { skip, timeout: 30_000 }, async () => {
  const id = `client-refused-${process.pid}`
  const other = mintToken(TOKEN_KEY, { kind: KIND, id: 'someone-else' })
  for (const what of ['state', 'durable']) {
    const r = await fetch(`${stack.party.url}/rooms/${KIND}/${id}/${what}`, { headers: { authorization: `Bearer ${other}` } })
    assert.equal(r.status, 403, `${what}: ${r.status} ${await r.clone().text()}`)
    assert.equal(r.headers.get('access-control-allow-origin'), '*', `${what}: a browser page can read the refusal`)
  }
  const doc = new Y.Doc()
  const keep = new YKeep(doc, { kind: KIND, id, relayUrl: stack.party.url, token: other, indexeddb: false })
  const report = await keep.whenSynced
  assert.equal(report.sources[0].status, 'error', JSON.stringify(report))
  await keep.destroy()
  const ws = new WebSocket(`${stack.party.wsUrl}/rooms/${KIND}/${id}?token=${other}`)
  const closed = await new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })))
  assert.equal(closed.code, 1008, JSON.stringify(closed))
  assert.match(closed.reason, /^forbidden/, JSON.stringify(closed))
})

// What a browser page needs of the relay URL besides the routes: CORS on every answer of
// /state and /durable, and a preflight that allows the Authorization header the client sends.
test('CORS: the preflight allows the client\'s Authorization header; answers carry allow-origin', { skip, timeout: 30_000 }, async () => {
  const id = `client-cors-${process.pid}`
  const token = mintToken(TOKEN_KEY, { kind: KIND, id })
  for (const what of ['state', 'durable']) {
    const url = `${stack.party.url}/rooms/${KIND}/${id}/${what}`
    const pre = await fetch(url, {
      method: 'OPTIONS',
      headers: { origin: 'http://page.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization, if-none-match' }
    })
    assert.ok(pre.status === 204 || pre.status === 200, `${what} preflight: ${pre.status}`)
    assert.equal(pre.headers.get('access-control-allow-origin'), '*')
    assert.match(pre.headers.get('access-control-allow-headers') ?? '', /authorization/i)
    assert.match(pre.headers.get('access-control-allow-headers') ?? '', /if-none-match/i, 'the client\'s conditional load')
    assert.match(pre.headers.get('access-control-allow-methods') ?? '', /GET/)
    const r = await fetch(url, { headers: { origin: 'http://page.example', authorization: `Bearer ${token}` } })
    assert.ok([200, 404].includes(r.status), `${what}: ${r.status}`)
    assert.equal(r.headers.get('access-control-allow-origin'), '*', what)
  }
})
