// Repeat page open benchmark (issue 16, target 6): `scripts/bench repeat-open`.
// A warm IndexedDB cache and a live relay: what a page downloads and how long its load takes
// when nothing changed since its last visit, for the automerge-paper document at 1x and 10x.
//  - The stack: a release `ykeep-relay serve --demo` (relay + embedded SQLite store in one
//    process, fresh temp data dir) serving the page (--static-dir), so the page, /state and the
//    store share one origin. A Node y-websocket provider seeds the room and keeps it live; the
//    store holds the same state (a short save interval, then checked).
//  - The page (headless Chromium, playwright-core): a first visit fills and compacts the cache;
//    then each timed repeat visit is a fresh Y.Doc + YKeep with relay and store URLs and the
//    demo token. Bytes over the wire are Chromium's own counts per request (playwright's
//    request.sizes(): request headers + response headers + response body) for /state and
//    /snapshots, summed per visit.
//  - Before: the two requests a client without conditional loads sends on a repeat visit (the
//    previous release: /state?sv=<the cache's state vector> and the store's snapshot, no
//    If-None-Match), sent by the same page and counted the same way. With --before-pkg DIR (a
//    pkg/ built from an earlier commit, e.g. by `scripts/bench repeat-open --before REV`), that
//    build's repeat visit is timed too, interleaved, on its own database.
//  - The floor, same page, interleaved: a raw IndexedDB open + read of the state as one value,
//    then Y.applyUpdate into a fresh doc (as bench/client-load).
// Options (env or --name value): RUNS (9), SIZES (1x,10x), BEFORE_PKG (none).
// Trace: YKEEP_BENCH_DATA (default ../shared/bench-data) / automerge-paper.json.gz (CC BY 4.0);
// without it, a seeded synthetic document of the same shape (clearly labelled).
// Writes bench/results/repeat-open.json and repeat-open.md; the page bundles, browser profile
// and data dirs live under bench/results/tmp/repeat-open/ (git-ignored).
import { spawn, execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs'
import { gunzipSync } from 'node:zlib'
import { cpus, loadavg } from 'node:os'
import { join, dirname, resolve as resolvePath } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import * as Y from 'yjs'
import WebSocket from 'ws'
import { WebsocketProvider } from 'y-websocket'
import { build } from 'esbuild'
import { launchChromium } from '../chromium.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..', '..')
const results = join(root, 'bench', 'results')
const work = join(results, 'tmp', 'repeat-open')
const relayBin = process.env.YKEEP_RELAY_BIN || join(root, 'target', 'release', 'ykeep-relay')
const dataDir = process.env.YKEEP_BENCH_DATA || join(root, '..', 'shared', 'bench-data')

