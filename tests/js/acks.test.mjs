// Saved means saved, as a page sees it: `keep.attach(provider)` hears the relay's
// acknowledgements through the page's own y-websocket provider. An edit is reported at
// `browser`, `relay`, `store` in that order; `whenSaved('store')` resolves once the store holds
// it; a store that is down keeps the page at `relay`; a stock provider that is not attached never
// receives a ykeep message. The real relay binary against a fake store; fake-indexeddb.
import 'fake-indexeddb/auto'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'
import { YKeep } from '../../pkg/ykeep.js'
import { startFakeStore } from './fake-store.mjs'

const relayBin = process.env.YKEEP_RELAY_BIN || new URL('../../target/debug/ykeep-relay', import.meta.url).pathname
const skip = existsSync(relayBin) ? false : `relay binary not built (${relayBin}): cargo build -p ykeep-relay`
const SECRET = 'acks-secret'

function startRelay (storeUrl, dataDir) {
  const child = spawn(relayBin, [
    'relay', '--listen', '127.0.0.1:0', '--store-url', storeUrl, '--secret', SECRET, '--dev-allow-all',
    '--data-dir', dataDir, '--save-interval-ms', '400', '--save-debounce-ms', '300', '--store-poll-ms', '0'
  ], { stdio: ['ignore', 'pipe', 'inherit'] })
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout })
    rl.on('line', (line) => {
      const m = line.match(/listening on http:\/\/(127\.0\.0\.1:\d+)/)
      if (m) resolve({ child, host: m[1], url: `http://${m[1]}` })
    })
    child.once('exit', (code) => reject(new Error(`relay exited early (${code})`)))
  })
}

async function until (what, fn, timeoutMs = 20_000) {
  const start = Date.now()
  for (;;) {
    if (await fn()) return
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

test('an attached page hears browser, relay, store; whenSaved; a store outage stays at relay', { skip, timeout: 60_000 }, async () => {
  const store = await startFakeStore(SECRET)
  const dataDir = mkdtempSync(join(tmpdir(), 'ykeep-acks-'))
  const relay = await startRelay(store.url, dataDir)
  const errors = []
  const consoleError = console.error
  console.error = (...args) => { errors.push(args.join(' ')); consoleError(...args) }
  const wsUrl = `ws://${relay.host}/rooms/document`
  try {
    const doc = new Y.Doc()
    const keep = new YKeep(doc, { kind: 'document', id: 'acks', relayUrl: relay.url, dbName: `acks-${process.pid}` })
    await keep.whenSynced
    const provider = new WebsocketProvider(wsUrl, 'acks', doc, { WebSocketPolyfill: WebSocket, disableBc: true })
    // A stock provider in the same room, not attached: it must never get a ykeep message.
    const stockDoc = new Y.Doc()
    const stock = new WebsocketProvider(wsUrl, 'acks', stockDoc, { WebSocketPolyfill: WebSocket, disableBc: true })
    const unknown = []
    stock.messageHandlers = new Proxy(stock.messageHandlers, {
      get: (target, key) => {
        if (typeof key === 'string' && /^\d+$/.test(key) && !(key in target)) unknown.push(Number(key))
        return target[key]
      }
    })
    await until('both synced', () => provider.synced && stock.synced)
    // attach after the socket is open: the in-band opt-in.
    keep.attach(provider)
    await until('acknowledged', () => keep.core.acknowledged)

    const tiers = []
    keep.on('durability', (r) => tiers.push(r.tier))
    doc.getText('t').insert(0, 'hello')
    assert.deepEqual(keep.unsaved(), ['browser', 'relay', 'store'])
    const saved = keep.whenSaved('store')
    await keep.whenSaved('relay')
    await saved
    assert.deepEqual(tiers.filter((t) => t !== null), ['browser', 'relay', 'store'])
    assert.deepEqual(keep.unsaved(), [])
    const snap = store.snapshots.get('document/acks')
    const stored = new Y.Doc()
    Y.applyUpdate(stored, snap.bytes)
    assert.equal(stored.getText('t').toString(), 'hello')

    // The store goes down: the next edit reaches the relay and stays there.
    store.down = true
    tiers.length = 0
    doc.getText('t').insert(5, ' world')
    await keep.whenSaved('relay')
    const stays = await Promise.race([
      keep.whenSaved('store').then(() => 'saved'),
      new Promise((resolve) => setTimeout(() => resolve('waiting'), 1500))
    ])
    assert.equal(stays, 'waiting', 'no store tier while the store is down')
    assert.deepEqual(tiers.filter((t) => t !== null), ['browser', 'relay'])
    assert.deepEqual(keep.unsaved(), ['store'])
    store.down = false
    await keep.whenSaved('store')
    assert.equal(tiers.at(-1), 'store')

    await until('the stock client has the edits', () => stockDoc.getText('t').toString() === 'hello world')
    assert.deepEqual(unknown, [], 'the stock provider met a message type it does not know')
    assert.ok(!errors.some((e) => e.includes('Unable to compute message')), errors.join('\n'))

    // destroy rejects what still waits.
    store.down = true
    doc.getText('t').insert(0, '>')
    const pending = keep.whenSaved('store')
    await keep.destroy()
    await assert.rejects(pending, /destroyed/)
    provider.destroy()
    stock.destroy()
  } finally {
    console.error = consoleError
    relay.child.kill('SIGKILL')
    store.close()
    store.closeAll()
    rmSync(dataDir, { recursive: true, force: true })
  }
})

test('without a provider the page learns the relay tier from /durable, only while unsaved', { skip, timeout: 60_000 }, async () => {
  const store = await startFakeStore(SECRET)
  const dataDir = mkdtempSync(join(tmpdir(), 'ykeep-acks-'))
  const relay = await startRelay(store.url, dataDir)
  try {
    const writerDoc = new Y.Doc()
    const writer = new WebsocketProvider(`ws://${relay.host}/rooms/document`, 'poll', writerDoc, { WebSocketPolyfill: WebSocket, disableBc: true })
    await until('writer synced', () => writer.synced)
    // The page's own edit reaches the relay through the writer (another socket of the page).
    const doc = new Y.Doc()
    const keep = new YKeep(doc, { kind: 'document', id: 'poll', relayUrl: relay.url, dbName: `poll-${process.pid}` })
    await keep.whenSynced
    doc.on('update', (u, origin) => { if (origin !== 'writer') Y.applyUpdate(writerDoc, u, 'page') })
    doc.getText('t').insert(0, 'polled')
    await keep.whenSaved('relay')
    await keep.whenSaved('store')
    assert.deepEqual(keep.unsaved(), [])
    await keep.destroy()
    writer.destroy()
  } finally {
    relay.child.kill('SIGKILL')
    store.close()
    store.closeAll()
    rmSync(dataDir, { recursive: true, force: true })
  }
})
