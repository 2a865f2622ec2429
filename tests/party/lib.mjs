// The party host on the real runtime for tests: workerd through Miniflare (party/serve.mjs, run
// as a child process so that a test can kill -9 workerd and restart it on the same storage),
// with the example worker (party/example/worker.ts, built into party/dist/ by scripts/build-party)
// saving to a real embedded store process (`ykeep-relay store`).
import fs from 'node:fs'
import path from 'node:path'
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
