// Acknowledgements benchmark (the ykeep extension message, type 107): `scripts/bench acks`.
//  1. Latency, in the demo's setting: headless Chromium (playwright-core, /usr/bin/chromium), a
//     page with the built pkg/ client and a y-websocket provider attached with keep.attach,
//     served by a release `ykeep-relay serve --demo` (relay + embedded SQLite store in one
//     process, fresh temp data dir). Each edit waits for its own event before the next one:
//     edit -> browser / relay (N edits) and edit -> store (fewer, with a short save interval).
//     The floor, same relay, same page, a fresh socket of the same kind to an empty room: a raw
//     SyncStep1 -> SyncStep2 round trip and a Mark -> Committed with nothing to commit,
//     interleaved in blocks with the edits. Once with --log-sync normal (the demo's default: the
//     commit is written to SQLite's WAL, not fsynced) and once with --log-sync full (fsync per
//     commit).
//  2. Bytes, in Node (y-websocket provider + pkg/ YKeep over fake-indexeddb, as
//     tests/js/acks.test.mjs): a prefix of the automerge-paper trace (YKEEP_BENCH_DATA, default
//     ../shared/bench-data; a seeded synthetic stream when absent) replayed as individual edits;
//     every frame the provider's socket sends or receives is counted by its first byte.
// Options (env or --name value): EDITS (200), STORE_EDITS (20), FLOOR (200), TRACE_EDITS
// (3000), BURST (8), SAVE_INTERVAL_MS (100, the store part only), MODES (normal,full).
// Writes bench/results/acks.json and acks.md; the page bundle, browser profile and data dirs
// live under bench/results/tmp/acks/ (git-ignored) and are removed afterwards.
import { spawn, execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, copyFileSync, openSync, writeSync, fsyncSync, closeSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { build } from 'esbuild'
import { launchChromium } from '../chromium.mjs'
import { loadTrace, syntheticTrace } from '../party/trace.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..', '..')
const results = join(root, 'bench', 'results')
const work = join(results, 'tmp', 'acks')
const relayBin = process.env.YKEEP_RELAY_BIN || join(root, 'target', 'release', 'ykeep-relay')

