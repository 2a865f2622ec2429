#!/usr/bin/env node
// Crash loop: real WebSocket clients (one per agent, plus two readers: a raw y-sync observer and a
// stock y-websocket WebsocketProvider) edit one room through `ykeep-relay serve` while this driver
// kill -9s the relay at seeded random moments and restarts it on the same data dir and port.
// With `store: 'party'` (--store party) the server is the party host instead: workerd (through
// Miniflare, tests/party/lib.mjs) is kill -9ed and restarted on the same Durable Object storage and
// port, saving to a real embedded store process (`ykeep-relay store`) that stays up.
//
// After every restart, before any client may reconnect, it checks that the relay's state contains
//   - every update the relay had forwarded to any client before the kill, and
//   - the last `relay` durability marker /durable reported before the kill.
// At the end: the relay's text, the store snapshot's text (after the final save) and every
// client's text equal the stream's end content, also after one more restart.
//
//   node tests/reliability/crash-loop.mjs [--kills N] [--trace] [--seed S] [--agents N] [--edits N]
//        [--store serve|fake|party]
import fs from 'node:fs'
import * as Y from 'yjs'
import WebSocket from 'ws'
import { WebsocketProvider } from 'y-websocket'
import { makeRng, chooseSeed } from './lib/rng.mjs'
import { syntheticStream, loadConcurrentTrace, traceStream, TEXT } from './lib/streams.mjs'
import { SyncClient, runAgent } from './lib/client.mjs'
import { coversMarker, markerCovers, missingUpdates, textOf } from './lib/check.mjs'
import {
  startProcess, kill9, terminate, relayArgs, createResource, loadSnapshot, durable, liveState,
  tempDir, waitFor, sleep, tail, SECRET
} from './lib/procs.mjs'
import { startFaultStore } from './lib/faultstore.mjs'
import { startStore } from './lib/stack.mjs'

const KIND = 'document'

