// The party host when its store fails, on the real runtime (workerd through Miniflare, Durable
// Object storage persisted to a temp dir) with a real embedded store process behind a proxy
// that counts requests:
// - store down (its process killed): edits keep flowing between clients and stay in the
//   object's storage (through a kill -9 of workerd too); the failed save is logged with the
//   store URL; once the store is back the edits are saved at the next trigger (the next
//   periodic alarm, or the next last-disconnect), and an idle object does not retry by itself;
// - a store URL answering 404 with an HTML page deletes nothing: the room keeps serving, nothing
//   is quarantined, and after a restart pointing back at the real store the edits are there
//   and get saved;
// - the store answering the contract's `resource_deleted` closes the clients with 1008
//   "resource_deleted…" and moves the log to the quarantine table (read from the persisted
//   SQLite file), never into nothing.
// Clients do not reconnect: after a restart, what a fresh client sees came from the object's
// storage (and the store, when it is up).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import * as Y from 'yjs'
import { startProxiedStack, startStoreProxy, skipReason, sqliteSkipReason, readRoomTables, recordUpdates } from './lib.mjs'
import { createResource, loadSnapshot, waitFor, SECRET } from '../reliability/lib/procs.mjs'
import { SyncClient } from '../reliability/lib/client.mjs'

const skip = skipReason()
const noSqlite = sqliteSkipReason()
const KIND = 'document'
const INTERVAL = 1500
const DEBOUNCE = 500

let stack
before(async () => {
  if (skip) return
  stack = await startProxiedStack({ vars: { YKEEP_SAVE_INTERVAL_MS: String(INTERVAL), YKEEP_SAVE_DEBOUNCE_MS: String(DEBOUNCE), YKEEP_STORE_TIMEOUT_MS: '2000', YKEEP_STORE_POLL_MS: '0' } })
})
after(async () => { await stack?.stop() })

const textOf = (bytes) => { const d = new Y.Doc(); Y.applyUpdate(d, bytes); return d.getText('t').toString() }
const saves = (id) => stack.proxy.saves(KIND, id)
const roomRequests = (id, from = 0) => stack.proxy.requests.slice(from).filter((r) => r.path === `/snapshots/${KIND}/${id}`)
async function storeText (id) {
  const s = await loadSnapshot(stack.store.url, KIND, id)
  return s ? textOf(s.bytes) : null
}

async function join (id, name = 'client', party = stack.party) {
  const c = new SyncClient(`${party.wsUrl}/rooms/${KIND}/${id}`, { name, reconnect: false })
  await waitFor(`${name} to sync on ${id}`, () => c.synced, { timeoutMs: 30_000 })
  c.write = (text) => {
    const sv = Y.encodeStateVector(c.doc)
    c.doc.getText('t').insert(c.doc.getText('t').length, text)
    c.sendUpdate(Y.encodeStateAsUpdate(c.doc, sv))
  }
  return c
}

/** The live room's text (GET /state), or null when it is not live. */
async function liveText (id) {
  const r = await fetch(`${stack.party.url}/rooms/${KIND}/${id}/state`)
  return r.status === 200 ? textOf(new Uint8Array(await r.arrayBuffer())) : null
}

/** Edits by `a` and `b`, each seen by the other (so logged: the output gate). */
async function exchange (a, b, ta, tb) {
  a.write(ta)
  await waitFor('a\'s edit to reach b', () => b.text().includes(ta))
  b.write(tb)
  await waitFor('b\'s edit to reach a', () => a.text().includes(tb))
  assert.equal(a.text(), b.text())
  return a.text()
}

/** The room's tables in the persisted SQLite, found by a text its records hold. */
function tablesHolding (needle, where = 'log') {
  return readRoomTables(stack.persist).find((t) => {
    const d = new Y.Doc()
    for (const r of t[where]) for (const u of recordUpdates(r.format, r.data)) Y.applyUpdate(d, u)
    return d.getText('t').toString().includes(needle)
  })
}

