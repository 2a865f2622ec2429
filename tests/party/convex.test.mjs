// Issue 14, "Saves ... against the Convex functions": the party host (workerd through Miniflare)
// with YKEEP_STORE_URL at tests/convex-relay/dev-server.ts, the Convex HTTP actions of
// convex/http.ts served over real HTTP by convex-test (run with vite-node as its own process, as
// its header says; no Convex deployment). A small logging proxy sits between the host and that
// server so that the test sees each store request the host makes ("POST /snapshots/... 409").
//   - the periodic save (a client stays connected) lands in Convex, and the next one replaces it;
//   - the debounced save after the last leave lands too, and a host on empty Durable Object
//     storage cold-starts the room from the Convex snapshot;
//   - a snapshot saved by someone else meanwhile (a POST with If-Match straight to Convex) meets
//     the host's next save as a 409: the host merges it, forwards it to its clients and saves the
//     union; nothing of either side is lost.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createServer } from 'node:http'
import fs from 'node:fs'
import path from 'node:path'
import * as Y from 'yjs'
import WebSocket from 'ws'
import { WebsocketProvider } from 'y-websocket'
import { startParty, skipReason, tempDir, SECRET, TOKEN_KEY } from './lib.mjs'
import { waitFor, sleep } from '../reliability/lib/procs.mjs'
import { textOf } from '../reliability/lib/check.mjs'

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..')
const VITE_NODE = path.join(ROOT, 'node_modules/.bin/vite-node')
const DEV_SERVER = path.join(ROOT, 'tests/convex-relay/dev-server.ts')
const skip = skipReason() || (fs.existsSync(VITE_NODE) ? false : `${VITE_NODE} not installed: npm ci`)
const KIND = 'document'

let convex // { url, ids, proc }
let proxy // { url, log, close }
let dir
const parties = []
const cleanups = []

/** tests/convex-relay/dev-server.ts as a child process; resolves with its URL and created ids. */
function startConvex (creates) {
  // The suite's config: the example app imports `ykeep/convex`, which it resolves to js/convex/.
  const args = ['--config', path.join(ROOT, 'convex/vitest.config.mjs'), DEV_SERVER, '--', ...creates.flatMap((k) => ['--create', k])]
  const proc = spawn(VITE_NODE, args, {
    cwd: ROOT,
    env: { ...process.env, YKEEP_SECRET: SECRET, YKEEP_TOKEN_KEY: TOKEN_KEY },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  let err = ''
  proc.stderr.on('data', (c) => { err += c })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`dev-server.ts did not start in 60 s:\n${out}\n${err}`)) }, 60_000)
    proc.stdout.on('data', (c) => {
      out += c
      const url = /listening on (http:\/\/127\.0\.0\.1:\d+\S*)/.exec(out)?.[1]
      const ids = [...out.matchAll(/^created (\w+) (\S+)$/gm)].map((m) => m[2])
      if (url && ids.length === creates.length) {
        clearTimeout(timer)
        resolve({ url, ids, proc })
      }
    })
    proc.once('exit', (code, signal) => { clearTimeout(timer); reject(new Error(`dev-server.ts exited (${code ?? signal}):\n${out}\n${err}`)) })
  })
}

/** Forwards every request to `target`, logging "METHOD /path status" (the host's store traffic). */
async function startProxy (target) {
  const log = []
  const server = createServer(async (req, res) => {
    try {
      const chunks = []
      for await (const c of req) chunks.push(c)
      const headers = {}
      for (const [k, v] of Object.entries(req.headers)) {
        if (!['host', 'connection', 'content-length', 'transfer-encoding', 'keep-alive'].includes(k)) headers[k] = v
      }
      const body = chunks.length ? Buffer.concat(chunks) : undefined
      const r = await fetch(target + req.url, { method: req.method, headers, body })
      const out = Buffer.from(await r.arrayBuffer())
      const back = {}
      r.headers.forEach((v, k) => { if (!['content-length', 'transfer-encoding', 'connection', 'keep-alive'].includes(k)) back[k] = v })
      res.writeHead(r.status, back)
      res.end(out)
      log.push({ method: req.method, path: req.url.split('?')[0], status: r.status, ifMatch: req.headers['if-match'] ?? null })
    } catch (e) {
      res.writeHead(502)
      res.end(String(e))
    }
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    log,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve) })
  }
}

