// The party host on the real runtime for tests: workerd through Miniflare (party/serve.mjs, run
// as a child process so that a test can kill -9 workerd and restart it on the same storage),
// with the example worker (party/example/worker.ts, built into party/dist/ by scripts/build-party)
// saving to a real embedded store process (`ykeep-relay store`).
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { execFileSync } from 'node:child_process'
import * as Y from 'yjs'
import { startWorker } from '../../party/serve-lib.mjs'
import { startStore } from '../reliability/lib/stack.mjs'
import { SECRET, TOKEN_KEY, tempDir, relayBin } from '../reliability/lib/procs.mjs'

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..')
export const WORKER = path.join(ROOT, 'party/dist/worker.mjs')
export { SECRET, TOKEN_KEY, tempDir }

/** A reason to skip (string) or false: the party build and the relay binary must exist. */
export function skipReason () {
  if (!fs.existsSync(WORKER)) return `party host not built (${WORKER}): run scripts/build-party`
  if (!relayBin()) return 'relay binary not built (cargo build -p ykeep-relay --bins, or set YKEEP_RELAY_BIN)'
  return false
}

/** The host's env bindings, with short save timers unless overridden. */
export function partyVars (storeUrl, vars = {}) {
  return {
    YKEEP_STORE_URL: storeUrl,
    YKEEP_SECRET: SECRET,
    YKEEP_DEV_ALLOW_ALL: 'true',
    YKEEP_SAVE_INTERVAL_MS: '1000',
    YKEEP_SAVE_DEBOUNCE_MS: '400',
    YKEEP_STORE_TIMEOUT_MS: '2000',
    ...vars
  }
}

/**
 * Starts the party host on `persist` (a directory: Durable Object storage survives restarts).
 * Keeps the runtime's console output in `logs` (an array of lines) and on stderr when
 * YKEEP_TEST_VERBOSE is set. Returns startWorker's handle plus `logs`.
 * `logFile` (optional): that output is also appended to this file.
 */
export async function startParty ({ persist, storeUrl, vars = {}, port = 0, logFile }) {
  const logs = []
  const w = await startWorker({
    script: WORKER,
    persist,
    port,
    vars: partyVars(storeUrl, vars),
    onLog: (chunk) => {
      logs.push(...chunk.split('\n').filter(Boolean))
      if (logFile) fs.appendFileSync(logFile, chunk)
      if (process.env.YKEEP_TEST_VERBOSE) process.stderr.write(chunk)
    }
  })
  return Object.assign(w, { logs })
}

/** A real embedded store process and a party host saving to it, in one temp dir. */
export async function startPartyStack ({ vars = {} } = {}) {
  const dir = tempDir('party')
  const store = await startStore(dir)
  const persist = path.join(dir, 'do')
  let party = await startParty({ persist, storeUrl: store.url, vars })
  const stack = {
    dir,
    store,
    persist,
    get party () { return party },
    /** kill -9 of workerd, then a new runtime on the same storage and port. */
    async crash () {
      const port = Number(new URL(party.url).port)
      await party.kill9()
      party = await startParty({ persist, storeUrl: store.url, vars, port })
      return party
    },
    async stop () {
      await party.stop().catch(() => {})
      await store.stop()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
  return stack
}

// ---------------------------------------------------------------------------------------------
// Helpers of the party tier's own tests (providers, saves, outage, bad-input).

/**
 * A restart of the runtime on the same storage and port: kill -9 of workerd (`crash`, the
 * default) or a clean stop, then a new runtime, possibly pointing at another store URL.
 */
export async function restartParty (party, { persist, storeUrl, vars = {}, crash = true }) {
  const port = Number(new URL(party.url).port)
  if (crash) await party.kill9()
  else await party.stop()
  return startParty({ persist, storeUrl, vars, port })
}

/**
 * An HTTP proxy in front of a store that records every request ({method, path, status, at})
 * and can play a broken store: `setMode('pass' | 'down' | 'html404' | 'deleted' | 'hold')`
 * ('down' drops the connection; 'html404' answers every request 404 text/html; 'deleted'
 * answers the contract's 404 `resource_deleted`; 'hold' keeps each save waiting until the mode
 * changes). `saves(kind, id)` counts the POSTs of one snapshot.
 */
export async function startStoreProxy (target) {
  const requests = []
  let mode = 'pass'
  const held = []
  const server = http.createServer((req, res) => {
    const chunks = []
    req.on('data', (c) => chunks.push(c))
    req.on('end', () => {
      const entry = { method: req.method, path: req.url, status: null, mode, at: Date.now() }
      requests.push(entry)
      const answer = (status, type, body) => {
        entry.status = status
        res.writeHead(status, { 'content-type': type })
        res.end(body)
      }
      if (mode === 'hold' && req.method === 'POST') {
        // 'hold': a save waits until setMode('pass') (it is in flight meanwhile).
        held.push(() => forward())
        return
      }
      if (mode === 'down') { entry.status = 'dropped'; req.socket.destroy(); return }
      if (mode === 'html404') return answer(404, 'text/html', '<!DOCTYPE html><html><body><h1>404 Not Found</h1><p>nginx</p></body></html>')
      if (mode === 'deleted') return answer(404, 'application/json', JSON.stringify({ error: { code: 'resource_deleted', message: 'this resource was deleted' } }))
      forward()
    function forward () {
      const up = http.request(`${target}${req.url}`, { method: req.method, headers: { ...req.headers, host: new URL(target).host } }, (r) => {
        const body = []
        r.on('data', (c) => body.push(c))
        r.on('end', () => {
          entry.status = r.statusCode
          res.writeHead(r.statusCode, r.headers)
          res.end(Buffer.concat(body))
        })
      })
      up.on('error', () => { entry.status = 'upstream-error'; req.socket.destroy() })
      up.end(Buffer.concat(chunks))
    }
    })
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    requests,
    setMode (m) {
      mode = m
      if (m !== 'hold') for (const go of held.splice(0)) go()
    },
    get mode () { return mode },
    /** The POSTs of /snapshots/{kind}/{id} the store answered 2xx (`all`: every POST). */
    saves (kind, id, { all = false } = {}) {
      return requests.filter((r) => r.method === 'POST' && r.path === `/snapshots/${kind}/${id}` &&
        (all || (typeof r.status === 'number' && r.status < 300))).length
    },
    close () { server.closeAllConnections?.(); return new Promise((resolve) => server.close(resolve)) }
  }
}

/** A reason to skip the SQLite assertions (string), or false: they read files with `sqlite3`. */
export function sqliteSkipReason () {
  try {
    execFileSync('sqlite3', ['-version'], { stdio: 'ignore' })
    return false
  } catch {
    return 'the sqlite3 command is not installed (Node 20 has no node:sqlite): the persisted Durable Object storage cannot be read'
  }
}

/** The Durable Objects' SQLite files under a persist dir (Miniflare's own metadata excluded). */
export function doSqliteFiles (persist) {
  const out = []
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name)
      if (e.isDirectory()) walk(p)
      else if (e.name.endsWith('.sqlite') && e.name !== 'metadata.sqlite') out.push(p)
    }
  }
  if (fs.existsSync(persist)) walk(persist)
  return out
}

