#!/usr/bin/env node
// Store outage (issue 7, item 2): the relay and the store run as separate processes; while clients
// keep editing, the store is (a) down (kill -9, restarted later on the same port and data dir; the
// relay is also kill -9ed during the outage), (b) answering 500s, (c) stalling (never
// answering: the relay's store timeout must fire), or (d) crashing inside the relay's save
// (YKEEP_STORE_CRASH_AT=after_blob_write | after_row_switch: the store aborts between blob write
// and row switch, or between row switch and old-blob delete; on restart it serves one valid
// snapshot and has collected the orphan blob). Saves fail and are counted/logged; edits keep
// flowing; after the store returns, the next save makes the snapshot equal to the relay's state.
//   node tests/reliability/outage.mjs [--mode down|500|stall|after_blob_write|after_row_switch] [--seed S]
import fs from 'node:fs'
import { makeRng, chooseSeed } from './lib/rng.mjs'
import { syntheticStream } from './lib/streams.mjs'
import { SyncClient } from './lib/client.mjs'
import { textOf, coversMarker, markerCovers } from './lib/check.mjs'
import { createResource, loadSnapshot, durable, liveState, startProcess, tail } from './lib/procs.mjs'
import { startFaultStore } from './lib/faultstore.mjs'
import { startStore, startRelay, metric, startAgents, snapshotsEqual, tempDir, kill9, waitFor, sleep } from './lib/stack.mjs'

const KIND = 'document'