before(async () => {
  if (skip) return
  dir = tempDir('party-convex')
  convex = await startConvex([KIND, KIND])
  // The example app mounts ykeep under a prefix (/ykeep): the host's YKEEP_STORE_URL carries it.
  proxy = await startProxy(new URL(convex.url).origin)
})
after(async () => {
  for (const c of cleanups.reverse()) await c()
  for (const p of parties) await p.stop().catch(() => {})
  await proxy?.close()
  if (convex) convex.proc.kill('SIGTERM')
  if (dir) fs.rmSync(dir, { recursive: true, force: true })
})

async function party (name, vars = {}) {
  const p = await startParty({ persist: path.join(dir, name), storeUrl: `${proxy.url}${new URL(convex.url).pathname}`, vars })
  parties.push(p)
  return p
}

/** A stock y-websocket provider on the y-partykit URL form /parties/main/{kind}:{id}. */
function connect (host, id, doc) {
  const p = new WebsocketProvider(`${host.wsUrl}/parties/main`, `${KIND}:${id}`, doc, { WebSocketPolyfill: WebSocket, disableBc: true })
  cleanups.push(() => { p.destroy(); p.awareness.destroy() })
  return p
}
const leave = (p) => { p.destroy(); p.awareness.destroy() }

/** Convex's snapshot of `id` straight from dev-server.ts: { bytes, etag, text } or null. */
async function convexSnapshot (id) {
  const r = await fetch(`${convex.url}/snapshots/${KIND}/${id}`, { headers: { authorization: `Bearer ${SECRET}` } })
  if (r.status === 404) return null
  assert.equal(r.status, 200, `GET snapshot: ${r.status}`)
  const bytes = new Uint8Array(await r.arrayBuffer())
  return { bytes, etag: r.headers.get('etag'), text: textOf(bytes) }
}

async function durableOf (host, id) {
  const r = await fetch(`${host.url}/rooms/${KIND}/${id}/durable`)
  assert.equal(r.status, 200)
  return r.json()
}

