// Acknowledgements by tier on the party host (docs/relay-api.md "Acknowledgements"): a
// connection that opts in with `?ykeep=acks` hears Committed for each mark once its updates are
// in the object's log and Saved once a store save covers them; a stock client in the same room
// never gets a ykeep message; what a connection is owed survives hibernation; and the client
// (pkg/, fake-indexeddb) attached to y-partyserver's and y-partykit's providers hears its edits
// reach browser, relay and store, in that order.
import 'fake-indexeddb/auto'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import * as Y from 'yjs'
import WebSocket from 'ws'
import YPartyKitProvider from 'y-partykit/provider'
import YProvider from 'y-partyserver/provider'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import { SyncClient } from '../reliability/lib/client.mjs'
import { createResource, loadSnapshot, waitFor, sleep } from '../reliability/lib/procs.mjs'
import { startPartyStack, skipReason } from './lib.mjs'

const skip = skipReason()
const PKG = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../pkg/ykeep.js')
const noClient = skip || (fs.existsSync(PKG) ? false : `client module not built (${PKG}): run scripts/build-wasm`)
const { YKeep } = noClient ? {} : await import(PKG)
const YKEEP = 107
const KINDS = ['optIn', 'mark', 'welcome', 'committed', 'saved']
const WOKEN = /woken with (\d+) open connections/

/** Every ykeep message `client` receives, as `{kind, n}`; every message of another type
 * y-websocket does not know (0-3) in `client.unknown`. */
function listen (client) {
  client.acks = []
  client.unknown = 0
  client.ws.on('message', (data) => {
    const d = decoding.createDecoder(new Uint8Array(data))
    const type = decoding.readVarUint(d)
    if (type <= 3) return
    client.unknown++
    if (type !== YKEEP) return
    const kind = KINDS[decoding.readVarUint(d)]
    client.acks.push(decoding.hasContent(d) ? `${kind} ${decoding.readVarUint(d)}` : kind)
  })
}

function mark (n) {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, YKEEP)
  encoding.writeVarUint(e, 1)
  encoding.writeVarUint(e, n)
  return encoding.toUint8Array(e)
}

function edit (client, text) {
  const doc = new Y.Doc()
  Y.applyUpdate(doc, Y.encodeStateAsUpdate(client.doc))
  doc.getText('t').insert(client.text().length, text)
  client.sendUpdate(Y.encodeStateAsUpdate(doc, Y.encodeStateVector(client.doc)))
}

const textOf = (s) => {
  const doc = new Y.Doc()
  if (s) Y.applyUpdate(doc, s.bytes)
  return doc.getText('t').toString()
}

test('an opted-in page hears committed then saved; a stock client hears nothing', { skip, timeout: 60_000 }, async () => {
  const stack = await startPartyStack({ vars: { YKEEP_SAVE_INTERVAL_MS: '800', YKEEP_STORE_POLL_MS: '0' } })
  try {
    await createResource(stack.store.url, 'document', 'acks')
    const base = `${stack.party.wsUrl}/rooms/document/acks`
    const page = new SyncClient(`${base}?ykeep=acks`, { name: 'page', reconnect: false })
    listen(page)
    const stock = new SyncClient(base, { name: 'stock', reconnect: false })
    listen(stock)
    await waitFor('both synced', () => page.synced && stock.synced)
    await waitFor('welcome', () => page.acks.includes('welcome'))
    edit(page, 'one')
    page.ws.send(mark(1))
    await waitFor('committed 1', () => page.acks.includes('committed 1'))
    await waitFor('saved 1', () => page.acks.includes('saved 1'))
    assert.equal(textOf(await loadSnapshot(stack.store.url, 'document', 'acks')), 'one')
    assert.deepEqual(page.acks, ['welcome', 'committed 1', 'saved 1'])
    edit(stock, ' two')
    await waitFor('the page has the stock edit', () => page.text() === 'one two')
    await waitFor('the stock client has its edit back', () => stock.text() === 'one two')
    assert.equal(stock.unknown, 0, 'a stock client got a message it does not know')
    page.close()
    stock.close()
  } finally {
    await stack.stop()
  }
})

test('a room rebuilt after hibernation still sends the saved it owes', { skip, timeout: 120_000 }, async () => {
  const stack = await startPartyStack({ vars: { YKEEP_SAVE_INTERVAL_MS: '16000', YKEEP_STORE_POLL_MS: '0' } })
  try {
    await createResource(stack.store.url, 'document', 'hib-acks')
    const page = new SyncClient(`${stack.party.wsUrl}/rooms/document/hib-acks?ykeep=acks`, { name: 'page', reconnect: false })
    listen(page)
    await waitFor('synced and welcomed', () => page.synced && page.acks.includes('welcome'))
    edit(page, 'kept')
    page.ws.send(mark(5))
    await waitFor('committed 5', () => page.acks.includes('committed 5'))
    await sleep(13_000) // idle: the object is evicted; the socket stays open
    assert.equal(page.ws.readyState, 1, 'the socket stayed open')
    await waitFor('saved 5, from the rebuilt room', () => page.acks.includes('saved 5'), { timeoutMs: 30_000 })
    assert.ok(stack.party.logs.some((l) => WOKEN.test(l)), 'the object was evicted and woken')
    assert.equal(textOf(await loadSnapshot(stack.store.url, 'document', 'hib-acks')), 'kept')
    page.close()
  } finally {
    await stack.stop()
  }
})

test('the client attached to y-partyserver\'s and y-partykit\'s providers hears browser, relay, store', { skip: noClient, timeout: 90_000 }, async () => {
  const stack = await startPartyStack({ vars: { YKEEP_SAVE_INTERVAL_MS: '800', YKEEP_STORE_POLL_MS: '0' } })
  const host = new URL(stack.party.url).host
  const opts = { WebSocketPolyfill: WebSocket, disableBc: true }
  const providers = {
    'y-partyserver': (id, doc) => new YProvider(host, id, doc, { ...opts, party: 'document' }),
    'y-partykit': (id, doc) => new YPartyKitProvider(host, id, doc, { ...opts, party: 'document' })
  }
  try {
    for (const [name, make] of Object.entries(providers)) {
      const id = `attach-${name}`
      await createResource(stack.store.url, 'document', id)
      const doc = new Y.Doc()
      const keep = new YKeep(doc, { kind: 'document', id, relayUrl: stack.party.url, dbName: `party-acks-${process.pid}-${name}` })
      await keep.whenSynced
      const provider = make(id, doc)
      keep.attach(provider)
      await waitFor(`${name}: acknowledged`, () => provider.synced && keep.core.acknowledged)
      const tiers = []
      keep.on('durability', ({ tier }) => { if (tier) tiers.push(tier) })
      doc.getText('t').insert(0, `by ${name}`)
      await keep.whenSaved('store')
      assert.deepEqual(tiers, ['browser', 'relay', 'store'], `${name}: the edit's tiers in order`)
      assert.deepEqual(keep.unsaved(), [])
      assert.equal(textOf(await loadSnapshot(stack.store.url, 'document', id)), `by ${name}`)
      await keep.destroy()
      provider.destroy()
      provider.awareness.destroy()
    }
  } finally {
    await stack.stop()
  }
})
