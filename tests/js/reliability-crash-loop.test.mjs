// Issue 7, item 1: the crash loop, short version (the long one: scripts/crash-loop --kills 100 --trace).
// Real WebSocket clients edit one room while the relay is kill -9ed at seeded random moments and
// restarted on the same data dir; see tests/reliability/crash-loop.mjs for what is checked.
// Seeds are printed; rerun one with YKEEP_SEED=<seed>.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { runCrashLoop } from '../reliability/crash-loop.mjs'
import { relayBin } from '../reliability/lib/procs.mjs'
import { loadConcurrentTrace } from '../reliability/lib/streams.mjs'

const skipNoBin = relayBin() ? false : 'relay binary not built (cargo build -p ykeep-relay --bins, or set YKEEP_RELAY_BIN)'
const log = (m) => console.log(m)

test('crash loop: 10 kill -9s of `serve` (relay + embedded store) during a synthetic concurrent stream', { skip: skipNoBin, timeout: 300_000 }, async () => {
  const r = await runCrashLoop({ kills: 10, edits: 2000, agents: 4, store: 'serve', log })
  assert.equal(r.kills, 10)
  assert.ok(r.updatesChecked > 0 && r.markersChecked > 0, JSON.stringify(r))
})

test('crash loop: 10 kill -9s of `relay --store-url` (store process stays up)', { skip: skipNoBin, timeout: 300_000 }, async () => {
  const r = await runCrashLoop({ kills: 10, edits: 1500, agents: 3, store: 'fake', log })
  assert.equal(r.kills, 10)
})

const trace = loadConcurrentTrace()
test('crash loop: 5 kill -9s during the clownschool concurrent trace', {
  skip: skipNoBin || (trace.trace ? false : `concurrent trace absent: ${trace.reason}; the synthetic streams above cover the same paths`),
  timeout: 600_000
}, async () => {
  const r = await runCrashLoop({ kills: 5, trace: true, store: 'serve', log })
  assert.equal(r.kills, 5)
  assert.equal(r.updatesSent, 23136)
})

test('crash loop harness self-test: wiping the data dir at each kill is detected as loss', { skip: skipNoBin, timeout: 120_000 }, async () => {
  await assert.rejects(
    runCrashLoop({ kills: 1, edits: 400, agents: 3, store: 'fake', sabotage: true, saveIntervalMs: 600_000, saveDebounceMs: 600_000, log }),
    /lost updates it had (forwarded|reported durable)/
  )
})
