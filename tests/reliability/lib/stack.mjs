// Process stacks for the outage and two-relay drivers: a real store process (`ykeep-relay store`)
// or, with YKEEP_RELIABILITY_FAKE_STORE=1, the in-memory store of faultstore.mjs; relays saving to it.
import * as Y from 'yjs'
import { startProcess, relayArgs, tempDir, kill9, terminate, SECRET, TOKEN_KEY, waitFor, sleep } from './procs.mjs'
import { startFaultStore } from './faultstore.mjs'
import { SyncClient, runAgent } from './client.mjs'

export const useFakeStore = () => process.env.YKEEP_RELIABILITY_FAKE_STORE === '1'

export async function startStore (dir, { port = 0, extra: more = [] } = {}) {
  if (useFakeStore()) {
    const f = await startFaultStore({ secret: SECRET, tokenKey: TOKEN_KEY })
    return { url: f.url, fake: f, kill: () => f.setMode('refuse'), restart: async () => f.setMode('pass'), stop: () => f.close() }
  }
  const dataDir = `${dir}/store-data`
  const extra = [...more]
  let p = await startProcess('store', relayArgs({ sub: 'store', port, dataDir, extra }), { logDir: dir, name: 'store' })
  const s = {
    get url () { return p.url },
    get proc () { return p },
    dataDir,
    kill: () => kill9(p),
    /** Restarts on the same port and data dir; `env` e.g. { YKEEP_STORE_CRASH_AT: 'after_blob_write' }. */
    restart: async (env = {}) => { p = await startProcess('store', relayArgs({ sub: 'store', port: p.port, dataDir, extra }), { logDir: dir, name: 'store', env }) },
    stop: () => kill9(p)
  }
  return s
}

export async function startRelay (dir, storeUrl, { port = 0, extra = [], name = 'relay', dataDir = `${dir}/${name}-data`, allowAll = true } = {}) {
  const args = relayArgs({ sub: 'relay', port, dataDir, extra: ['--store-url', storeUrl, ...(allowAll ? ['--dev-allow-all'] : []), ...extra] })
  const p = await startProcess('relay', args, { logDir: dir, name })
  return p
}

/** Reads one Prometheus counter/gauge from /metrics (0 when absent). */
export async function metric (url, name) {
  const text = await (await fetch(`${url}/metrics`)).text()
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})?\\s+([0-9.eE+-]+)`, 'm').exec(text)
  return m ? Number(m[1]) : 0
}

/** Starts clients (one per agent) and runs the agents; returns handles. */
export function startAgents (roomUrlFor, stream, { paceMs = 0, rng } = {}) {
  const clients = stream.agents.map((a, i) => new SyncClient(roomUrlFor(i), { name: `agent-${i}` }))
  let sent = 0
  const pace = paceMs ? () => sleep(rng ? rng.int(0, 2 * paceMs) : paceMs) : async () => {}
  const done = Promise.all(stream.agents.map((a, i) => runAgent(clients[i], a.steps, { pace, onSent: () => { sent++ } })))
  return { clients, done, sent: () => sent }
}

export const snapshotsEqual = (a, b) => {
  const da = new Y.Doc(); Y.applyUpdate(da, a)
  const db = new Y.Doc(); Y.applyUpdate(db, b)
  return Y.equalSnapshots(Y.snapshot(da), Y.snapshot(db))
}

export { tempDir, kill9, terminate, waitFor, sleep }
