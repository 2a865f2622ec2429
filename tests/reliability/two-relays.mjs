#!/usr/bin/env node
// Two relays, one room (issue 7, item 3): two relay processes each hold a copy of the same room;
// agents are split between them (the relays do not talk to each other), both save to one store.
// The store's compare-and-set and the relay's fetch-merge-retry must keep every edit from both:
// the final snapshot contains every update of every agent, and clients on both relays converge.
//   node tests/reliability/two-relays.mjs [--seed S]
import * as Y from 'yjs'
import { chooseSeed, makeRng } from './lib/rng.mjs'
import { syntheticStream } from './lib/streams.mjs'
import { createResource, loadSnapshot, tail } from './lib/procs.mjs'
import { startStore, startRelay, metric, snapshotsEqual, tempDir, kill9, waitFor, sleep } from './lib/stack.mjs'
import { SyncClient, runAgent } from './lib/client.mjs'
import { missingUpdates, textOf } from './lib/check.mjs'

const KIND = 'document'

export async function runTwoRelays ({ seed, log = console.log, agents = 4, edits = 800 } = {}) {
  seed = chooseSeed(seed)
  const rng = makeRng(seed)
  log(`two-relays: seed ${seed} (rerun with YKEEP_SEED=${seed})`)
  // Agents on different relays never see each other's edits until a save merges them, so the
  // stream must not make an agent wait for another relay's edits: no cross-agent syncs.
  const stream = syntheticStream({ seed, numAgents: agents, edits, syncChance: 0 })
  const dir = tempDir('two-relays')
  const store = await startStore(dir)
  const id = `two-${seed}`
  await createResource(store.url, KIND, id)
  // Each relay polls the store for the other's saves (`--store-poll-ms`): without it, a relay
  // whose clients stopped editing never saves again and never sees the other's later edits.
  const extra = () => ['--save-interval-ms', String(rng.int(150, 400)), '--save-debounce-ms', '200', '--store-poll-ms', String(rng.int(200, 500))]
  const relays = [
    await startRelay(dir, store.url, { name: 'relay-a', extra: extra() }),
    await startRelay(dir, store.url, { name: 'relay-b', extra: extra() })
  ]
  const urlOf = (r) => `${r.wsUrl}/rooms/${KIND}/${id}`
  const clients = stream.agents.map((a, i) => new SyncClient(urlOf(relays[i % 2]), { name: `agent-${i}@${i % 2 ? 'b' : 'a'}` }))
  const observers = relays.map((r, i) => new SyncClient(urlOf(r), { name: `observer@${i ? 'b' : 'a'}` }))
  const pace = () => sleep(rng.int(0, 3))
  try {
    await Promise.all(stream.agents.map((a, i) => runAgent(clients[i], a.steps, { pace })))
    const all = stream.agents.flatMap((a) => a.steps.map((s) => s.update))
    // Every edit from both relays ends up in the one snapshot.
    const saved = await waitFor('the store snapshot to contain every edit from both relays', async () => {
      const s = await loadSnapshot(store.url, KIND, id)
      return s && missingUpdates(s.bytes, all).length === 0 ? s : null
    }, { timeoutMs: 90_000, everyMs: 100 })
    if (textOf(saved.bytes) !== stream.endContent) throw new Error('snapshot text differs from the end content')
    // The relays merged the store's snapshot into their rooms (a conflicting save or a poll):
    // clients on both sides converge.
    for (const c of [...clients, ...observers]) {
      await waitFor(`${c.name} to converge`, () => c.text() === stream.endContent, { timeoutMs: 90_000 })
    }
    const conflicts = await Promise.all(relays.map((r) => metric(r.url, 'ykeep_save_conflicts_total')))
    const saves = await Promise.all(relays.map((r) => metric(r.url, 'ykeep_saves_ok_total')))
    const figures = { seed, updates: all.length, conflictsMerged: conflicts, savesOk: saves, bytesChecked: saved.bytes.length, endChars: stream.endContent.length }
    log(`two-relays: OK ${JSON.stringify(figures)}`)
    return figures
  } catch (e) {
    e.message += `\n(seed ${seed}; relay logs ${relays.map((r) => r.logFile).join(' ')}\n${tail(relays[0].logFile, 15)}\n${tail(relays[1].logFile, 15)})`
    throw e
  } finally {
    for (const c of [...clients, ...observers]) c.close()
    for (const r of relays) await kill9(r)
    await store.stop()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2)
  const opt = (n, d) => { const i = args.indexOf(`--${n}`); return i < 0 ? d : args[i + 1] }
  runTwoRelays({ seed: opt('seed') }).then(() => process.exit(0), (e) => { console.error(e.stack || e); process.exit(1) })
}