/**
 * Runs a read-only query on every Durable Object's SQLite file under `persist` (with `sqlite3
 * -json`; blobs should be selected as hex()): `[{file, rows}]`, files without the tables skipped.
 */
export function querySqlite (persist, sql) {
  const out = []
  for (const file of doSqliteFiles(persist)) {
    let text
    try {
      text = execFileSync('sqlite3', ['-readonly', '-json', file, sql], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
    } catch (e) {
      if (/no such table/.test(String(e.stderr))) continue
      throw e
    }
    out.push({ file, rows: text.trim() ? JSON.parse(text) : [] })
  }
  return out
}

/** The Yjs updates of one log record: a batch is `[varuint length, update]*`, a snapshot one update. */
export function recordUpdates (format, bytes) {
  if (format === 2) return [bytes]
  const out = []
  let at = 0
  while (at < bytes.length) {
    let len = 0
    let shift = 0
    for (;;) {
      const b = bytes[at++]
      len += (b & 0x7f) * 2 ** shift
      shift += 7
      if (b < 0x80) break
    }
    out.push(bytes.subarray(at, at + len))
    at += len
  }
  return out
}

/**
 * A real embedded store, a counting proxy in front of it (startStoreProxy) and a party host
 * saving through the proxy, in one temp dir. `restart({crash, storeUrl, vars})`: a new runtime
 * on the same storage and port (kill -9 by default), saving to `storeUrl` (default: the proxy).
 */
export async function startProxiedStack ({ vars = {} } = {}) {
  const dir = tempDir('party')
  const store = await startStore(dir)
  const proxy = await startStoreProxy(store.url)
  const persist = path.join(dir, 'do')
  let party = await startParty({ persist, storeUrl: proxy.url, vars })
  return {
    dir,
    store,
    proxy,
    persist,
    vars,
    get party () { return party },
    async restart ({ crash = true, storeUrl = proxy.url, vars: more = {} } = {}) {
      party = await restartParty(party, { persist, storeUrl, vars: { ...vars, ...more }, crash })
      return party
    },
    async stop () {
      await party.stop().catch(() => {})
      await proxy.close()
      await store.stop()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}

/**
 * What each Durable Object's SQLite file under `persist` holds of the host's tables (read with
 * sqlite3): `[{file, log: [{id, seq, format, data}], saved: {saved_seq, snapshot_id, saved_at} |
 * null, quarantine: [{at, reason, id, seq, format, data}]}]`, a record's parts joined.
 */
export function readRoomTables (persist) {
  const join = (rows) => {
    const byId = new Map()
    for (const r of rows) {
      const key = `${r.at ?? ''}/${r.id}`
      const rec = byId.get(key) ?? { ...r, parts: [] }
      rec.parts[r.part] = Buffer.from(r.data, 'hex')
      byId.set(key, rec)
    }
    return [...byId.values()].map(({ parts, part, ...r }) => ({ ...r, data: new Uint8Array(Buffer.concat(parts)) }))
  }
  const out = []
  for (const { file, rows } of querySqlite(persist, "SELECT 'log' AS t, id, part, seq, format, hex(data) AS data FROM ykeep_log ORDER BY id, part")) {
    const saved = querySqlite1(file, 'SELECT saved_seq, snapshot_id, saved_at FROM ykeep_saved')[0] ?? null
    const quarantine = querySqlite1(file, 'SELECT at, reason, id, part, seq, format, hex(data) AS data FROM ykeep_quarantine ORDER BY at, id, part')
    out.push({ file, log: join(rows), saved, quarantine: join(quarantine) })
  }
  return out
}

function querySqlite1 (file, sql) {
  const text = execFileSync('sqlite3', ['-readonly', '-json', file, sql], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  return text.trim() ? JSON.parse(text) : []
}

/**
 * Two durability markers (encoded Yjs snapshots, as /durable gives them) describe the same
 * state. Not a byte comparison: the encoding's order of clients is not canonical.
 */
export function markersEqual (a, b) {
  if (!a || !b) return false
  return Y.equalSnapshots(Y.decodeSnapshot(a), Y.decodeSnapshot(b))
}
