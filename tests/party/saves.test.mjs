// The party host's save schedule on the real runtime (workerd through Miniflare, Durable Object
// storage persisted to a temp dir), saving to a real embedded store process through a proxy
// that counts its requests:
// - the periodic save while connected, and only when there are unsaved edits;
// - the debounced save after the last disconnect, and its cancellation by a reconnect;
// - the save re-armed by an object whose runtime was killed (kill -9) with unsaved edits in its
//   log: on restart, with no client, the alarm fires and the store gets the edits;
// - after a save the log is compacted to one record (read from the persisted SQLite files),
//   and /durable shows the store's marker equal to the room's.
// Clients here never reconnect and a crash's clients are closed first: whatever reaches the
// store after a restart came from the object's own storage.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import * as Y from 'yjs'
import { startProxiedStack, skipReason, sqliteSkipReason, readRoomTables, recordUpdates, markersEqual } from './lib.mjs'
import { createResource, loadSnapshot, waitFor, durable } from '../reliability/lib/procs.mjs'
import { SyncClient } from '../reliability/lib/client.mjs'

const skip = skipReason()
const noSqlite = sqliteSkipReason()
const KIND = 'document'
const INTERVAL = 2500
const DEBOUNCE = 700

let stack
before(async () => {
  if (skip) return
  stack = await startProxiedStack({ vars: { YKEEP_SAVE_INTERVAL_MS: String(INTERVAL), YKEEP_SAVE_DEBOUNCE_MS: String(DEBOUNCE), YKEEP_STORE_POLL_MS: '0' } })
})
after(async () => { await stack?.stop() })

const textOf = (bytes) => { const d = new Y.Doc(); Y.applyUpdate(d, bytes); return d.getText('t').toString() }
const saves = (id) => stack.proxy.saves(KIND, id)
const savePosts = (id) => stack.proxy.requests.filter((r) => r.method === 'POST' && r.path === `/snapshots/${KIND}/${id}`)
async function storeText (id) {
  const s = await loadSnapshot(stack.store.url, KIND, id)
  return s ? textOf(s.bytes) : null
}

/** A client of the room, synced; `write(text)` inserts at the end as its own update. */
async function join (id, name = 'client') {
  const c = new SyncClient(`${stack.party.wsUrl}/rooms/${KIND}/${id}`, { name, reconnect: false })
  await waitFor(`${name} to sync on ${id}`, () => c.synced, { timeoutMs: 30_000 })
  c.write = (text) => {
    const before = Y.encodeStateVector(c.doc)
    c.doc.getText('t').insert(c.doc.getText('t').length, text)
    const u = Y.encodeStateAsUpdate(c.doc, before)
    c.sendUpdate(u)
  }
  return c
}

/** Sends one edit per text and waits until `witness` has them all (so each is in the log). */
async function edits (writer, witness, texts) {
  for (const t of texts) writer.write(t)
  const want = writer.text()
  await waitFor('the edits to reach the other client', () => witness.text() === want)
}

/** One edit, one disconnect, one debounced save: `room` saved once more than before. */
async function controlCycle (id, text) {
  const before = saves(id)
  const c = await join(id, 'control')
  c.write(text)
  await waitFor('the control edit to be logged', async () => (await fetchState(id))?.includes(text))
  c.close()
  await waitFor(`the control room ${id} saved again`, () => saves(id) > before, { timeoutMs: 30_000 })
}

async function fetchState (id) {
  const r = await fetch(`${stack.party.url}/rooms/${KIND}/${id}/state`)
  return r.status === 200 ? textOf(new Uint8Array(await r.arrayBuffer())) : null
}

test('periodic save while connected, and only when there are unsaved edits', { skip, timeout: 90_000 }, async () => {
  const id = 'periodic'
  const ctl = 'periodic-control'
  for (const r of [id, ctl]) await createResource(stack.store.url, KIND, r)
  const a = await join(id, 'a')
  const b = await join(id, 'b')
  const editedAt = Date.now()
  await edits(a, b, ['one ', 'two ', 'three '])
  await waitFor('the periodic save', () => saves(id) === 1, { timeoutMs: 30_000 })
  assert.equal(await storeText(id), 'one two three ', 'one save holds the three edits')
  assert.ok(a.connected && b.connected && a.closeEvents.length === 0 && b.closeEvents.length === 0, 'the save came while both stayed connected')
  const first = savePosts(id)[0]
  assert.ok(first.at - editedAt >= INTERVAL - 100, `saved ${first.at - editedAt} ms after the first edit: not the periodic save (interval ${INTERVAL} ms)`)

  // Clean and connected: two of the control room's periodic saves (each one interval after
  // its edit) pass, and this room is not saved again.
  const c = await join(ctl, 'control')
  for (const t of ['x', 'y']) {
    const n = saves(ctl)
    c.write(t)
    await waitFor('a control periodic save', () => saves(ctl) > n, { timeoutMs: 30_000 })
  }
  assert.ok(c.connected, 'the control saves were periodic saves')
  assert.equal(saves(id), 1, 'a room with nothing unsaved was saved again')
  assert.equal(savePosts(id).length, 1, 'a save was attempted with nothing unsaved')

  // A new edit: saved by the next periodic save, still connected.
  await edits(b, a, ['four'])
  await waitFor('the second periodic save', () => saves(id) === 2, { timeoutMs: 30_000 })
  assert.equal(await storeText(id), 'one two three four')
  assert.ok(a.connected && b.connected)
  for (const x of [a, b, c]) x.close()
})