export async function runCrashLoop ({
  kills = 10, trace = false, seed, agents = 4, edits = 1200, log = console.log, traceLimit,
  saveIntervalMs = 400, saveDebounceMs = 300, store = process.env.YKEEP_CRASH_STORE || 'serve',
  sabotage = false // harness self-test: wipe the data dir at each kill; the checks must then fail
} = {}) {
  seed = chooseSeed(seed)
  log(`crash-loop: seed ${seed} (rerun with YKEEP_SEED=${seed}), kills ${kills}, ${trace ? 'trace' : 'synthetic'}`)
  const rng = makeRng(seed)
  let stream
  if (trace) {
    const t = loadConcurrentTrace()
    if (!t.trace) return { skipped: t.reason }
    const t0 = Date.now()
    stream = traceStream(t.trace, { limit: traceLimit })
    log(`crash-loop: replayed ${stream.source} into per-agent updates in ${Date.now() - t0} ms`)
  } else {
    stream = syntheticStream({ seed, numAgents: agents, edits })
  }
  const totalSteps = stream.agents.reduce((n, a) => n + a.steps.length, 0)
  log(`crash-loop: ${stream.source}: ${totalSteps} updates from ${stream.agents.length} agents, end content ${stream.endContent.length} chars`)

  const dir = tempDir('crash-loop')
  let keepDir = true // logs and data stay for a failed run (printed in its error)
  const dataDir = `${dir}/data`
  const id = `crash-${seed}`
  const extra = ['--dev-allow-all', '--save-interval-ms', String(saveIntervalMs), '--save-debounce-ms', String(saveDebounceMs)]
  // 'serve': relay + embedded store in one process (both die at each kill);
  // 'fake': `relay --store-url` against the in-memory store of lib/faultstore.mjs;
  // 'party': the party host on workerd (its Durable Object storage in dataDir) saving to a
  // `ykeep-relay store` process; only workerd dies at each kill.
  let fake = null
  let partyStore = null
  let sub = 'serve'
  let relay
  let restart
  if (store === 'party') {
    const party = await import('../party/lib.mjs')
    const why = party.skipReason()
    if (why) throw new Error(`crash-loop --store party: ${why}`)
    partyStore = await startStore(dir)
    const vars = { YKEEP_SAVE_INTERVAL_MS: String(saveIntervalMs), YKEEP_SAVE_DEBOUNCE_MS: String(saveDebounceMs) }
    let runs = 0
    const start = async (port = 0) => {
      const logFile = `${dir}/party-${++runs}.log`
      const w = await party.startParty({ persist: dataDir, storeUrl: partyStore.url, vars, port, logFile })
      return { party: w, url: w.url, wsUrl: w.wsUrl, port: Number(new URL(w.url).port), logFile }
    }
    try {
      relay = await start()
    } catch (e) {
      await partyStore.stop()
      throw e
    }
    const port = relay.port
    restart = async () => { relay = await start(port) }
  } else {
    if (store === 'fake') {
      fake = await startFaultStore({ secret: SECRET })
      sub = 'relay'
      extra.push('--store-url', fake.url)
    } else {
      extra.push('--auto-create') // the embedded store's flag: `serve` reads it, `relay` has none
    }
    relay = await startProcess(sub, relayArgs({ sub, dataDir, extra }), { logDir: dir, name: sub })
    const port = relay.port
    restart = async () => {
      relay = await startProcess(sub, relayArgs({ sub, port, dataDir, extra }), { logDir: dir, name: sub })
    }
  }
  // kill -9 / graceful stop of whichever server runs (the party host: workerd, then its parent).
  const crash = (p) => (p.party ? p.party.kill9() : kill9(p))
  const stop = (p) => (p.party ? p.party.stop() : terminate(p))
  const storeUrl = fake ? fake.url : partyStore ? partyStore.url : relay.url
  await createResource(storeUrl, KIND, id)
  const roomUrl = `${relay.wsUrl}/rooms/${KIND}/${id}`

  // Every update any reader received, folded into one doc: its snapshot is "what was forwarded".
  const forwarded = new Y.Doc()
  let forwardedCount = 0
  let forwardedBytes = 0
  const onReceive = (u) => { Y.applyUpdate(forwarded, u); forwardedCount++; forwardedBytes += u.length }

  const clients = stream.agents.map((a, i) => {
    const c = new SyncClient(roomUrl, { name: `agent-${i}` })
    c.onReceive = onReceive
    return c
  })
  const observer = new SyncClient(roomUrl, { name: 'observer' })
  observer.onReceive = onReceive
  const providerDoc = new Y.Doc()
  const provider = new WebsocketProvider(`${relay.wsUrl}/rooms/${KIND}`, id, providerDoc, { WebSocketPolyfill: WebSocket, disableBc: true })
  const everyone = [...clients, observer]

  let sent = 0
  let paused = false
  const pace = async () => { while (paused) await sleep(5) }
  const agentsDone = Promise.all(stream.agents.map((a, i) => runAgent(clients[i], a.steps, { pace, onSent: () => { sent++ } })))
  let agentError = null
  agentsDone.catch((e) => { agentError = e })

  // Poll /durable in the background: the last marker seen before a kill must survive it.
  let lastDurable = null
  let polling = true
  const poller = (async () => {
    while (polling) {
      try {
        const d = await durable(relay.url, KIND, id)
        if (d.relay) lastDurable = d.relay
      } catch {}
      await sleep(15)
    }
  })()

  const thresholds = Array.from({ length: kills }, () => Math.floor((0.03 + 0.94 * rng.next()) * totalSteps)).sort((a, b) => a - b)
  const figures = { seed, kills: 0, updatesChecked: 0, bytesCompared: 0, markersChecked: 0, killSentCounts: [] }
  try {
    for (let k = 0; k < kills; k++) {
      await waitFor(`${thresholds[k]} updates sent (sent ${sent})`, () => sent >= thresholds[k] || agentError, { timeoutMs: 120_000, everyMs: 1 })
      if (agentError) throw agentError
      await sleep(rng.int(0, 25))
      // Hold reconnects so the restarted relay is checked on what it recovered by itself.
      for (const c of everyone) c.hold()
      provider.shouldConnect = false
      const marker = lastDurable
      await crash(relay)
      const sentAtKill = sent
      figures.killSentCounts.push(sent)
      if (sabotage) wipe(dataDir)
      provider.disconnect()
      const fwdSnapshot = Y.encodeSnapshot(Y.snapshot(forwarded))
      const fwdUpdates = forwardedCount
      const fwdBytes = forwardedBytes
      if (forwarded.store.pendingStructs || forwarded.store.pendingDs) throw new Error('forwarded updates have missing dependencies: the check would be incomplete')
      await restart()
      const state = await recoveredState(roomUrl)
      if (!coversMarker(state, fwdSnapshot)) {
        throw new Error(`kill ${k + 1}: the restarted relay lost updates it had forwarded before the kill (seed ${seed}; log ${relay.logFile})`)
      }
      if (marker && !coversMarker(state, marker)) {
        throw new Error(`kill ${k + 1}: the restarted relay lost updates it had reported durable before the kill (seed ${seed}; log ${relay.logFile})`)
      }
      const d = await durable(relay.url, KIND, id)
      if (marker && !markerCovers(d.relay, marker)) {
        throw new Error(`kill ${k + 1}: /durable after restart does not cover the pre-kill durable marker (seed ${seed})`)
      }
      figures.kills++
      figures.updatesChecked += fwdUpdates
      figures.bytesCompared += fwdBytes + state.length
      figures.markersChecked += marker ? 1 : 0
      log(`crash-loop: kill ${k + 1}/${kills} at ${sentAtKill}/${totalSteps} sent: recovered ${state.length} bytes cover ${fwdUpdates} forwarded deliveries${marker ? ' and the last durable marker' : ''}`)
      for (const c of everyone) c.release()
      provider.connect()
      // The next kill lands on a relay with its clients back (a kill during recovery, when two
      // thresholds fall together, is then still possible but not the rule).
      await waitFor('every client to reconnect and sync', () => everyone.every((c) => c.synced), { timeoutMs: 60_000 })
    }
    await agentsDone
    log(`crash-loop: all ${totalSteps} updates sent; waiting for every client to converge`)
    for (const c of everyone) {
      await waitFor(`${c.name} to reach the end content (has ${c.text().length} of ${stream.endContent.length} chars)`, () => c.text() === stream.endContent, { timeoutMs: 120_000 })
    }
    await waitFor('the y-websocket provider to reach the end content', () => providerDoc.getText(TEXT).toString() === stream.endContent, { timeoutMs: 120_000 })
    const live = await liveState(relay.url, KIND, id)
    if (textOf(live) !== stream.endContent) throw new Error(`relay /state text differs from the end content (seed ${seed})`)
    figures.bytesCompared += live.length
    // Everyone leaves; the debounced save must bring the store to the relay's state.
    for (const c of everyone) c.close()
    provider.destroy()
    provider.awareness.destroy() // its check interval would keep node alive
    polling = false
    await poller
    const saved = await waitFor('the final save to reach the store', async () => {
      const s = await loadSnapshot(storeUrl, KIND, id)
      return s && textOf(s.bytes) === stream.endContent ? s : null
    }, { timeoutMs: 60_000, everyMs: 100 })
    figures.bytesCompared += saved.bytes.length
    if (missingUpdates(saved.bytes, [live]).length) throw new Error(`store snapshot does not contain the relay state (seed ${seed})`)
    // One more restart after a graceful stop: the cold room still has the end content.
    await stop(relay)
    await restart()
    const cold = await recoveredState(roomUrl)
    if (textOf(cold) !== stream.endContent) throw new Error(`after a clean restart the room text differs (seed ${seed})`)
    const stored = await loadSnapshot(storeUrl, KIND, id)
    if (textOf(stored.bytes) !== stream.endContent) throw new Error(`after a clean restart the store text differs (seed ${seed})`)
    figures.bytesCompared += cold.length + stored.bytes.length
    figures.clientsChecked = everyone.length + 1
    figures.updatesSent = totalSteps
    figures.endChars = stream.endContent.length
    figures.store = store
    log(`crash-loop: OK ${JSON.stringify(figures)}`)
    if (partyStore) keepDir = false // the party host's storage is a few MB a run: drop it when all passed
    return figures
  } catch (e) {
    e.message += `\n(seed ${seed}; data ${dataDir}; relay log tail:\n${tail(relay.logFile)})`
    throw e
  } finally {
    polling = false
    for (const c of everyone) c.close()
    try { provider.destroy(); provider.awareness.destroy() } catch {}
    await crash(relay)
    if (fake) await fake.close()
    if (partyStore) await partyStore.stop()
    // (the party self-test's failure is the expected one: its data is of no use either)
    if (!keepDir || (partyStore && sabotage)) fs.rmSync(dir, { recursive: true, force: true })
  }
}

