// Nothing is deleted on anyone's say-so but an explicit one, end to end with real processes:
// `ykeep-relay store` (the embedded store), `ykeep-relay relay --store-url`, and the stock
// y-websocket provider. A resource deleted through the store contract (DELETE) makes the relay
// move the room to its quarantine and close the provider with 1008; `ykeep-relay quarantine
// export` writes a file that Y.applyUpdate reads, holding every edit, the unsaved one included.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'
import { relayBin, tempDir, startProcess, relayArgs, createResource, loadSnapshot, waitFor, kill9, SECRET } from '../reliability/lib/procs.mjs'
import { metric } from '../reliability/lib/stack.mjs'

const skip = relayBin() ? false : 'relay binary not built (cargo build -p ykeep-relay --bins, or set YKEEP_RELAY_BIN)'

test('a resource deleted through the store: the relay quarantines the room, the export holds every edit', { skip, timeout: 120_000 }, async () => {
  const dir = tempDir('deleted')
  const store = await startProcess('store', relayArgs({ sub: 'store', dataDir: join(dir, 'store-data') }), { logDir: dir, name: 'store' })
  const relayData = join(dir, 'relay-data')
  const relay = await startProcess('relay', relayArgs({
    sub: 'relay',
    dataDir: relayData,
    extra: ['--store-url', store.url, '--dev-allow-all', '--save-interval-ms', '300', '--save-debounce-ms', '300']
  }), { logDir: dir, name: 'relay' })
  const provider = { destroy () {} }
  try {
    await createResource(store.url, 'document', 'doomed')
    const doc = new Y.Doc()
    const closes = []
    const p = new WebsocketProvider(`ws://127.0.0.1:${relay.port}/rooms/document`, 'doomed', doc, { WebSocketPolyfill: WebSocket, disableBc: true })
    provider.destroy = () => p.destroy()
    p.on('connection-close', (event) => { if (event) closes.push({ code: event.code, reason: event.reason }) })
    await waitFor('provider synced', () => p.synced)
    doc.getText('t').insert(0, 'saved once')
    await waitFor('the first save', async () => (await loadSnapshot(store.url, 'document', 'doomed')) !== null)

    const del = await fetch(`${store.url}/snapshots/document/doomed`, { method: 'DELETE', headers: { authorization: `Bearer ${SECRET}` } })
    assert.equal(del.status, 204)
    doc.getText('t').insert(10, ', then edited after the delete')
    await waitFor('the relay closed the provider with 1008', () => closes.some((c) => c.code === 1008))
    const close = closes.find((c) => c.code === 1008)
    assert.match(close.reason, /^resource_deleted/)
    assert.equal(await metric(relay.url, 'ykeep_rooms_quarantined_total') >= 1, true)
    p.destroy()

    const list = execFileSync(relayBin(), ['quarantine', '--data-dir', relayData, 'list'], { encoding: 'utf8' })
    const rows = list.trim().split('\n').slice(1).map((line) => line.split('\t'))
    assert.equal(rows.length, 1, list)
    assert.equal(rows[0][1], 'document/doomed')
    const out = join(dir, 'doomed.yjs')
    execFileSync(relayBin(), ['quarantine', '--data-dir', relayData, 'export', rows[0][0], '--out', out])
    const restored = new Y.Doc()
    Y.applyUpdate(restored, readFileSync(out))
    assert.equal(restored.getText('t').toString(), 'saved once, then edited after the delete')

    // The store said `resource_deleted`, never `not_found`, for the tombstone.
    const again = await fetch(`${store.url}/snapshots/document/doomed`, { headers: { authorization: `Bearer ${SECRET}` } })
    assert.equal(again.status, 404)
    assert.equal((await again.json()).error.code, 'resource_deleted')
  } finally {
    provider.destroy()
    await kill9(relay)
    await kill9(store)
  }
})