const args = process.argv.slice(2)
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name.toLowerCase().replace(/_/g, '-')}`)
  if (i >= 0) return args[i + 1]
  return process.env[name] ?? dflt
}
const EDITS = Number(opt('EDITS', 200))
const STORE_EDITS = Number(opt('STORE_EDITS', 20))
const FLOOR = Number(opt('FLOOR', 200))
const TRACE_EDITS = Number(opt('TRACE_EDITS', 10000))
const BURST = Number(opt('BURST', 8))
const SAVE_INTERVAL_MS = Number(opt('SAVE_INTERVAL_MS', 100))
const MODES = String(opt('MODES', 'normal,full')).split(',').filter(Boolean)
const BLOCKS = 4
const WARMUP = 20

if (!existsSync(relayBin)) { console.error(`${relayBin} not built: cargo build --release -p ykeep-relay`); process.exit(1) }
if (!existsSync(join(root, 'pkg', 'ykeep_wasm_bg.wasm'))) { console.error('pkg/ not built: run scripts/build-wasm first'); process.exit(1) }
mkdirSync(work, { recursive: true })
const loadBefore = loadavg()
const t00 = Date.now()

// ---- helpers ----
const sorted = (xs) => [...xs].sort((a, b) => a - b)
const q = (xs, p) => { const s = sorted(xs); if (!s.length) return null; const i = Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1)); return s[i] }
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length
const stats = (xs) => ({ n: xs.length, p50: q(xs, 0.5), p90: q(xs, 0.9), p99: q(xs, 0.99), mean: mean(xs), min: q(xs, 0), max: q(xs, 1) })
const r3 = (x) => (x == null ? null : Math.round(x * 1000) / 1000)
const roundStats = (s) => Object.fromEntries(Object.entries(s).map(([k, v]) => [k, k === 'n' ? v : r3(v)]))

function startRelay (flags, staticDir) {
  const dataDir = mkdtempSync(join(work, 'data-'))
  const argv = ['serve', '--demo', '--listen', '127.0.0.1:0', '--data-dir', dataDir, ...(staticDir ? ['--static-dir', staticDir] : []), ...flags]
  const child = spawn(relayBin, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, YKEEP_LOG: process.env.YKEEP_LOG || 'warn' } })
  let stderr = ''
  child.stderr.on('data', (d) => { stderr += d })
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout })
    rl.on('line', (line) => {
      const m = line.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/)
      if (m) {
        resolve({
          child,
          url: m[1],
          argv: ['ykeep-relay', ...argv.map((a) => (a === dataDir ? '<tmp>' : a === staticDir ? '<page>' : a))],
          stop: async () => {
            child.kill('SIGTERM')
            await new Promise((resolve) => { if (child.exitCode !== null) resolve(); else child.once('exit', resolve) })
            rmSync(dataDir, { recursive: true, force: true })
            const odd = stderr.split('\n').filter((l) => l.trim() && !/DEMO MODE|DEV MODE/.test(l))
            if (odd.length) console.log(`relay stderr:\n${odd.join('\n').slice(0, 2000)}`)
          }
        })
      }
    })
    child.once('exit', (code) => reject(new Error(`relay exited early (${code}): ${stderr}`)))
  })
}

// ---- the disk's fsync, on the file system of the relay's data dirs (what --log-sync full adds per commit) ----
function fsyncProbe (n = 100) {
  const file = join(work, 'fsync-probe')
  const fd = openSync(file, 'w')
  const buf = Buffer.alloc(4096, 1)
  const ts = []
  for (let i = 0; i < n; i++) {
    writeSync(fd, buf)
    const t = process.hrtime.bigint()
    fsyncSync(fd)
    ts.push(Number(process.hrtime.bigint() - t) / 1e6)
  }
  closeSync(fd)
  rmSync(file)
  return roundStats(stats(ts))
}

// ---- 1. page bundle ----
const pageDir = join(work, 'page')
mkdirSync(pageDir, { recursive: true })
await build({ entryPoints: [join(here, 'page.js')], bundle: true, format: 'esm', target: 'es2022', outfile: join(pageDir, 'bundle.js'), logLevel: 'warning' })
copyFileSync(join(root, 'pkg', 'ykeep_wasm_bg.wasm'), join(pageDir, 'ykeep_wasm_bg.wasm'))
writeFileSync(join(pageDir, 'index.html'), '<!doctype html><meta charset=utf-8><title>ykeep acks bench</title><script type=module src=bundle.js></script>')

const profile = mkdtempSync(join(work, 'profile-'))
const context = await launchChromium(profile)
const out = {
  date: new Date().toISOString(),
  chromium: context.browser()?.version() ?? 'chromium',
  options: { EDITS, STORE_EDITS, FLOOR, TRACE_EDITS, BURST, SAVE_INTERVAL_MS, MODES, BLOCKS, WARMUP },
  latency: {},
  bytes: {},
  fsync4k: fsyncProbe()
}
console.log(`fsync of a 4 KiB write on the data dirs' file system: p50 ${out.fsync4k.p50} p90 ${out.fsync4k.p90} p99 ${out.fsync4k.p99} ms`)

async function openPage (relay) {
  const page = await context.newPage()
  page.on('pageerror', (e) => console.error('page error:', e))
  // A fresh room's /state answers 404 (the load takes it as empty): expected, not printed.
  page.on('console', (m) => { if ((m.type() === 'error' || m.type() === 'warning') && !/Failed to load resource/.test(m.text())) console.error('page console:', m.text()) })
  page.on('response', (r) => { if (r.status() >= 400 && !(r.status() === 404 && /\/state$/.test(r.url()))) console.error(`page: ${r.status()} ${r.url()}`) })
  await page.goto(relay.url + '/')
  await page.waitForFunction(() => window.benchReady === true)
  return page
}

const col = (rows, k) => rows.map((r) => r[k]).filter((x) => x != null)
const fmt = (s) => `p50 ${s.p50.toFixed(2)}  p90 ${s.p90.toFixed(2)}  p99 ${s.p99.toFixed(2)} ms`

