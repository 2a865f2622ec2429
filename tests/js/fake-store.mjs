// A minimal store speaking the snapshot contract's load/save, in memory, for the JS tests that
// run the real relay against it. `store.down = true` answers every request 503.
import { createServer } from 'node:http'

export function startFakeStore (SECRET) {
  const snapshots = new Map()
  let n = 0
  const saves = []
  const server = createServer((req, res) => {
    const chunks = []
    req.on('data', (c) => chunks.push(c))
    req.on('end', () => {
      const json = (status, body) => {
        res.writeHead(status, { 'content-type': 'application/json' })
        res.end(JSON.stringify(body))
      }
      if (store.down) return json(503, { error: { code: 'unavailable', message: 'the store is down (test)' } })
      if (req.headers.authorization !== `Bearer ${SECRET}`) return json(401, { error: { code: 'unauthorized', message: 'no' } })
      if (req.method === 'GET' && req.url === '/contract') return json(200, { contract: 1, store: 'interop-fake' })
      const m = req.url.match(/^\/snapshots\/(\w+)\/([\w-]+)$/)
      if (!m) return json(404, { error: { code: 'not_found', message: req.url } })
      const key = `${m[1]}/${m[2]}`
      const cur = snapshots.get(key)
      if (req.method === 'GET') {
        if (!cur) return json(404, { error: { code: 'no_snapshot', message: 'none' } })
        res.writeHead(200, { etag: `"${cur.id}"`, 'content-type': 'application/octet-stream' })
        return res.end(cur.bytes)
      }
      const ifMatch = req.headers['if-match']?.replaceAll('"', '')
      const ok = ifMatch ? cur?.id === ifMatch : !cur
      if (!ok) return json(409, { error: { code: 'conflict', message: 'changed', currentSnapshotId: cur?.id ?? null } })
      const bytes = Buffer.concat(chunks)
      const id = `s${++n}`
      snapshots.set(key, { id, bytes })
      saves.push(key)
      json(200, { snapshotId: id, size: bytes.length, stateVector: '', savedAt: Date.now() })
    })
  })
  const store = { snapshots, saves, down: false, close: () => server.close(), closeAll: () => server.closeAllConnections() }
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    store.url = `http://127.0.0.1:${server.address().port}`
    resolve(store)
  }))
}

