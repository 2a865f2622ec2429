// The party host and the stock providers, on the real runtime (workerd through Miniflare, Durable
// Object storage persisted to a temp dir) saving to a real embedded store process:
// - y-partykit's provider (both forms: party = kind with room = id, and party "main" with room
//   "kind:id"), y-partyserver's provider and y-websocket's WebsocketProvider edit one room and
//   converge, on each of the three kinds;
// - every URL shape reaches the room's one Durable Object: the store is not polled and no save
//   runs while they are connected, so two objects for one room could not converge live;
//   /rooms/{kind}/{id}/state serves the same state, and the snapshot saved after the last
//   disconnect holds every provider's edits;
// - awareness is forwarded between the providers and removed when one disconnects.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import * as Y from 'yjs'
import WebSocket from 'ws'
import { WebsocketProvider } from 'y-websocket'
import YPartyKitProvider from 'y-partykit/provider'
import YProvider from 'y-partyserver/provider'
import { startProxiedStack, skipReason, markersEqual } from './lib.mjs'
import { createResource, loadSnapshot, waitFor, liveState, durable } from '../reliability/lib/procs.mjs'
import { SyncClient } from '../reliability/lib/client.mjs'

const skip = skipReason()
const KINDS = ['document', 'diagram', 'task']
const opts = { WebSocketPolyfill: WebSocket, disableBc: true }

let stack, proxy
const providers = []

before(async () => {
  if (skip) return
  // The party saves through a counting proxy; no periodic save and no store poll while the
  // providers are connected (the store cannot carry edits between two objects), a short
  // debounce after they leave.
  stack = await startProxiedStack({ vars: { YKEEP_SAVE_INTERVAL_MS: '600000', YKEEP_SAVE_DEBOUNCE_MS: '300', YKEEP_STORE_POLL_MS: '0' } })
  proxy = stack.proxy
})

after(async () => {
  for (const p of providers) {
    // Providers leave their awareness interval running after destroy().
    try { p.destroy() } catch {}
    try { p.awareness.destroy() } catch {}
  }
  await stack?.stop()
})

const party = () => stack.party
const host = () => new URL(party().url).host

/** One edit per provider, shaped like the kind's content. */
function edit (kind, doc, who) {
  doc.transact(() => {
    if (kind === 'document') {
      doc.getText('t').insert(0, `[${who}]`)
    } else if (kind === 'diagram') {
      const shape = new Y.Map()
      shape.set('label', who)
      shape.set('x', who.length * 10)
      doc.getMap('shapes').set(`shape-${who}`, shape)
    } else {
      doc.getArray('subtasks').push([who])
      doc.getMap('task').set(`done-${who}`, false)
    }
  })
}

function has (kind, doc, who) {
  if (kind === 'document') return doc.getText('t').toString().includes(`[${who}]`)
  if (kind === 'diagram') return doc.getMap('shapes').get(`shape-${who}`)?.get('label') === who
  return doc.getArray('subtasks').toArray().includes(who) && doc.getMap('task').get(`done-${who}`) === false
}

const canonical = (v) => Array.isArray(v) ? v.map(canonical) : v && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical(v[k])])) : v
const contentOf = (doc) => JSON.stringify(canonical({ t: doc.getText('t').toString(), shapes: doc.getMap('shapes').toJSON(), subtasks: doc.getArray('subtasks').toJSON(), task: doc.getMap('task').toJSON() }))
const docOf = (bytes) => { const d = new Y.Doc(); Y.applyUpdate(d, bytes); return d }

for (const kind of KINDS) {
  test(`${kind}: y-partykit (both forms), y-partyserver and y-websocket converge in one Durable Object`, { skip, timeout: 60_000 }, async () => {
    const id = `providers-${kind}`
    await createResource(stack.store.url, kind, id)
    const made = {
      'y-partykit party=kind': (doc) => new YPartyKitProvider(host(), id, doc, { ...opts, party: kind }),
      'y-partykit party=main': (doc) => new YPartyKitProvider(host(), `${kind}:${id}`, doc, opts),
      'y-partyserver': (doc) => new YProvider(host(), id, doc, { ...opts, party: kind }),
      'y-websocket': (doc) => new WebsocketProvider(`${party().wsUrl}/rooms/${kind}`, id, doc, opts)
    }
    const docs = {}
    const mine = {}
    for (const [who, make] of Object.entries(made)) {
      docs[who] = new Y.Doc()
      mine[who] = make(docs[who])
      providers.push(mine[who])
    }
    for (const [who, p] of Object.entries(mine)) await waitFor(`${who} synced`, () => p.synced, { timeoutMs: 20_000 })
    const who = Object.keys(made)
    for (const w of who) edit(kind, docs[w], w)
    await waitFor('every provider to hold every edit', () => who.every((a) => who.every((b) => has(kind, docs[a], b))), { timeoutMs: 30_000 })
    const content = contentOf(docs[who[0]])
    for (const w of who) assert.equal(contentOf(docs[w]), content, `${w} diverged`)
    assert.equal(proxy.saves(kind, id, { all: true }), 0, 'a save ran while connected: the live convergence proves nothing')

    // A raw client on the relay's path and the /state route see the same object.
    const raw = new SyncClient(`${party().wsUrl}/rooms/${kind}/${id}`, { name: 'raw', reconnect: false })
    await waitFor('a raw client on /rooms to sync', () => raw.synced, { timeoutMs: 20_000 })
    assert.equal(contentOf(raw.doc), content, '/rooms/{kind}/{id} is another object')
    raw.close()
    const state = await liveState(party().url, kind, id)
    assert.ok(state, '/state: the room is not live behind /rooms/{kind}/{id}/state')
    assert.equal(contentOf(docOf(state)), content, '/state serves another object')

    // Everyone leaves: one save after the debounce, holding every provider's edits.
    for (const w of who) mine[w].destroy()
    await waitFor('the store to hold every edit', async () => {
      const s = await loadSnapshot(stack.store.url, kind, id)
      return s && who.every((w) => has(kind, docOf(s.bytes), w))
    }, { timeoutMs: 30_000 })
    const saved = docOf((await loadSnapshot(stack.store.url, kind, id)).bytes)
    assert.equal(contentOf(saved), content)
    for (const w of who) assert.ok(Y.snapshotContainsUpdate(Y.snapshot(saved), Y.encodeStateAsUpdate(docs[w])), `the snapshot lacks ${w}'s doc`)
    await waitFor('/durable: store == relay marker', async () => {
      const d = await durable(party().url, kind, id)
      return markersEqual(d.store, d.relay)
    }, { timeoutMs: 20_000 })
    assert.equal(proxy.saves(kind, id, { all: true }), 1, 'one room, one object, one save')
  })
}