test('debounced save after the last disconnect, cancelled by a reconnect inside the window', { skip, timeout: 90_000 }, async () => {
  const id = 'debounce'
  const ctl = 'debounce-control'
  for (const r of [id, ctl]) await createResource(stack.store.url, KIND, r)
  // The save comes once the last client has left, not before, and not at once.
  const a = await join(id, 'a')
  const b = await join(id, 'b')
  await edits(a, b, ['left '])
  a.close()
  await waitFor('the room to see a leave', () => a.closeEvents.length === 1)
  assert.equal(saves(id), 0, 'saved while a client was still connected')
  const lastLeft = Date.now()
  b.close()
  await waitFor('the debounced save', () => saves(id) === 1, { timeoutMs: 30_000 })
  const saved = savePosts(id)[0]
  assert.ok(saved.at - lastLeft >= DEBOUNCE - 100, `saved ${saved.at - lastLeft} ms after the last leave: no debounce (${DEBOUNCE} ms)`)
  assert.equal(await storeText(id), 'left ')

  // Cancellation: edit, leave, come back within the window. The control room leaves at the
  // same moment and stays away: two of its debounced saves pass and this room is not saved.
  const c = await join(id, 'c')
  const w = await join(id, 'witness')
  await edits(c, w, ['again'])
  w.close()
  const ctlClient = await join(ctl, 'control')
  ctlClient.write('ctl ')
  await waitFor('the control edit', async () => (await fetchState(ctl)) === 'ctl ')
  c.close()
  ctlClient.close()
  const leftAt = Date.now()
  const back = await join(id, 'back')
  assert.ok(Date.now() - leftAt < DEBOUNCE / 2, `the reconnect took ${Date.now() - leftAt} ms: not inside the window`)
  assert.equal(back.text(), 'left again')
  await waitFor('the control debounced save', () => saves(ctl) === 1, { timeoutMs: 30_000 })
  await controlCycle(ctl, 'more ')
  assert.equal(saves(id), 1, 'the reconnect did not cancel the debounced save')
  assert.equal(savePosts(id).length, 1)
  assert.equal(await storeText(id), 'left ')
  // The next trigger (this leave) saves the edit.
  back.close()
  await waitFor('the save after the next leave', () => saves(id) === 2, { timeoutMs: 30_000 })
  assert.equal(await storeText(id), 'left again')
})

test('log compacted after a save: one record, the saved marker, /durable store == relay', { skip, timeout: 90_000 }, async (t) => {
  const id = 'compact'
  await createResource(stack.store.url, KIND, id)
  const a = await join(id, 'a')
  const b = await join(id, 'b')
  const parts = ['c1 ', 'c2 ', 'c3 ', 'c4 ', 'c5']
  for (const p of parts) await edits(a, b, [p])
  const full = parts.join('')
  const before = await durable(stack.party.url, KIND, id)
  assert.equal(before.store, null, 'a store marker before any save')
  const mine = (tables) => tables.find((t) => {
    const d = new Y.Doc()
    for (const r of t.log) for (const u of recordUpdates(r.format, r.data)) Y.applyUpdate(d, u)
    return d.getText('t').toString().includes('c1 ')
  })
  let room
  if (!noSqlite) {
    room = mine(readRoomTables(stack.persist))
    assert.ok(room, 'no Durable Object SQLite file holds the edits')
    assert.ok(room.log.length >= parts.length, `${room.log.length} log records for ${parts.length} edits`)
    assert.equal(room.saved, null)
  }
  a.close()
  b.close()
  await waitFor('the save', () => saves(id) === 1, { timeoutMs: 30_000 })
  const snap = await loadSnapshot(stack.store.url, KIND, id)
  assert.equal(textOf(snap.bytes), full)
  const after = await waitFor('/durable: store == relay', async () => {
    const d = await durable(stack.party.url, KIND, id)
    return markersEqual(d.store, d.relay) && d
  })
  assert.equal(`"${after.storeSnapshotId}"`, snap.etag, '/durable names the stored snapshot')
  assert.ok(markersEqual(after.relay, before.relay), 'the room changed while saving')
  if (noSqlite) return t.diagnostic(`not checked: ${noSqlite}`)
  const compacted = await waitFor('the log compacted to one record', () => {
    const t = readRoomTables(stack.persist).find((x) => x.file === room.file)
    return t && t.log.length === 1 && t.saved && t
  })
  const [rec] = compacted.log
  assert.equal(rec.format, 2, 'the one record is the saved state')
  assert.equal(textOf(rec.data), full, 'the compacted record lacks edits')
  assert.equal(compacted.saved.snapshot_id, after.storeSnapshotId)
  assert.equal(compacted.saved.saved_seq, rec.seq)
  assert.ok(rec.seq >= parts.length)
})

// Last: it crashes the runtime.
test('save re-armed after a crash: unsaved edits, kill -9, restart with no client, the alarm saves them', { skip, timeout: 90_000 }, async () => {
  const id = 'rearm'
  await createResource(stack.store.url, KIND, id)
  const a = await join(id, 'a')
  const b = await join(id, 'b')
  await edits(a, b, ['rearmed ', 'edits'])
  // The periodic alarm is armed one interval after the first edit; kill workerd before it.
  a.close()
  b.close()
  await stack.party.kill9()
  assert.equal(saves(id), 0, 'saved before the kill: nothing to re-arm (make INTERVAL longer)')
  assert.equal(await storeText(id), null)
  const requestsBefore = stack.proxy.requests.length
  await stack.restart({ crash: false }) // (the runtime is dead already)
  // No client and no request to the room: only its own alarm can wake it.
  await waitFor('the re-armed save after the restart', () => saves(id) === 1, { timeoutMs: 30_000 })
  assert.equal(await storeText(id), 'rearmed edits')
  const woke = stack.proxy.requests.slice(requestsBefore).filter((r) => r.path === `/snapshots/${KIND}/${id}`)
  assert.equal(woke[0].method, 'GET', 'the woken room did not merge the store snapshot first')
})