const args = process.argv.slice(2)
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name.toLowerCase().replace(/_/g, '-')}`)
  if (i >= 0) return args[i + 1]
  return process.env[name] ?? dflt
}
const RUNS = Number(opt('RUNS', 9))
const SIZES = String(opt('SIZES', '1x,10x')).split(',').filter(Boolean)
const BEFORE_PKG = opt('BEFORE_PKG', '') ? resolvePath(opt('BEFORE_PKG', '')) : null

if (!existsSync(relayBin)) { console.error(`${relayBin} not built: cargo build --release -p ykeep-relay`); process.exit(1) }
if (!existsSync(join(root, 'pkg', 'ykeep_wasm_bg.wasm'))) { console.error('pkg/ not built: run scripts/build-wasm first'); process.exit(1) }
if (BEFORE_PKG && !existsSync(join(BEFORE_PKG, 'ykeep_wasm_bg.wasm'))) { console.error(`--before-pkg ${BEFORE_PKG}: no ykeep_wasm_bg.wasm there`); process.exit(1) }
mkdirSync(work, { recursive: true })
const loadBefore = loadavg()

// ---- documents: the trace replayed 1 and 10 times (cached), or a synthetic stand-in ----
const tracePath = join(dataDir, 'automerge-paper.json.gz')
const haveTrace = existsSync(tracePath)
if (!haveTrace) console.log(`NOTE: ${tracePath} not found (set YKEEP_BENCH_DATA): using a seeded synthetic document instead`)
function patchesOf () {
  if (haveTrace) return JSON.parse(gunzipSync(readFileSync(tracePath))).txns.flatMap((t) => t.patches)
  let seed = 7
  const rand = (n) => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n }
  const patches = []
  let len = 0
  for (let i = 0; i < 260_000; i++) {
    if (len > 10 && rand(4) === 0) { patches.push([rand(len), 1, '']); len-- } else { patches.push([rand(len + 1), 0, 'abcdefghij'[rand(10)]]); len++ }
  }
  return patches
}
let patches = null
function stateOf (times) {
  const file = join(work, `${haveTrace ? 'automerge-paper' : 'synthetic'}-${times}.bin`)
  if (existsSync(file)) return readFileSync(file)
  patches ??= patchesOf()
  const doc = new Y.Doc()
  const text = doc.getText('text')
  for (let r = 0; r < times; r++) {
    const offset = text.length
    for (const [pos, del, ins] of patches) {
      doc.transact(() => {
        if (del > 0) text.delete(offset + pos, del)
        if (ins) text.insert(offset + pos, ins)
      })
    }
  }
  const bytes = Buffer.from(Y.encodeStateAsUpdate(doc))
  writeFileSync(file, bytes)
  return bytes
}

// ---- the stack ----
function startRelay (staticDir) {
  const dir = mkdtempSync(join(work, 'data-'))
  const argv = ['serve', '--demo', '--listen', '127.0.0.1:0', '--data-dir', dir, '--static-dir', staticDir, '--save-interval-ms', '200']
  const child = spawn(relayBin, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, YKEEP_LOG: process.env.YKEEP_LOG || 'warn' } })
  let stderr = ''
  child.stderr.on('data', (d) => { stderr += d })
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const m = line.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/)
      if (!m) return
      resolve({
        url: m[1],
        stop: async () => {
          child.kill('SIGTERM')
          await new Promise((resolve) => { if (child.exitCode !== null) resolve(); else child.once('exit', resolve) })
          rmSync(dir, { recursive: true, force: true })
          const odd = stderr.split('\n').filter((l) => l.trim() && !/DEMO MODE|DEV MODE/.test(l))
          if (odd.length) console.log(`relay stderr:\n${odd.join('\n').slice(0, 2000)}`)
        }
      })
    })
    child.once('exit', (code) => reject(new Error(`relay exited early (${code}): ${stderr}`)))
  })
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
async function until (what, fn, timeoutMs = 60_000) {
  const start = Date.now()
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await sleep(100)
  }
}

// ---- page bundles: one per client build, each in its own directory with its wasm ----
async function bundle (name, pkgDir) {
  const dir = join(pageRoot, name)
  mkdirSync(dir, { recursive: true })
  await build({
    entryPoints: [join(here, 'page.js')], bundle: true, format: 'esm', target: 'es2022', outfile: join(dir, 'bundle.js'),
    alias: { 'ykeep-client': join(pkgDir, 'ykeep.js') }, nodePaths: [join(root, 'node_modules')], logLevel: 'warning'
  })
  copyFileSync(join(pkgDir, 'ykeep_wasm_bg.wasm'), join(dir, 'ykeep_wasm_bg.wasm'))
  writeFileSync(join(dir, 'index.html'), `<!doctype html><meta charset=utf-8><title>ykeep repeat-open (${name})</title><script type=module src=bundle.js></script>`)
}
const pageRoot = join(work, 'page')
rmSync(pageRoot, { recursive: true, force: true })
await bundle('after', join(root, 'pkg'))
if (BEFORE_PKG) await bundle('before', BEFORE_PKG)

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2 }
const r1 = (x) => Math.round(x * 10) / 10
const out = { date: new Date().toISOString(), runs: RUNS, trace: haveTrace ? 'automerge-paper' : 'synthetic (seeded)', beforeBuild: BEFORE_PKG ? 'timed' : 'bytes only', sizes: {} }

const relay = await startRelay(pageRoot)
const profile = mkdtempSync(join(work, 'profile-'))
const context = await launchChromium(profile)
try {
  // Bytes over the wire per request, as Chromium counts them, for this room's /state and store.
  let counting = null
  const wire = []
  context.on('requestfinished', (req) => {
    if (!counting) return
    const url = req.url()
    const kind = url.includes(`/rooms/document/${counting}/state`) ? 'relay' : url.includes(`/snapshots/document/${counting}`) ? 'store' : null
    if (!kind) return
    wire.push(req.sizes().then((s) => ({ kind, method: req.method(), bytes: s.requestHeadersSize + s.responseHeadersSize + s.responseBodySize })))
  })
  const measure = async (room, fn) => {
    wire.length = 0
    counting = room
    const r = await fn()
    await sleep(50) // requestfinished follows the body's end
    counting = null
    const rows = await Promise.all(wire)
    const sum = (k) => rows.filter((x) => x.kind === k).reduce((n, x) => n + x.bytes, 0)
    return { r, relay: sum('relay'), store: sum('store'), total: sum('relay') + sum('store'), requests: rows.length }
  }
  const openPage = async (name) => {
    const page = await context.newPage()
    page.on('pageerror', (e) => console.error(`page error (${name}):`, e))
    await page.goto(`${relay.url}/${name}/`)
    await page.waitForFunction(() => window.benchReady === true)
    return page
  }
  const after = await openPage('after')
  const before = BEFORE_PKG ? await openPage('before') : null
  const token = await after.evaluate(() => window.bench.token())

  for (const size of SIZES) {
    const times = Number(size.replace(/x$/, ''))
    const state = stateOf(times)
    const room = `repeat-${size}-${process.pid}`
    // Seed: a Node provider sends the state and keeps the room live; the store gets it too.
    const holderDoc = new Y.Doc()
    Y.applyUpdate(holderDoc, state)
    const holder = new WebsocketProvider(relay.url.replace(/^http/, 'ws') + '/rooms/document', room, holderDoc, { WebSocketPolyfill: WebSocket, disableBc: true })
    await until('the holder to sync', () => holder.synced)
    const chars = holderDoc.getText('text').length
    await until('the store to hold the state', async () => {
      const r = await fetch(`${relay.url}/rooms/document/${room}/durable`)
      const d = r.ok ? await r.json() : null
      return d && d.store && d.store === d.relay
    })
    const stored = await after.evaluate(async ([room, tok]) => Array.from(await window.bench.stateOf(room, tok)), [room, token])
    const storedState = Uint8Array.from(stored)
    // First visits (not timed): each client build fills and compacts its own cache.
    const first = await measure(room, () => after.evaluate(([room, tok]) => window.bench.firstVisit(room, `after-${room}`, tok), [room, token]))
    if (before) await before.evaluate(([room, tok]) => window.bench.firstVisit(room, `before-${room}`, tok), [room, token])
    await after.evaluate(([db, bytes]) => window.bench.seedRaw(db, Uint8Array.from(bytes)), [`floor-${room}`, stored])
    const sv = await after.evaluate((bytes) => window.bench.stateVectorOf(Uint8Array.from(bytes)), stored)

    const rows = { after: [], afterBytes: [], unconditionalBytes: [], before: [], floor: [], read: [], apply: [] }
    let statuses = null
    const order = [['after'], ['floor'], ...(before ? [['before']] : [])]
    for (let i = -1; i < RUNS; i++) {
      for (let k = 0; k < ((i + 3) % order.length); k++) order.push(order.shift())
      for (const [what] of order) {
        await sleep(100)
        if (what === 'after') {
          const m = await measure(room, () => after.evaluate(([room, tok]) => window.bench.repeatVisit(room, `after-${room}`, tok), [room, token]))
          if (m.r.len !== chars) throw new Error(`repeat visit loaded ${m.r.len} chars, want ${chars}`)
          statuses = m.r.report.sources.map((s) => `${s.source} ${s.status}`).join(', ')
          if (i >= 0) { rows.after.push(m.r.ms); rows.afterBytes.push(m.total) }
        } else if (what === 'before') {
          const r = await before.evaluate(([room, tok]) => window.bench.repeatVisit(room, `before-${room}`, tok), [room, token])
          if (r.len !== chars) throw new Error(`before build loaded ${r.len} chars, want ${chars}`)
          if (i >= 0) rows.before.push(r.ms)
        } else {
          const r = await after.evaluate((db) => window.bench.loadRaw(db), `floor-${room}`)
          if (i >= 0) { rows.floor.push(r.ms); rows.read.push(r.readMs); rows.apply.push(r.applyMs) }
        }
      }
      // What the previous release downloads on the same repeat visit (no If-None-Match).
      const u = await measure(room, () => after.evaluate(([room, tok, sv]) => window.bench.unconditional(room, tok, sv), [room, token, sv]))
      if (i >= 0) rows.unconditionalBytes.push(u.total)
    }
    holder.destroy()
    const m = Object.fromEntries(Object.entries(rows).filter(([, v]) => v.length).map(([k, v]) => [k, median(v)]))
    const res = {
      stateBytes: storedState.length, chars, statuses, firstVisitBytes: first.total,
      wireBytes: { before: m.unconditionalBytes, after: m.afterBytes, afterShareOfState: m.afterBytes / storedState.length },
      medianMs: { after: m.after, before: m.before ?? null, floor: m.floor, read: m.read, apply: m.apply },
      ratios: { afterToFloor: m.after / m.floor, beforeToFloor: m.before != null ? m.before / m.floor : null },
      samples: rows
    }
    out.sizes[size] = res
    console.log(`\nrepeat open, ${out.trace} ${size} (${storedState.length} bytes state), median of ${RUNS} interleaved runs; sources: ${statuses}`)
    console.log(`  bytes over the wire: before ${m.unconditionalBytes} (${(100 * m.unconditionalBytes / storedState.length).toFixed(1)} % of the state), after ${m.afterBytes} (${(100 * res.wireBytes.afterShareOfState).toFixed(2)} %)`)
    console.log(`  load: after ${r1(m.after)} ms (${res.ratios.afterToFloor.toFixed(2)}x floor)${m.before != null ? `, before ${r1(m.before)} ms (${res.ratios.beforeToFloor.toFixed(2)}x floor)` : ''}, floor ${r1(m.floor)} ms (read ${r1(m.read)} + apply ${r1(m.apply)})`)
  }
} finally {
  await context.close()
  await relay.stop()
  rmSync(profile, { recursive: true, force: true })
}

out.machine = { cpus: cpus().length, loadavgBefore: loadBefore.map((x) => +x.toFixed(2)), loadavgAfter: loadavg().map((x) => +x.toFixed(2)) }
try {
  out.commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim()
  out.dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'crates', 'js', 'bench/repeat-open'], { cwd: root, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim() !== ''
} catch { /* not a git checkout */ }
out.traceCredit = haveTrace ? 'automerge-paper by Martin Kleppmann, from josephg/editing-traces, CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/)' : null
writeFileSync(join(results, 'repeat-open.json'), JSON.stringify(out, null, 2) + '\n')
writeFileSync(join(results, 'repeat-open.md'), markdown(out))
console.log('\nwrote bench/results/repeat-open.json, bench/results/repeat-open.md')

function markdown (o) {
  const n = (x) => Math.round(x).toLocaleString('en-US')
  const ms = (x) => (x == null ? '—' : x.toFixed(1))
  const lines = [
    '# Repeat page open with a warm cache and a live relay (`scripts/bench repeat-open`)',
    '',
    `Written by \`node bench/repeat-open/run.mjs\` on ${o.date.slice(0, 10)}${o.commit ? ` at ${o.commit}${o.dirty ? ' (with uncommitted changes)' : ''}` : ''}: headless Chromium, ${o.machine.cpus} cores, load average ${o.machine.loadavgBefore[0]} before and ${o.machine.loadavgAfter[0]} after; ${o.trace} document; medians of ${o.runs} interleaved runs (one warm-up round not counted).`,
    '',
    'A release `ykeep-relay serve --demo` (relay + embedded store) serves the page; a Node provider keeps the room live, and the store holds the same state. The page\'s first visit fills and compacts its cache; each repeat visit is a fresh `Y.Doc` + `YKeep` with relay and store URLs. **Bytes over the wire** are Chromium\'s own counts (request headers + response headers + response body) of the `/state` and `/snapshots` requests of one visit. **Before** is what the previous release sends on the same visit (`/state?sv=<the cache\'s state vector>` and the store\'s snapshot, no `If-None-Match`), sent from the same page with `cache: \'no-store\'` (that release\'s store sent no `ETag`, so the browser\'s HTTP cache could not revalidate; this build\'s does); **after** is this build, which sends the cache\'s state tag to the relay and the store snapshot it holds to the store, both answering `304`. ' +
      (o.beforeBuild === 'timed' ? 'The before load time is the previous release\'s build (`--before-pkg`), on its own database, interleaved. ' : 'The previous release\'s load time was not measured in this run (no `--before-pkg`). ') +
      'The floor is a raw IndexedDB open + read of the state as one value, then `Y.applyUpdate`, interleaved.',
    '',
    '| size | state bytes | before: bytes over the wire | after: bytes over the wire | after ÷ state | after ms | before ms | floor ms (read + apply) | after ÷ floor | before ÷ floor |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|'
  ]
  for (const [size, r] of Object.entries(o.sizes)) {
    const m = r.medianMs
    lines.push(`| ${size} | ${n(r.stateBytes)} | ${n(r.wireBytes.before)} | ${n(r.wireBytes.after)} | ${(100 * r.wireBytes.afterShareOfState).toFixed(2)} % | ${ms(m.after)} | ${ms(m.before)} | ${ms(m.floor)} (${ms(m.read)} + ${ms(m.apply)}) | ${r.ratios.afterToFloor.toFixed(2)} | ${r.ratios.beforeToFloor == null ? '—' : r.ratios.beforeToFloor.toFixed(2)} |`)
  }
  lines.push('', 'Sources of the last repeat visit: ' + Object.entries(o.sizes).map(([s, r]) => `${s}: ${r.statuses}`).join('; ') + '.', '',
    'All samples: `repeat-open.json`.', '')
  if (o.traceCredit) lines.push(`Trace: ${o.traceCredit}`, '')
  return lines.join('\n')
}