export async function runOutage ({ mode = 'down', seed, log = console.log } = {}) {
  seed = chooseSeed(seed)
  const rng = makeRng(seed)
  const outageMs = rng.int(1500, 4000)
  log(`outage(${mode}): seed ${seed} (rerun with YKEEP_SEED=${seed}), outage ${outageMs} ms`)
  const stream = syntheticStream({ seed, numAgents: 3, edits: 900 })
  const dir = tempDir(`outage-${mode}`)
  const store = await startStore(dir)
  // 500 / stall go through the fault front; 'down' talks to the store directly and kills it.
  const crash = mode.startsWith('after_')
  const front = mode === 'down' || crash ? null : await startFaultStore({ upstream: store.url })
  const storeUrlForRelay = front ? front.url : store.url
  const id = `outage-${mode}-${seed}`
  await createResource(store.url, KIND, id)
  const relayExtra = ['--save-interval-ms', '300', '--save-debounce-ms', '200', '--store-timeout-ms', '700']
  const relayDataDir = `${dir}/relay-data`
  let relay = await startRelay(dir, storeUrlForRelay, { extra: relayExtra, dataDir: relayDataDir })
  const relayPort = relay.port
  const roomUrl = () => `${relay.wsUrl}/rooms/${KIND}/${id}`
  const fixedRoomUrl = roomUrl()
  const agents = startAgents(() => fixedRoomUrl, stream, { paceMs: 4, rng })
  const observer = new SyncClient(fixedRoomUrl, { name: 'observer' })
  const total = stream.agents.reduce((n, a) => n + a.steps.length, 0)
  const figures = { mode, seed, outageMs }
  try {
    // A first save must land before the outage, so the outage has a snapshot to keep.
    await waitFor('some edits', () => agents.sent() >= total * 0.15, { timeoutMs: 60_000 })
    const before = await waitFor('a first save', async () => {
      const d = await durable(relay.url, KIND, id)
      return d.store ? d : null
    }, { timeoutMs: 60_000 })
    const failedBefore = await metric(relay.url, 'ykeep_saves_failed_total')
    const sentAtStart = agents.sent()
    const t0 = Date.now()
    if (mode === 'down') await store.kill()
    else if (crash) {
      // The store restarts armed: the relay's next save aborts it mid-save.
      await store.kill()
      await store.restart({ YKEEP_STORE_CRASH_AT: mode })
      await waitFor('the armed store to abort inside a save', () => store.proc.proc.exitCode !== null || store.proc.proc.signalCode !== null, { timeoutMs: 30_000 })
      figures.storeAborted = store.proc.proc.signalCode || store.proc.proc.exitCode
    } else front.setMode(mode)
    // Saves must be attempted and fail while the store is out.
    await waitFor('a failed save to be counted', async () => (await metric(relay.url, 'ykeep_saves_failed_total')) > failedBefore, { timeoutMs: 30_000 })
    if (mode === 'down') {
      // The data waits in the relay's log: a kill -9 of the relay during the outage loses nothing.
      const forwarded = observer.doc
      await sleep(rng.int(100, 600))
      const Y = await import('yjs')
      const fwd = Y.encodeSnapshot(Y.snapshot(forwarded))
      await kill9(relay)
      relay = await startRelay(dir, storeUrlForRelay, { port: relayPort, extra: relayExtra, dataDir: relayDataDir })
      figures.relayKilledDuringOutage = true
      const v = new SyncClient(fixedRoomUrl, { name: 'verifier', reconnect: false })
      try {
        // With the store down a cold room may wait for it; the log alone must still hold the data:
        // checked once the store is back (below) if the relay holds sync replies meanwhile.
        const synced = await waitFor('verifier sync', () => v.synced || v.closeEvents.length > 0, { timeoutMs: 15_000 }).catch(() => false)
        if (synced && v.synced && !coversMarker(Y.encodeStateAsUpdate(v.doc), fwd)) {
          throw new Error(`relay restarted during the store outage lost forwarded updates (seed ${seed})`)
        }
        figures.coldStartDuringOutage = v.synced ? 'served from the local log' : `no sync while the store is down (${JSON.stringify(v.closeEvents)})`
      } finally { v.close() }
    }
    const remaining = outageMs - (Date.now() - t0)
    if (remaining > 0) await sleep(remaining)
    figures.editsDuringOutage = agents.sent() - sentAtStart
    const failedDuring = await metric(relay.url, 'ykeep_saves_failed_total')
    const during = await durable(relay.url, KIND, id)
    if (!crash && mode !== 'down' && during.storeSnapshotId !== before.storeSnapshotId) {
      throw new Error(`the store snapshot id changed during the outage (${before.storeSnapshotId} -> ${during.storeSnapshotId})`)
    }
    if (mode === 'down' || crash) await store.restart()
    else front.setMode('pass')
    if (crash) {
      // Exactly one valid snapshot is served (it decodes; checked below) and the orphan is gone.
      const s = await loadSnapshot(store.url, KIND, id)
      if (!s || textOf(s.bytes) === undefined) throw new Error('no valid snapshot after the crash')
      // (The relay keeps saving every 300 ms, so two files may exist for a moment mid-save.)
      const blobs = () => fs.readdirSync(`${store.dataDir}/store/blobs`).filter((n) => !n.startsWith('.'))
      await waitFor(`one blob file after the crash (${mode}); have ${blobs()}`, () => blobs().length === 1, { timeoutMs: 30_000, everyMs: 5 })
      figures.blobsAfterRestart = 1
    }
    figures.actualOutageMs = Date.now() - t0
    await agents.done
    const everyone = [...agents.clients, observer]
    for (const c of everyone) await waitFor(`${c.name} to converge`, () => c.text() === stream.endContent, { timeoutMs: 120_000 })
    const live = await liveState(relay.url, KIND, id)
    // The next save (periodic, the room still has connections) brings the store to the relay state.
    const saved = await waitFor('the store snapshot to equal the relay state', async () => {
      const s = await loadSnapshot(store.url, KIND, id)
      return s && snapshotsEqual(s.bytes, live) ? s : null
    }, { timeoutMs: 60_000, everyMs: 100 })
    if (textOf(saved.bytes) !== stream.endContent) throw new Error('store text differs from the end content')
    // /durable learns of a save when the store's reply reaches the relay, a moment after the
    // store committed it (and after an after_row_switch crash, only with the next save's 409).
    await waitFor('/durable: the store marker to cover the relay marker', async () => {
      const d = await durable(relay.url, KIND, id)
      return markerCovers(d.store, d.relay)
    }, { timeoutMs: 60_000, everyMs: 100 })
    const logText = relay.log()
    if (mode !== 'down' && !crash && !/save failed/i.test(logText)) throw new Error(`no "save failed" line in the relay log ${relay.logFile}`)
    figures.failedSaves = failedDuring - failedBefore
    figures.storeRequestsDuringOutage = front ? front.state.counts[mode] : undefined
    figures.updates = total
    figures.bytesCompared = saved.bytes.length + live.length
    log(`outage(${mode}): OK ${JSON.stringify(figures)}`)
    return figures
  } catch (e) {
    e.message += `\n(seed ${seed}; relay log tail:\n${tail(relay.logFile)})`
    throw e
  } finally {
    for (const c of [...agents.clients, observer]) c.close()
    await kill9(relay)
    if (front) await front.close()
    await store.stop()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2)
  const opt = (n, d) => { const i = args.indexOf(`--${n}`); return i < 0 ? d : args[i + 1] }
  runOutage({ mode: opt('mode', 'down'), seed: opt('seed') }).then(() => process.exit(0), (e) => { console.error(e.stack || e); process.exit(1) })
}