try {
  for (const mode of MODES) {
    // 1a. edit -> browser / relay, interleaved with the floor, demo save settings (30 s interval).
    const relayFlags = ['--log-sync', mode]
    let relay = await startRelay(relayFlags, pageDir)
    let page = await openPage(relay)
    const room = `acks-${mode}`
    await page.evaluate((room) => window.bench.setup(room), room)
    await page.evaluate((n) => window.bench.edits(n, 'relay', 0), WARMUP) // warm-up, not counted
    await page.evaluate((n) => window.bench.floor('floor-warm', n), WARMUP)
    const rows = []
    const floor = { sync: [], mark: [] }
    for (let b = 0; b < BLOCKS; b++) {
      rows.push(...await page.evaluate((n) => window.bench.edits(n, 'relay', 0), Math.ceil(EDITS / BLOCKS)))
      const f = await page.evaluate(([room, n]) => window.bench.floor(room, n), [`floor-${mode}-${b}`, Math.ceil(FLOOR / BLOCKS)])
      floor.sync.push(...f.sync)
      floor.mark.push(...f.mark)
    }
    await page.evaluate(() => window.bench.teardown())
    await page.close()
    await relay.stop()
    const relayArgv = relay.argv

    // 1b. edit -> store, with a short save interval.
    const storeFlags = ['--log-sync', mode, '--save-interval-ms', String(SAVE_INTERVAL_MS)]
    relay = await startRelay(storeFlags, pageDir)
    page = await openPage(relay)
    await page.evaluate((room) => window.bench.setup(room), `${room}-store`)
    await page.evaluate(() => window.bench.edits(2, 'store', 0)) // warm-up (first save creates the row)
    const metric = async () => {
      const text = await (await fetch(relay.url + '/metrics')).text()
      const get = (name) => Number(text.match(new RegExp(`^ykeep_${name} (\\d+)`, 'm'))?.[1] ?? NaN)
      return { sum: get('save_seconds_sum_micros'), count: get('save_seconds_count'), ok: get('saves_ok_total') }
    }
    const storeRows = []
    for (let i = 0; i < STORE_EDITS; i++) {
      const before = await metric()
      const [row] = await page.evaluate(() => window.bench.edits(1, 'store', 0))
      row.i = i
      const after = await metric()
      row.saves = after.count - before.count
      row.saveMs = row.saves > 0 ? (after.sum - before.sum) / 1000 / row.saves : null
      storeRows.push(row)
    }
    await page.evaluate(() => window.bench.teardown())
    await page.close()
    await relay.stop()

    const L = {
      relayArgv,
      storeArgv: relay.argv,
      edit: roundStats(stats(col(rows, 'editMs'))),
      browser: roundStats(stats(col(rows, 'browser'))),
      updateSent: roundStats(stats(col(rows, 'updateSent'))),
      markSent: roundStats(stats(col(rows, 'markSent'))),
      committedBeforeBrowser: rows.filter((r) => r.committedWire != null && r.browser != null && r.committedWire < r.browser).length,
      committedWire: roundStats(stats(col(rows, 'committedWire'))),
      relay: roundStats(stats(col(rows, 'relay'))),
      markToCommitted: roundStats(stats(rows.filter((r) => r.markSent != null && r.committedWire != null).map((r) => r.committedWire - r.markSent))),
      floorSync: roundStats(stats(floor.sync)),
      floorMark: roundStats(stats(floor.mark)),
      store: {
        edits: storeRows.length,
        saveIntervalMs: SAVE_INTERVAL_MS,
        committedWire: roundStats(stats(col(storeRows, 'committedWire'))),
        savedWire: roundStats(stats(col(storeRows, 'savedWire'))),
        store: roundStats(stats(col(storeRows, 'store'))),
        storeMinusInterval: roundStats(stats(col(storeRows, 'store').map((x) => x - SAVE_INTERVAL_MS))),
        saveMs: roundStats(stats(col(storeRows, 'saveMs'))),
        savesPerEdit: storeRows.map((r) => r.saves)
      },
      samples: {
        relayRows: rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'number' && k !== 'i' && k !== 'mark' ? r3(v) : v]))),
        floorSync: floor.sync.map(r3),
        floorMark: floor.mark.map(r3),
        storeRows: storeRows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'number' && k !== 'i' && k !== 'mark' && k !== 'saves' ? r3(v) : v])))
      }
    }
    // Ratios to the floor (p50 to p50, p90 to p90, p99 to p99).
    L.ratio = {}
    for (const [k, f] of [['relayToSync', 'floorSync'], ['relayToMark', 'floorMark'], ['committedToSync', 'floorSync'], ['committedToMark', 'floorMark'], ['markToCommittedToMark', 'floorMark']]) {
      const a = k.startsWith('relay') ? L.relay : k.startsWith('markTo') ? L.markToCommitted : L.committedWire
      L.ratio[k] = { p50: r3(a.p50 / L[f].p50), p90: r3(a.p90 / L[f].p90), p99: r3(a.p99 / L[f].p99) }
    }
    L.withinOneRoundTrip = {
      // "the relay event comes within one round trip of the commit": relay event minus the
      // Committed frame's arrival (what the client adds after the relay answered) and
      // Committed minus the floor's mark round trip (what the log commit adds on the relay).
      relayAfterCommitted: roundStats(stats(rows.filter((r) => r.relay != null && r.committedWire != null).map((r) => r.relay - r.committedWire))),
      markToCommittedMinusFloorMarkP50: r3(L.markToCommitted.p50 - L.floorMark.p50)
    }
    out.latency[mode] = L
    console.log(`\n--log-sync ${mode}: ${rows.length} edits, each waiting for its relay event (Chromium ${out.chromium})`)
    console.log(`  edit -> browser event        ${fmt(L.browser)}`)
    console.log(`  edit -> update frame sent    ${fmt(L.updateSent)}`)
    console.log(`  edit -> mark sent            ${fmt(L.markSent)}`)
    console.log(`  edit -> Committed on socket  ${fmt(L.committedWire)}`)
    console.log(`  edit -> relay event          ${fmt(L.relay)}   (Committed arrived before the browser event for ${L.committedBeforeBrowser}/${rows.length} edits)`)
    console.log(`  mark sent -> Committed       ${fmt(L.markToCommitted)}`)
    console.log(`  floor SyncStep1->SyncStep2   ${fmt(L.floorSync)}`)
    console.log(`  floor Mark->Committed (idle) ${fmt(L.floorMark)}`)
    console.log(`  relay event / sync floor     p50 ${L.ratio.relayToSync.p50}  p90 ${L.ratio.relayToSync.p90}  p99 ${L.ratio.relayToSync.p99}`)
    console.log(`  store (${storeRows.length} edits, --save-interval-ms ${SAVE_INTERVAL_MS}): edit -> store ${fmt(L.store.store)}; minus the interval ${fmt(L.store.storeMinusInterval)}; the save itself (relay /metrics) ${fmt(L.store.saveMs)}`)
  }
} finally {
  await context.close()
  rmSync(profile, { recursive: true, force: true })
}