const unquote = (etag) => etag.replace(/^W\//, '').replace(/^"|"$/g, '')
const postsOf = (id) => proxy.log.filter((l) => l.method === 'POST' && l.path === `${new URL(convex.url).pathname}/snapshots/${KIND}/${id}`)

test('the periodic save lands in Convex, the next replaces it, the debounced one follows the last leave; a host on empty storage cold-starts from Convex', { skip, timeout: 90_000 }, async () => {
  const id = convex.ids[0]
  const host = await party('periodic', { YKEEP_SAVE_INTERVAL_MS: '1000', YKEEP_SAVE_DEBOUNCE_MS: '400' })
  const doc = new Y.Doc()
  const p = connect(host, id, doc)
  await waitFor('the provider to sync', () => p.synced)
  assert.equal(await convexSnapshot(id), null, 'nothing in Convex yet')
  doc.getText('t').insert(0, 'hello convex')

  // 1. The periodic save, with the client still connected.
  const first = await waitFor('the periodic save in Convex', async () => {
    const s = await convexSnapshot(id)
    return s && s.text === 'hello convex' ? s : null
  }, { timeoutMs: 30_000, everyMs: 100 })
  assert.ok(p.wsconnected, 'saved while the client stayed connected (the periodic save, not the debounce)')
  const firstPost = postsOf(id).find((l) => l.status === 200)
  assert.equal(firstPost.ifMatch, null, 'the first save names no snapshot (If-None-Match: *)')
  await waitFor('/durable to report the Convex snapshot', async () => (await durableOf(host, id)).storeSnapshotId === unquote(first.etag))

  // 2. More edits (an insert and a delete-only edit): the next periodic save replaces the blob.
  doc.getText('t').insert(doc.getText('t').length, ', again')
  doc.getText('t').delete(0, 6)
  const want = doc.getText('t').toString()
  assert.equal(want, 'convex, again')
  const second = await waitFor('the second periodic save in Convex', async () => {
    const s = await convexSnapshot(id)
    return s && s.etag !== first.etag && s.text === want ? s : null
  }, { timeoutMs: 30_000, everyMs: 100 })
  assert.ok(p.wsconnected)
  assert.ok(postsOf(id).some((l) => l.status === 200 && l.ifMatch === first.etag), 'the second save named the first in If-Match')

  // 3. The last client leaves after one more edit: the debounced save lands.
  doc.getText('t').insert(0, '[last] ')
  const last = doc.getText('t').toString()
  await waitFor('the host to hold the last edit', async () => {
    const r = await fetch(`${host.url}/rooms/${KIND}/${id}/state`)
    return r.status === 200 && textOf(new Uint8Array(await r.arrayBuffer())) === last
  })
  leave(p)
  const third = await waitFor('the debounced save in Convex', async () => {
    const s = await convexSnapshot(id)
    return s && s.etag !== second.etag && s.text === last ? s : null
  }, { timeoutMs: 30_000, everyMs: 100 })

  // 4. Another host with empty Durable Object storage: the room's cold start loads Convex's.
  const fresh = await party('periodic-fresh')
  const doc2 = new Y.Doc()
  const p2 = connect(fresh, id, doc2)
  await waitFor('the provider on the fresh host to sync', () => p2.synced)
  assert.equal(doc2.getText('t').toString(), last)
  assert.equal((await durableOf(fresh, id)).storeSnapshotId, unquote(third.etag))
  leave(p2)
  console.log(`party-convex: store requests (${id}): ${postsOf(id).map((l) => `${l.method} ${l.status}`).join(', ')}`)
})

test('a snapshot saved by someone else meanwhile is merged at the next save (409), not overwritten', { skip, timeout: 90_000 }, async () => {
  const id = convex.ids[1]
  const host = await party('conflict', { YKEEP_SAVE_INTERVAL_MS: '1000', YKEEP_SAVE_DEBOUNCE_MS: '400' })
  const doc = new Y.Doc()
  const p = connect(host, id, doc)
  await waitFor('the provider to sync', () => p.synced)
  doc.getText('t').insert(0, '[party]')
  const first = await waitFor('the first save in Convex', async () => {
    const s = await convexSnapshot(id)
    return s && s.text === '[party]' ? s : null
  }, { timeoutMs: 30_000, everyMs: 100 })
  // The host has recorded that save (it is clean), so the next save will name this snapshot.
  await waitFor('/durable to report the first snapshot', async () => (await durableOf(host, id)).storeSnapshotId === unquote(first.etag))

  // Someone else (another host, a server-side job) saves on top of it, straight to Convex.
  const other = new Y.Doc()
  Y.applyUpdate(other, first.bytes)
  other.getText('t').insert(other.getText('t').length, '[elsewhere]')
  const r = await fetch(`${convex.url}/snapshots/${KIND}/${id}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${SECRET}`, 'content-type': 'application/octet-stream', 'if-match': first.etag },
    body: Y.encodeStateAsUpdate(other)
  })
  assert.equal(r.status, 200, `the other save: ${r.status} ${await r.text()}`)
  const elsewhere = await convexSnapshot(id)
  assert.equal(elsewhere.text, '[party][elsewhere]')
  const postsBefore = postsOf(id).length

  // The host's client edits again: the next periodic save names the first snapshot, meets 409,
  // merges Convex's and saves the union.
  doc.getText('t').insert(0, '[more]')
  const merged = await waitFor('a Convex snapshot holding both sides', async () => {
    const s = await convexSnapshot(id)
    return s && s.etag !== elsewhere.etag && s.text.includes('[more]') ? s : null
  }, { timeoutMs: 30_000, everyMs: 100 })
  assert.equal(merged.text, '[more][party][elsewhere]', 'the other save was merged, not overwritten')
  const after = postsOf(id).slice(postsBefore)
  console.log(`party-convex: store requests after the other save (${id}): ${after.map((l) => `${l.method} ${l.status}`).join(', ')}`)
  const conflict = after.findIndex((l) => l.status === 409)
  assert.ok(conflict >= 0, `the host's save really met the other save (409): ${JSON.stringify(after)}`)
  assert.equal(after[conflict].ifMatch, first.etag)
  assert.ok(after.slice(conflict + 1).some((l) => l.status === 200 && l.ifMatch === elsewhere.etag), 'the merged save named the other snapshot')
  // The host forwarded the merged content to its client, and its /durable reports the union.
  await waitFor('the client to receive the other save', () => doc.getText('t').toString() === '[more][party][elsewhere]')
  await waitFor('/durable to report the merged snapshot', async () => (await durableOf(host, id)).storeSnapshotId === unquote(merged.etag))
  leave(p)
  await sleep(0)
})
