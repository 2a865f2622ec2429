// Relay interop: the stock y-websocket WebsocketProvider, the stock y-partykit provider (both
// party forms) and a Rust yrs client edit one room of the real `ykeep-relay` binary and
// converge; awareness is forwarded and removed on disconnect; the snapshot the relay saves is
// a plain Yjs v1 update that Y.applyUpdate reads.
// Binary: env YKEEP_RELAY_BIN (default target/debug/ykeep-relay); the Rust client is the
// `ykeep-sync-client` binary next to it (YKEEP_SYNC_CLIENT_BIN overrides).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { startFakeStore } from './fake-store.mjs'
import YPartyKitProvider from 'y-partykit/provider'
import WebSocket from 'ws'

const relayBin = process.env.YKEEP_RELAY_BIN || new URL('../../target/debug/ykeep-relay', import.meta.url).pathname
const clientBin = process.env.YKEEP_SYNC_CLIENT_BIN || join(dirname(relayBin), 'ykeep-sync-client')
const skip = existsSync(relayBin) && existsSync(clientBin)
  ? false
  : `relay binaries not built (${relayBin}, ${clientBin}): cargo build -p ykeep-relay --bins`
const SECRET = 'interop-secret'

function startRelay (storeUrl, dataDir) {
  const child = spawn(relayBin, [
    'relay', '--listen', '127.0.0.1:0', '--store-url', storeUrl, '--secret', SECRET,
    '--dev-allow-all', '--data-dir', dataDir, '--save-debounce-ms', '300'
  ], { stdio: ['ignore', 'pipe', 'inherit'] })
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout })
    rl.once('line', (line) => {
      const m = line.match(/^ykeep-relay listening on http:\/\/(127\.0\.0\.1:\d+)$/)
      if (!m) return reject(new Error(`unexpected first line: ${line}`))
      resolve({ child, host: m[1] })
    })
    child.once('exit', (code) => reject(new Error(`relay exited early (${code})`)))
  })
}

function runRustClient (url, append, expected) {
  return new Promise((resolve, reject) => {
    const child = spawn(clientBin, [url, append, ...expected], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d) => { out += d })
    child.on('exit', (code) => code === 0 ? resolve(out.trim()) : reject(new Error(`rust client exited ${code}`)))
  })
}

async function until (what, fn, timeoutMs = 30_000) {
  const start = Date.now()
  while (!fn()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

test('y-websocket, y-partykit and a Rust client converge in one relay room', { skip, timeout: 90_000 }, async () => {
  const store = await startFakeStore(SECRET)
  const dataDir = mkdtempSync(join(tmpdir(), 'ykeep-interop-'))
  const relay = await startRelay(store.url, dataDir)
  const opts = { WebSocketPolyfill: WebSocket, disableBc: true }
  const providers = []
  try {
    const docA = new Y.Doc()
    const a = new WebsocketProvider(`ws://${relay.host}/rooms/document`, 'interop', docA, opts)
    const docB = new Y.Doc()
    const b = new YPartyKitProvider(relay.host, 'document:interop', docB, { ...opts })
    const docC = new Y.Doc()
    const c = new YPartyKitProvider(relay.host, 'interop', docC, { ...opts, party: 'document' })
    providers.push(a, b, c)
    for (const p of [a, b, c]) await until('provider synced', () => p.synced)

    docA.getText('t').insert(0, 'from-ywebsocket;')
    docB.getText('t').insert(0, 'from-partykit;')
    docC.getText('t').insert(0, 'from-party-document;')
    const parts = ['from-ywebsocket;', 'from-partykit;', 'from-party-document;', 'from-rust;']
    const rustText = await runRustClient(`ws://${relay.host}/rooms/document/interop`, 'from-rust;', parts)
    const has = (doc) => parts.every((p) => doc.getText('t').toString().includes(p))
    await until('all JS docs have every edit', () => has(docA) && has(docB) && has(docC))
    const text = docA.getText('t').toString()
    assert.equal(docB.getText('t').toString(), text)
    assert.equal(docC.getText('t').toString(), text)
    assert.equal(rustText, text)

    // Awareness: forwarded, and removed for the others when its client disconnects.
    a.awareness.setLocalStateField('user', { name: 'alice' })
    const aliceId = docA.clientID
    await until('awareness forwarded', () => b.awareness.getStates().get(aliceId)?.user?.name === 'alice')
    a.destroy()
    await until('awareness removed on disconnect', () => !b.awareness.getStates().has(aliceId))

    // Everyone leaves: the relay saves one snapshot that Yjs itself reads.
    b.destroy()
    c.destroy()
    await until('the relay saved the room', () => store.snapshots.has('document/interop'))
    const saved = new Y.Doc()
    Y.applyUpdate(saved, store.snapshots.get('document/interop').bytes)
    assert.equal(saved.getText('t').toString(), text)
    assert.equal(store.saves.length, 1)
  } finally {
    // Providers leave their awareness check interval running after destroy(): stop it, or
    // the test process never exits.
    for (const p of providers) {
      p.destroy()
      p.awareness.destroy()
    }
    relay.child.kill('SIGKILL')
    store.close()
    store.closeAll?.()
    rmSync(dataDir, { recursive: true, force: true })
  }
})