test('store down: edits flow, stay in Durable Object storage through kill -9, are saved at the next trigger once it is back', { skip, timeout: 120_000 }, async () => {
  const id = 'down'
  const idle = 'down-idle'
  const ctl = 'down-control'
  for (const r of [id, idle, ctl]) await createResource(stack.store.url, KIND, r)
  const a = await join(id, 'a')
  const b = await join(id, 'b')
  const saved = await exchange(a, b, 'saved ', 'before ')
  await waitFor('a first periodic save', () => saves(id) === 1, { timeoutMs: 30_000 })

  await stack.store.kill()
  const text = await exchange(a, b, 'down-a ', 'down-b ')
  assert.ok(text.startsWith(saved))
  const failed = (room) => stack.party.logs.some((l) => /save failed/.test(l) && l.includes(`${stack.proxy.url}/snapshots/${KIND}/${room}`))
  await waitFor('the failed save logged with the store URL', () => failed(id), { timeoutMs: 30_000 })
  assert.ok(a.connected && b.connected && a.closeEvents.length === 0, 'a failed save closed a client')

  // kill -9 of workerd with the store still down: a fresh client gets everything from the
  // object's storage alone.
  a.close()
  b.close()
  await stack.restart()
  const f = await join(id, 'fresh')
  assert.equal(f.text(), text, 'edits made while the store was down were lost in the crash')
  f.write('after-crash')
  const all = text + 'after-crash'

  // Another room's only client edits and leaves while the store is down: its debounced save
  // fails, and from then on nothing may wake it by itself.
  const i = await join(idle, 'idle-writer')
  i.write('idle edit')
  await waitFor('the idle room edit logged', async () => (await liveText(idle)) === 'idle edit')
  i.close()
  await waitFor('the idle room\'s failed save logged', () => failed(idle), { timeoutMs: 30_000 })
  const from = stack.proxy.requests.length

  // The store comes back: the next periodic alarm saves, the client still connected.
  await stack.store.restart()
  await waitFor('the edits saved at the next periodic save', async () => (await storeText(id)) === all, { timeoutMs: 30_000 })
  assert.ok(f.connected, 'the save came from the periodic alarm of a connected room')

  // The idle room: no client, no retry loop. Three periodic saves of a control room pass
  // (longer than a save attempt, the store timeout and the debounce together) without one
  // request for it; then the next last-disconnect saves its edit.
  const c = await join(ctl, 'control')
  for (const t of ['x', 'y', 'z']) {
    const n = saves(ctl)
    c.write(t)
    await waitFor('a control periodic save', () => saves(ctl) > n, { timeoutMs: 30_000 })
  }
  assert.deepEqual(roomRequests(idle, from), [], 'an idle object asked the store by itself (a retry loop)')
  assert.equal(await storeText(idle), null)
  const j = await join(idle, 'trigger')
  assert.equal(j.text(), 'idle edit', 'the idle room lost its edit')
  j.close()
  await waitFor('the idle room saved after the next last-disconnect', async () => (await storeText(idle)) === 'idle edit', { timeoutMs: 30_000 })
  for (const x of [f, c]) x.close()
})

test('a store URL answering 404 HTML deletes nothing; pointed back at the real store, the edits are there and saved', { skip, timeout: 120_000 }, async () => {
  const id = 'html'
  await createResource(stack.store.url, KIND, id)
  const w = await join(id, 'w')
  w.write('base ')
  await waitFor('the base edit logged', async () => (await liveText(id)) === 'base ')
  w.close()
  await waitFor('the base saved', async () => (await storeText(id)) === 'base ', { timeoutMs: 30_000 })

  const html = await startStoreProxy(stack.store.url)
  html.setMode('html404')
  try {
    const party = await stack.restart({ crash: false, storeUrl: html.url })
    const a = await join(id, 'a')
    const b = await join(id, 'b')
    assert.equal(a.text(), 'base ', 'the room did not serve its log with the store answering 404 HTML')
    const text = await exchange(a, b, 'html-a ', 'html-b')
    const url = `${html.url}/snapshots/${KIND}/${id}`
    await waitFor('the failed save logged with its URL and status', () =>
      party.logs.some((l) => /save failed/.test(l) && l.includes(url) && /answered 404/.test(l)), { timeoutMs: 30_000 })
    assert.ok(html.requests.some((r) => r.path === `/snapshots/${KIND}/${id}`), 'the host never asked the 404 store')
    // Still serving: a new client gets everything, nobody was closed, nothing quarantined.
    const c = await join(id, 'c')
    assert.equal(c.text(), text)
    c.write(' more')
    await waitFor('c\'s edit to reach a', () => a.text() === text + ' more')
    for (const x of [a, b, c]) assert.deepEqual(x.closeEvents, [], `${x.name} was closed`)
    assert.ok(!party.logs.some((l) => /quarantine|resource_deleted/.test(l)), party.logs.filter((l) => /quarantine/.test(l)).join('\n'))
    if (!noSqlite) {
      const t = tablesHolding('html-a ')
      assert.ok(t, 'the edits are not in the object\'s log')
      assert.equal(t.quarantine.length, 0, 'records were quarantined')
    }
    // Everyone leaves: the debounced save fails too, and deletes nothing.
    const failures = () => party.logs.filter((l) => /save failed/.test(l) && l.includes(url)).length
    const n = failures()
    for (const x of [a, b, c]) x.close()
    await waitFor('the debounced save to fail as well', () => failures() > n, { timeoutMs: 30_000 })
    assert.equal(await storeText(id), 'base ', 'the real store changed')

    // Pointed back at the real store (a kill -9 on the way): the edits survived and are saved.
    await stack.restart()
    const d = await join(id, 'd')
    assert.equal(d.text(), text + ' more', 'edits made while the store answered 404 were lost')
    d.close()
    await waitFor('the edits saved to the real store', async () => (await storeText(id)) === text + ' more', { timeoutMs: 30_000 })
    if (!noSqlite) assert.equal(tablesHolding('html-a ').quarantine.length, 0)
  } finally {
    await html.close()
  }
})