function wipe (dataDir) {
  fs.rmSync(dataDir, { recursive: true, force: true })
  fs.mkdirSync(dataDir, { recursive: true })
}

/** Opens a fresh reader with an empty doc and returns the full state the relay syncs to it. */
export async function recoveredState (roomUrl, timeoutMs = 60_000) {
  const c = new SyncClient(roomUrl, { name: 'verifier', reconnect: false })
  try {
    await waitFor('the restarted relay to sync a fresh reader', () => c.synced, { timeoutMs })
    return Y.encodeStateAsUpdate(c.doc)
  } finally {
    c.close()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2)
  const opt = (name, dflt) => {
    const i = args.indexOf(`--${name}`)
    return i < 0 ? dflt : args[i + 1]
  }
  runCrashLoop({
    kills: Number(opt('kills', 10)),
    trace: args.includes('--trace'),
    seed: opt('seed', undefined),
    agents: Number(opt('agents', 4)),
    edits: Number(opt('edits', 1200)),
    store: opt('store', process.env.YKEEP_CRASH_STORE || 'serve')
  }).then((r) => {
    if (r && r.skipped) { console.log(`crash-loop: skipped: ${r.skipped}`); process.exit(0) }
    process.exit(0)
  }, (e) => { console.error(`crash-loop: FAILED: ${e.stack || e}`); process.exit(1) })
}