// ---- 2. bytes, in Node ----
await import('fake-indexeddb/auto')
const Y = await import('yjs')
const { WebsocketProvider } = await import('y-websocket')
const { default: WebSocket } = await import('ws')
const { YKeep } = await import('../../pkg/ykeep.js')

const trace = loadTrace('automerge-paper') ?? syntheticTrace(TRACE_EDITS)
const traceNote = trace.end === null
  ? `${trace.name}: automerge-paper.json.gz not found in YKEEP_BENCH_DATA, a seeded synthetic typing stream instead`
  : 'automerge-paper by Martin Kleppmann (josephg/editing-traces, from automerge/automerge-perf), CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/)'
const txns = trace.txns.slice(0, TRACE_EDITS)
console.log(`\nbytes: ${txns.length} edits of ${trace.name}${trace.end === null ? ' (SYNTHETIC: the trace is absent)' : ''}`)

async function until (what, fn, timeoutMs = 30_000) {
  const start = Date.now()
  while (!fn()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}
// WebSocket frame header bytes: client frames are masked (+4).
const wsHeader = (len, client) => (len <= 125 ? 2 : len <= 65535 ? 4 : 10) + (client ? 4 : 0)

const BYTES_SAVE_INTERVAL_MS = 1000
const bytesRelay = await startRelay(['--save-interval-ms', String(BYTES_SAVE_INTERVAL_MS)])
out.bytes.relayArgv = bytesRelay.argv
try {
  for (const pace of ['paced', 'burst', 'flood']) {
    const room = `bytes-${pace}`
    const doc = new Y.Doc()
    doc.clientID = 3_000_000_001 // the same (5-byte varuint, as most random ids) for every pacing
    const keep = new YKeep(doc, { kind: 'document', id: room, relayUrl: bytesRelay.url, dbName: `bytes-${pace}-${process.pid}` })
    await keep.whenSynced
    const provider = new WebsocketProvider(bytesRelay.url.replace(/^http/, 'ws') + '/rooms/document', room, doc, { WebSocketPolyfill: WebSocket, disableBc: true })
    await until('synced', () => provider.synced)
    const c = { markOut: 0, markOutBytes: 0, otherYkeepOut: 0, committedIn: 0, committedInBytes: 0, savedIn: 0, savedInBytes: 0, otherYkeepIn: 0, updateOut: 0, updateFrameBytes: 0, awarenessOutBytes: 0, awarenessInBytes: 0, syncInBytes: 0, wsHeaderYkeep: 0, wsHeaderUpdates: 0 }
    let counting = false
    const ws = provider.ws
    const send = ws.send.bind(ws)
    ws.send = (data, ...rest) => {
      const b = data instanceof Uint8Array ? data : new Uint8Array(data)
      if (counting) {
        if (b[0] === 107 && b[1] === 1) { c.markOut++; c.markOutBytes += b.length; c.wsHeaderYkeep += wsHeader(b.length, true) } else if (b[0] === 107) c.otherYkeepOut += b.length
        else if (b[0] === 0 && b[1] === 2) { c.updateOut++; c.updateFrameBytes += b.length; c.wsHeaderUpdates += wsHeader(b.length, true) } else if (b[0] === 1) c.awarenessOutBytes += b.length
      }
      return send(data, ...rest)
    }
    ws.addEventListener('message', (e) => {
      if (!counting) return
      const b = new Uint8Array(e.data)
      if (b[0] === 107 && b[1] === 3) { c.committedIn++; c.committedInBytes += b.length; c.wsHeaderYkeep += wsHeader(b.length, false) } else if (b[0] === 107 && b[1] === 4) { c.savedIn++; c.savedInBytes += b.length; c.wsHeaderYkeep += wsHeader(b.length, false) } else if (b[0] === 107) c.otherYkeepIn += b.length
      else if (b[0] === 1) c.awarenessInBytes += b.length
      else c.syncInBytes += b.length
    })
    keep.attach(provider)
    await until('Welcome', () => keep.core.acknowledged)
    await keep.whenSaved('relay')
    const updates = []
    doc.on('update', (u, origin) => { if (origin !== provider && origin !== keep) updates.push(u.length) })
    const text = doc.getText('t')
    const apply = (patches) => doc.transact(() => {
      for (const [pos, d, ins] of patches) {
        if (d > 0) text.delete(pos, d)
        if (ins) text.insert(pos, ins)
      }
    })
    counting = true
    const t0 = Date.now()
    if (pace === 'paced') {
      for (const p of txns) { apply(p); await keep.whenSaved('relay') }
    } else if (pace === 'burst') {
      for (let i = 0; i < txns.length; i += BURST) {
        for (const p of txns.slice(i, i + BURST)) apply(p)
        await keep.whenSaved('relay')
      }
    } else {
      for (const p of txns) { apply(p); await null } // a mark per edit (microtask), no waiting
      await keep.whenSaved('relay')
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
    counting = false
    const ms = Date.now() - t0
    if (updates.length !== txns.length) throw new Error(`${pace}: ${updates.length} updates for ${txns.length} edits`)
    if (c.updateOut !== txns.length) throw new Error(`${pace}: ${c.updateOut} update frames sent for ${txns.length} edits`)
    const ykeepBytes = c.markOutBytes + c.committedInBytes + c.savedInBytes + c.otherYkeepOut + c.otherYkeepIn
    const updBytes = updates.reduce((a, b) => a + b, 0)
    const commits = c.committedIn
    const r = {
      edits: txns.length,
      editsPerBatch: pace === 'burst' ? BURST : 1,
      ms,
      counts: c,
      ykeepBytes,
      updatePayloadBytes: updBytes,
      updatePayloadPerEdit: { mean: r3(updBytes / updates.length), p50: q(updates, 0.5), p90: q(updates, 0.9), p99: q(updates, 0.99), max: q(updates, 1) },
      updateFramePerEdit: r3(c.updateFrameBytes / c.updateOut),
      commits,
      ykeepPerCommit: r3(ykeepBytes / commits),
      ykeepPerEdit: r3(ykeepBytes / txns.length),
      updatePayloadPerCommit: r3(updBytes / commits),
      ratioYkeepToUpdatePayload: r3(ykeepBytes / updBytes),
      ratioYkeepToUpdateFrames: r3(ykeepBytes / c.updateFrameBytes),
      withWsHeaders: {
        ykeep: ykeepBytes + c.wsHeaderYkeep,
        updates: c.updateFrameBytes + c.wsHeaderUpdates,
        ratio: r3((ykeepBytes + c.wsHeaderYkeep) / (c.updateFrameBytes + c.wsHeaderUpdates))
      },
      text: text.toString().length
    }
    out.bytes[pace] = r
    console.log(`  ${pace.padEnd(6)} ${r.edits} edits in ${ms} ms: ${c.markOut} marks (${c.markOutBytes} B), ${c.committedIn} Committed (${c.committedInBytes} B), ${c.savedIn} Saved (${c.savedInBytes} B); ` +
      `ykeep ${r.ykeepPerCommit} B/commit, ${r.ykeepPerEdit} B/edit; update ${r.updatePayloadPerEdit.mean} B/edit mean, ${r.updatePayloadPerEdit.p50} median; ratio ykeep/update ${r.ratioYkeepToUpdatePayload}`)
    provider.destroy()
    await keep.destroy()
  }
} finally {
  await bytesRelay.stop()
}
out.bytes.trace = trace.name
out.bytes.synthetic = trace.end === null
out.trace = traceNote
out.seconds = Math.round((Date.now() - t00) / 100) / 10
out.machine = { cpus: cpus().length, model: cpus()[0]?.model, loadavgBefore: loadBefore.map((x) => +x.toFixed(2)), loadavgAfter: loadavg().map((x) => +x.toFixed(2)) }
try {
  out.commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim()
  out.dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'js', 'crates', 'bench/acks'], { cwd: root, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim() !== ''
} catch { /* not a git checkout */ }
rmSync(work, { recursive: true, force: true })
writeFileSync(join(results, 'acks.json'), JSON.stringify(out, null, 2) + '\n')
writeFileSync(join(results, 'acks.md'), markdown(out))
console.log(`\nwrote bench/results/acks.json, bench/results/acks.md (${out.seconds} s)`)
process.exit(0)

function markdown (o) {
  const ms = (x) => (x == null ? '–' : x.toFixed(2))
  const x2 = (x) => (x == null ? '–' : x.toFixed(2))
  const row = (name, s) => `| ${name} | ${ms(s.p50)} | ${ms(s.p90)} | ${ms(s.p99)} | ${ms(s.mean)} | ${s.n} |`
  const lines = [
    '# Acknowledgements by tier (`scripts/bench acks`)',
    '',
    `Written by \`node bench/acks/run.mjs\` (\`scripts/bench acks\`) on ${o.date.slice(0, 16).replace('T', ' ')}Z${o.commit ? ` at ${o.commit}${o.dirty ? ' (with uncommitted changes)' : ''}` : ''}; ` +
      `headless Chromium ${o.chromium}, ${o.machine.cpus} cores (${o.machine.model}), load average ${o.machine.loadavgBefore[0]} before and ${o.machine.loadavgAfter[0]} after; the run took ${o.seconds} s.`,
    '',
    '## Summary',
    '',
    ...Object.entries(o.latency).map(([mode, L]) => `- \`--log-sync ${mode}\`${mode === 'normal' ? ' (demo default, no fsync per commit)' : ' (fsync per commit)'}: edit → \`relay\` event p50 ${ms(L.relay.p50)} / p90 ${ms(L.relay.p90)} / p99 ${ms(L.relay.p99)} ms, ` +
      `${x2(L.ratio.relayToSync.p50)}× / ${x2(L.ratio.relayToSync.p90)}× / ${x2(L.ratio.relayToSync.p99)}× the SyncStep round trip (${ms(L.floorSync.p50)} / ${ms(L.floorSync.p90)} / ${ms(L.floorSync.p99)} ms); ` +
      `mark → Committed ${ms(L.markToCommitted.p50)} ms p50 = ${x2(L.ratio.markToCommittedToMark.p50)}× the idle mark round trip; the \`relay\` event waited for the IndexedDB write (\`browser\`) in ${L.committedBeforeBrowser} of ${L.relay.n} edits; ` +
      `edit → \`store\` p50 ${ms(L.store.store.p50)} ms with a ${L.store.saveIntervalMs} ms save interval (${ms(L.store.storeMinusInterval.p50)} ms beyond it; the save itself ${ms(L.store.saveMs.p50)} ms).`),
    `- Bytes (${o.bytes.paced.edits} edits of ${o.bytes.synthetic ? 'a SYNTHETIC stream' : 'automerge-paper'}, update payload ${o.bytes.paced.updatePayloadPerEdit.mean} B mean / ${o.bytes.paced.updatePayloadPerEdit.p50} B median per edit): ` +
      `one commit per edit ${o.bytes.paced.ykeepPerCommit} B of ykeep messages per commit (${o.bytes.paced.ratioYkeepToUpdatePayload}× the update bytes); ` +
      `bursts of ${o.bytes.burst.editsPerBatch} ${o.bytes.burst.ykeepPerCommit} B per commit, ${o.bytes.burst.ykeepPerEdit} B per edit (${o.bytes.burst.ratioYkeepToUpdatePayload}×); ` +
      `flood ${o.bytes.flood.ykeepPerCommit} B per commit, ${o.bytes.flood.ykeepPerEdit} B per edit (${o.bytes.flood.ratioYkeepToUpdatePayload}×).`,
    '',
    '## Method',
    '',
    '- **Setting (the demo\'s):** a release `ykeep-relay serve --demo` (relay + embedded SQLite store in one process) on 127.0.0.1 with a fresh temp data dir, serving the page itself (`--static-dir`, so page and WebSocket share the demo\'s origin). The page (`bench/acks/page.js`, bundled with esbuild) holds a `Y.Doc`, the built `pkg/` client (`new YKeep(doc, {relayUrl: origin})`, IndexedDB cache) and a y-websocket provider attached with `keep.attach(provider)` (in-band `OptIn`).',
    `- **Relay latency:** ${o.options.WARMUP} warm-up edits, then ${o.options.EDITS} edits in ${o.options.BLOCKS} blocks; each edit is one character appended in one transaction, and the next starts only once this one's \`relay\` (and \`browser\`) \`durability\` events were heard. Times from just before the edit (\`performance.now()\` in the page): the \`browser\` and \`relay\` events, the mark leaving \`ws.send\`, and the \`Committed\` frame arriving on the socket (a listener beside the provider's, same task). Chromium's \`performance.now()\` is coarsened to 0.1 ms here (the page is not cross-origin isolated), so sub-millisecond figures are ±0.1 ms. Save settings are the demo's (\`--save-interval-ms 30000\`), so no save runs during these edits.`,
    `- **Floor, same run:** between the edit blocks, the page opens a fresh browser WebSocket of the same kind to an empty room of the same relay (\`?ykeep=acks\`) and times ${o.options.FLOOR} round trips of each: a raw y-sync SyncStep1 (empty state vector) → SyncStep2, and a \`Mark\` with nothing to commit → its \`Committed\` (the room answers it in the same step, appending nothing to the log). Ratios are p50/p50, p90/p90, p99/p99.`,
    `- **Store latency:** a second relay process with \`--save-interval-ms ${o.options.SAVE_INTERVAL_MS}\` (other flags as above; \`--save-debounce-ms\` stays 7000, it only applies after the last client leaves). 2 warm-up edits, then ${o.options.STORE_EDITS} edits, each waiting for its \`store\` event. A changed room saves ${o.options.SAVE_INTERVAL_MS} ms after its first unsaved edit, so that is a floor; the save's own time is read from the relay's \`/metrics\` (\`save_seconds_sum_micros\` / \`save_seconds_count\` deltas around each edit; the relay records whole milliseconds: encode + HTTP POST to the embedded store + blob fsync + SQLite commit). What lies between the end of the save and the \`Saved\` frame (the room records the save in its local log, and releases \`Saved\` once that record is durable) is not timed separately.`,
    `- The disk under the data dirs: write 4 KiB + \`fsync\`, ${o.fsync4k.n} times, from Node: p50 ${ms(o.fsync4k.p50)}, p90 ${ms(o.fsync4k.p90)}, p99 ${ms(o.fsync4k.p99)} ms (a VM disk; a laptop SSD or a cloud volume differs).`,
    '- Both relay processes run once with `--log-sync normal` (the demo\'s default: SQLite WAL, `synchronous = NORMAL`, the commit is written to the WAL but **not fsynced**: it survives kill -9, not a power loss) and once with `--log-sync full` (**fsync of the WAL per commit**).',
    `- **Bytes:** in Node (y-websocket provider + \`pkg/\` YKeep over fake-indexeddb, as \`tests/js/acks.test.mjs\`), against a third \`serve --demo\` process (demo defaults but \`--save-interval-ms 1000\`, so that some \`Saved\` messages fall inside the replay; with the demo's 30 s there is one per 30 s of editing). The first ${o.bytes.paced.edits} transactions of ${o.bytes.synthetic ? '**a seeded synthetic typing stream (the trace was not found)**' : 'the automerge-paper trace'} are replayed, each as one Yjs transaction (one update), in a fresh room per pacing: **paced** (each edit waits for its relay acknowledgement: one mark and one Committed per edit, the typing case), **burst** (${o.options.BURST} edits in one synchronous run, one mark for them, then wait), **flood** (every edit yields one microtask, so each gets its own mark, and nothing waits: the relay batches). Every frame the provider's socket sends or receives is counted by its first byte (107 = ykeep, \`[0, 2]\` = y-sync update); the connection's OptIn/Welcome are left out (once per connection, 2 bytes each). "ykeep bytes" = marks sent + Committed + Saved received (message payloads; WebSocket frame headers are shown separately).`,
    ''
  ]
  for (const [mode, L] of Object.entries(o.latency)) {
    lines.push(`## Latency, \`--log-sync ${mode}\`${mode === 'normal' ? ' (demo default)' : ''}`, '',
      `\`${L.relayArgv.join(' ')}\``, '',
      '| ms from the edit | p50 | p90 | p99 | mean | n |', '|---|---:|---:|---:|---:|---:|',
      row('the edit itself (Yjs transaction + handlers)', L.edit),
      row('`browser` event (IndexedDB write)', L.browser),
      row('update frame leaves `ws.send`', L.updateSent),
      row('mark leaves `ws.send`', L.markSent),
      row('`Committed` arrives on the socket', L.committedWire),
      row('**`relay` event**', L.relay),
      row('mark sent → its `Committed` arrives (per edit)', L.markToCommitted),
      row('floor: SyncStep1 → SyncStep2 round trip', L.floorSync),
      row('floor: Mark → Committed, nothing to commit', L.floorMark),
      '',
      '| ratio | p50 | p90 | p99 |', '|---|---:|---:|---:|',
      ...[['`relay` event ÷ SyncStep round trip', 'relayToSync'], ['`relay` event ÷ idle Mark round trip', 'relayToMark'], ['Committed on the socket ÷ SyncStep round trip', 'committedToSync'], ['mark sent → Committed ÷ idle Mark round trip', 'markToCommittedToMark']]
        .map(([label, k]) => `| ${label} | ${x2(L.ratio[k].p50)} | ${x2(L.ratio[k].p90)} | ${x2(L.ratio[k].p99)} |`),
      '',
      `The \`Committed\` frame arrived before the \`browser\` event for ${L.committedBeforeBrowser} of ${L.relay.n} edits: the \`relay\` event reports the furthest tier with every tier before it, so it waits for the IndexedDB write. ` +
      `\`relay\` event after the Committed frame (client-side handling, and waiting for the IndexedDB write when it is slower): p50 ${ms(L.withinOneRoundTrip.relayAfterCommitted.p50)}, p90 ${ms(L.withinOneRoundTrip.relayAfterCommitted.p90)}, p99 ${ms(L.withinOneRoundTrip.relayAfterCommitted.p99)} ms. ` +
        `Mark sent → Committed minus the idle Mark round trip, at p50 (what the update's check + apply + log append + commit${mode === 'full' ? ' + fsync' : ''} add on the relay, over one round trip): ${ms(L.withinOneRoundTrip.markToCommittedMinusFloorMarkP50)} ms.`,
      '',
      `Store (\`${L.storeArgv.join(' ')}\`, ${L.store.edits} edits):`, '',
      '| ms | p50 | p90 | p99 | mean | n |', '|---|---:|---:|---:|---:|---:|',
      row('edit → `Committed` on the socket', L.store.committedWire),
      row('edit → `Saved` on the socket', L.store.savedWire),
      row('**edit → `store` event**', L.store.store),
      row(`edit → \`store\` event − the ${L.store.saveIntervalMs} ms save interval`, L.store.storeMinusInterval),
      row('the save itself (relay `/metrics`)', L.store.saveMs),
      '')
  }
  lines.push('## Bytes the extension adds', '',
    `${o.bytes.synthetic ? '**Synthetic stream (trace absent).** ' : ''}\`${o.bytes.relayArgv.join(' ')}\`; ${o.bytes.paced.edits} edits per pacing.`, '',
    '| pacing | edits | marks sent (B) | Committed recv (B) | Saved recv (B) | ykeep B / commit | ykeep B / edit | update B / edit, mean | median | p99 | update B / commit | ykeep ÷ update payload | ykeep ÷ update frames | same, with WS frame headers |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
  for (const pace of ['paced', 'burst', 'flood']) {
    const r = o.bytes[pace]
    const c = r.counts
    lines.push(`| ${pace}${pace === 'burst' ? ` (${r.editsPerBatch}/batch)` : ''} | ${r.edits} | ${c.markOut} (${c.markOutBytes}) | ${c.committedIn} (${c.committedInBytes}) | ${c.savedIn} (${c.savedInBytes}) | ${r.ykeepPerCommit} | ${r.ykeepPerEdit} | ${r.updatePayloadPerEdit.mean} | ${r.updatePayloadPerEdit.p50} | ${r.updatePayloadPerEdit.p99} | ${r.updatePayloadPerCommit} | ${r.ratioYkeepToUpdatePayload} | ${r.ratioYkeepToUpdateFrames} | ${r.withWsHeaders.ratio} |`)
  }
  lines.push('', 'A commit here = one `Committed` received. Update payload = the Yjs v1 update (`doc.on(\'update\')`); an update frame adds the y-sync header `[0, 2, varuint len]`. WebSocket headers: 2 bytes per server frame, 6 per (masked) client frame up to 125 bytes. Each mark and acknowledgement is its own WebSocket message (and, when nothing else is queued, its own TCP segment).', '',
    'All samples: `acks.json`.', '', `Trace: ${o.trace}`, '')
  return lines.join('\n')
}
