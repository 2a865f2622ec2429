// A fault-injecting HTTP front for the snapshot store, on 127.0.0.1:0.
//   mode 'pass'  : forwards to the upstream store (or serves a small in-memory store when no
//                  upstream is given: save with If-Match / If-None-Match / containment, load,
//                  resources, verify-allows-all)
//   mode '500'   : every request answers 500 {"error":{"code":"internal",...}}
//   mode 'stall' : accepts the request and never answers (the relay's store timeout must fire)
//   mode 'refuse': drops the connection (a store that is down, when no real store process is used)
// Every request is counted per mode, so tests can assert that saves were attempted.
import http from 'node:http'
import * as Y from 'yjs'
import { verifyToken } from './tokens.mjs'

export async function startFaultStore ({ upstream = null, secret, tokenKey = null } = {}) {
  const state = { mode: 'pass', counts: { pass: 0, 500: 0, stall: 0, refuse: 0 }, saves: [], stalled: [] }
  const mem = new Map() // kind/id -> { snapshotId, bytes } | { snapshotId: null }
  let nextId = 1
  const server = http.createServer(async (req, res) => {
    const body = await readBody(req)
    const mode = state.mode
    state.counts[mode]++
    if (req.method === 'POST' && req.url.startsWith('/snapshots/')) state.saves.push({ mode, url: req.url, at: Date.now() })
    if (mode === '500') return json(res, 500, { error: { code: 'internal', message: 'injected failure' } })
    if (mode === 'stall') { state.stalled.push(res); return }
    if (mode === 'refuse') { req.socket.destroy(); return }
    if (upstream) return forward(upstream, req, body, res)
    memStore(req, body, res)
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = server.address().port

  function memStore (req, body, res) {
    const auth = req.headers.authorization || ''
    const url = new URL(req.url, 'http://x')
    const parts = url.pathname.split('/').filter(Boolean)
    const authed = auth === `Bearer ${secret}`
    if (parts[0] === 'healthz') return json(res, 200, { ok: true })
    if (!authed) return json(res, 401, { error: { code: 'unauthorized', message: 'no' } })
    if (parts[0] === 'contract' && req.method === 'GET') return json(res, 200, { contract: 1, store: 'faultstore' })
    if (parts[0] === 'collaboration') {
      if (!tokenKey) return json(res, 200, { allowed: true, userId: 'test' })
      const { token, kind, id } = JSON.parse(body.toString() || '{}')
      return json(res, 200, verifyToken(tokenKey, token, kind, id))
    }
    if (parts[0] === 'resources' && req.method === 'POST') {
      const id = JSON.parse(body.toString() || '{}').id
      const key = `${parts[1]}/${id}`
      if (mem.has(key)) return json(res, 409, { error: { code: 'conflict', message: 'exists' } })
      mem.set(key, { snapshotId: null, bytes: null })
      return json(res, 201, { kind: parts[1], id })
    }
    if (parts[0] !== 'snapshots') return json(res, 404, { error: { code: 'not_found', message: 'route' } })
    const key = `${parts[1]}/${parts[2]}`
    const row = mem.get(key)
    if (!row) return json(res, 404, { error: { code: 'not_found', message: 'no row' } })
    if (req.method === 'GET') {
      if (!row.bytes) return json(res, 404, { error: { code: 'no_snapshot', message: 'none' } })
      res.writeHead(200, { 'content-type': 'application/octet-stream', etag: `"${row.snapshotId}"`, 'x-ykeep-saved-at': String(row.savedAt) })
      return res.end(row.bytes)
    }
    if (req.method === 'POST') {
      const ifMatch = (req.headers['if-match'] || '').replace(/"/g, '')
      const ifNone = req.headers['if-none-match']
      const conflict = () => json(res, 409, { error: { code: 'conflict', message: 'changed', currentSnapshotId: row.snapshotId } })
      if (ifMatch && ifMatch !== row.snapshotId) return conflict()
      if (ifNone === '*' && row.snapshotId) return conflict()
      const bytes = new Uint8Array(body)
      const doc = new Y.Doc()
      try { Y.applyUpdate(doc, bytes) } catch { return json(res, 400, { error: { code: 'bad_update', message: 'bad' } }) }
      if (!ifMatch && !ifNone && row.bytes) {
        const cur = new Y.Doc()
        Y.applyUpdate(cur, row.bytes)
        if (!Y.snapshotContainsUpdate(Y.snapshot(doc), Y.encodeStateAsUpdate(cur))) return conflict()
      }
      row.snapshotId = `s${nextId++}`
      row.bytes = bytes
      row.savedAt = Date.now()
      res.setHeader('etag', `"${row.snapshotId}"`)
      return json(res, 200, { snapshotId: row.snapshotId, size: bytes.length, stateVector: Buffer.from(Y.encodeStateVector(doc)).toString('base64url'), savedAt: row.savedAt })
    }
    return json(res, 405, { error: { code: 'bad_request', message: 'method' } })
  }

  return {
    url: `http://127.0.0.1:${port}`,
    state,
    setMode (m) {
      state.mode = m
      if (m !== 'stall') { for (const r of state.stalled.splice(0)) r.destroy() }
    },
    memSnapshot: (kind, id) => mem.get(`${kind}/${id}`)?.bytes || null,
    close: () => new Promise((resolve) => { for (const r of state.stalled.splice(0)) r.destroy(); server.closeAllConnections(); server.close(resolve) })
  }
}

function readBody (req) {
  return new Promise((resolve) => {
    const chunks = []
    req.on('data', (c) => chunks.push(c))
    req.on('end', () => resolve(Buffer.concat(chunks)))
    req.on('error', () => resolve(Buffer.alloc(0)))
  })
}

function json (res, status, obj) {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(obj))
}

async function forward (upstream, req, body, res) {
  const headers = { ...req.headers }
  delete headers.host
  delete headers['content-length']
  try {
    const r = await fetch(upstream + req.url, { method: req.method, headers, body: ['GET', 'HEAD'].includes(req.method) ? undefined : body })
    const out = Buffer.from(await r.arrayBuffer())
    const h = {}
    r.headers.forEach((v, k) => { if (!['content-length', 'transfer-encoding', 'connection'].includes(k)) h[k] = v })
    res.writeHead(r.status, h)
    res.end(out)
  } catch (e) {
    json(res, 502, { error: { code: 'upstream', message: String(e.message) } })
  }
}