test('the store answering resource_deleted closes clients with 1008 and moves the log to quarantine', { skip, timeout: 120_000 }, async (t) => {
  const id = 'gone'
  await createResource(stack.store.url, KIND, id)
  const a = await join(id, 'a')
  const b = await join(id, 'b')
  await exchange(a, b, 'saved-then ', 'deleted ')
  await waitFor('a periodic save', () => saves(id) === 1, { timeoutMs: 30_000 })
  // The resource is deleted at the store (the contract's DELETE): the room's next save, of the
  // edits that follow, is answered 404 {"error":{"code":"resource_deleted"}}.
  const del = await fetch(`${stack.store.url}/snapshots/${KIND}/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${SECRET}` } })
  assert.equal(del.status, 204)
  await exchange(a, b, 'unsaved-a ', 'unsaved-b')
  await waitFor('both clients closed', () => a.closeEvents.length && b.closeEvents.length, { timeoutMs: 30_000 })
  for (const x of [a, b]) {
    assert.equal(x.closeEvents[0].code, 1008, JSON.stringify(x.closeEvents))
    assert.ok(x.closeEvents[0].reason.startsWith('resource_deleted'), x.closeEvents[0].reason)
  }
  const answered = stack.proxy.requests.filter((r) => r.path === `/snapshots/${KIND}/${id}` && r.status === 404)
  assert.ok(answered.length >= 1, 'the store never answered 404')
  assert.ok(stack.party.logs.some((l) => /moved to ykeep_quarantine/.test(l) && l.includes(`${KIND}/${id}`)), 'no quarantine logged')
  // A client that comes later is refused the same way.
  const late = new SyncClient(`${stack.party.wsUrl}/rooms/${KIND}/${id}`, { name: 'late', reconnect: false })
  // (Read from the close frame itself: the host closes this socket while it joins, and workerd
  // then ends its TCP connection, which the 'close' event waits for, only ~12 s later.)
  await waitFor('the late client\'s close frame', () => late.closeEvents.length || late.ws._closeFrameReceived, { timeoutMs: 30_000 })
  const lateClose = late.closeEvents[0] ?? { code: late.ws._closeCode, reason: String(late.ws._closeMessage) }
  assert.equal(lateClose.code, 1008)
  assert.ok(lateClose.reason.startsWith('resource_deleted'), lateClose.reason)
  assert.equal(late.received.length, 0, 'a deleted room sent its content')
  if (noSqlite) return t.diagnostic(`quarantine table not checked: ${noSqlite}`)
  const q = tablesHolding('unsaved-b', 'quarantine')
  assert.ok(q, 'the unsaved edits are not in any quarantine table')
  assert.equal(q.log.length, 0, 'the log was not emptied into the quarantine')
  assert.ok(q.quarantine.every((r) => /resource_deleted/.test(r.reason)), JSON.stringify(q.quarantine.map((r) => r.reason)))
  const d = new Y.Doc()
  for (const r of q.quarantine) for (const u of recordUpdates(r.format, r.data)) Y.applyUpdate(d, u)
  assert.equal(d.getText('t').toString(), a.text(), 'the quarantine lacks edits')
  late.close()
})