test('one Durable Object per room across URL forms: an edit through /parties/main/kind:id is seen everywhere', { skip, timeout: 60_000 }, async () => {
  const kind = 'document'
  const id = 'url-forms'
  await createResource(stack.store.url, kind, id)
  const base = party().wsUrl
  const paths = {
    main: `/parties/main/${kind}:${id}`,
    mainEscaped: `/parties/main/${kind}%3A${id}`,
    party: `/parties/${kind}/${id}`,
    rooms: `/rooms/${kind}/${id}`,
    roomsSlash: `/rooms/${kind}/${id}/`
  }
  const clients = {}
  for (const [k, p] of Object.entries(paths)) clients[k] = new SyncClient(`${base}${p}`, { name: k, reconnect: false })
  await waitFor('every URL form to sync', () => Object.values(clients).every((c) => c.synced), { timeoutMs: 20_000 })
  const d = new Y.Doc()
  d.getText('t').insert(0, 'through /parties/main')
  const u = Y.encodeStateAsUpdate(d)
  clients.main.sendUpdate(u)
  await waitFor('every URL form to see the edit', () => Object.values(clients).every((c) => c.text() === 'through /parties/main'))
  const state = await liveState(party().url, kind, id)
  assert.equal(docOf(state).getText('t').toString(), 'through /parties/main', '/rooms/{kind}/{id}/state')
  // An edit through /rooms/ comes back on /parties/main.
  const d2 = new Y.Doc()
  d2.getText('t').insert(0, 'through /rooms; ')
  clients.rooms.sendUpdate(Y.encodeStateAsUpdate(d2))
  await waitFor('/parties/main to see the /rooms edit', () => clients.main.text().includes('through /rooms; '))
  const text = clients.main.text()
  assert.equal(proxy.saves(kind, id, { all: true }), 0)
  for (const c of Object.values(clients)) c.close()
  await waitFor('the store snapshot to hold both edits', async () => {
    const s = await loadSnapshot(stack.store.url, kind, id)
    return s && docOf(s.bytes).getText('t').toString() === text
  }, { timeoutMs: 30_000 })
  assert.equal(proxy.saves(kind, id, { all: true }), 1)
})

test('awareness is forwarded between providers and removed when one disconnects', { skip, timeout: 60_000 }, async () => {
  const kind = 'diagram'
  const id = 'awareness'
  await createResource(stack.store.url, kind, id)
  const docA = new Y.Doc()
  const docB = new Y.Doc()
  const docC = new Y.Doc()
  const a = new WebsocketProvider(`${party().wsUrl}/rooms/${kind}`, id, docA, opts)
  const b = new YPartyKitProvider(host(), `${kind}:${id}`, docB, opts)
  const c = new YProvider(host(), id, docC, { ...opts, party: kind })
  providers.push(a, b, c)
  await waitFor('providers synced', () => a.synced && b.synced && c.synced, { timeoutMs: 20_000 })
  a.awareness.setLocalStateField('user', { name: 'alice' })
  b.awareness.setLocalStateField('user', { name: 'bob' })
  const aliceId = docA.clientID
  const bobId = docB.clientID
  await waitFor('alice seen by y-partykit and y-partyserver', () =>
    b.awareness.getStates().get(aliceId)?.user?.name === 'alice' && c.awareness.getStates().get(aliceId)?.user?.name === 'alice')
  await waitFor('bob seen by y-websocket', () => a.awareness.getStates().get(bobId)?.user?.name === 'bob')
  // An update of the state is forwarded too.
  a.awareness.setLocalStateField('cursor', { x: 4 })
  await waitFor('alice cursor forwarded', () => c.awareness.getStates().get(aliceId)?.cursor?.x === 4)
  // A late joiner is told who is there.
  const docD = new Y.Doc()
  const d = new YPartyKitProvider(host(), id, docD, { ...opts, party: kind })
  providers.push(d)
  await waitFor('a late joiner to learn alice and bob', () => d.awareness.getStates().get(aliceId)?.user?.name === 'alice' && d.awareness.getStates().get(bobId)?.user?.name === 'bob')
  // Alice's provider goes away without announcing it (its socket is cut, no awareness removal
  // sent): the room removes her. (Well before the providers' own 30 s outdated-state timeout.)
  a.shouldConnect = false
  a.ws.terminate()
  await waitFor('alice removed for the others', () => !b.awareness.getStates().has(aliceId) && !c.awareness.getStates().has(aliceId) && !d.awareness.getStates().has(aliceId), { timeoutMs: 10_000 })
  assert.equal(c.awareness.getStates().get(bobId)?.user?.name, 'bob', 'bob went with alice')
  for (const p of [b, c, d]) p.destroy()
})
