// Client-load benchmark in headless Chromium (playwright-core driving /usr/bin/chromium):
//  - load time from IndexedDB of the automerge-paper document and of a 10x one (the trace
//    appended 10 times): ykeep vs y-indexeddb vs the floor (raw read of one blob + Y.applyUpdate),
//    medians of interleaved runs;
//  - IndexedDB record bytes (keys + values) after replaying 10,000 edits, ykeep vs y-indexeddb;
//  - the gzipped wasm size.
// Run: scripts/build-wasm && node bench/client-load/run.mjs   (env RUNS, default 9)
// Trace: YKEEP_BENCH_DATA (default ../shared/bench-data) / automerge-paper.json.gz (CC BY 4.0).
// Writes bench/results/client.json (every sample, medians, ratios), client.md (the tables) and
// client-load.svg (the load medians); documents, the page bundle and the browser profile stay
// under bench/results/tmp/ (git-ignored).
import { createServer } from 'node:http'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs'
import { gunzipSync, gzipSync } from 'node:zlib'
import { cpus, loadavg } from 'node:os'
import { execFileSync } from 'node:child_process'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as Y from 'yjs'
import { build } from 'esbuild'
import { launchChromium } from '../chromium.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..', '..')
const dataDir = process.env.YKEEP_BENCH_DATA || join(root, '..', 'shared', 'bench-data')
const tracePath = join(dataDir, 'automerge-paper.json.gz')
if (!existsSync(tracePath)) {
  console.log(`SKIP: ${tracePath} not found (set YKEEP_BENCH_DATA to the directory holding automerge-paper.json.gz)`)
  process.exit(0)
}
if (!existsSync(join(root, 'pkg', 'ykeep_wasm_bg.wasm'))) {
  console.error('pkg/ not built: run scripts/build-wasm first')
  process.exit(1)
}
const RUNS = Number(process.env.RUNS || 9)
const SETTLE_MS = Number(process.env.SETTLE_MS ?? 250)
const results = join(root, 'bench', 'results')
const work = join(results, 'tmp', 'client-load')
mkdirSync(work, { recursive: true })
const loadBefore = loadavg()

// 1. Documents: replay the trace (1x), and 10 times appended (10x). Cached between runs.
const trace = JSON.parse(gunzipSync(readFileSync(tracePath)))
const patches = trace.txns.flatMap((t) => t.patches)
function stateOf (times) {
  const file = join(work, `automerge-paper-${times}x.bin`)
  if (existsSync(file)) return readFileSync(file)
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
  if (text.toString().slice(0, trace.endContent.length) !== trace.endContent) throw new Error('trace replay mismatch')
  const bytes = Buffer.from(Y.encodeStateAsUpdate(doc))
  writeFileSync(file, bytes)
  return bytes
}
console.log('preparing documents (first run replays the trace 11 times; cached afterwards)...')
const blobs = { '1x': stateOf(1), '10x': stateOf(10) }

// 2. The page: bundle page.js (yjs, y-indexeddb, ykeep from pkg/) with esbuild.
const pageDir = join(work, 'page')
mkdirSync(pageDir, { recursive: true })
await build({ entryPoints: [join(here, 'page.js')], bundle: true, format: 'esm', target: 'es2022', outfile: join(pageDir, 'bundle.js'), logLevel: 'warning' })
copyFileSync(join(root, 'pkg', 'ykeep_wasm_bg.wasm'), join(pageDir, 'ykeep_wasm_bg.wasm'))
writeFileSync(join(pageDir, 'index.html'), '<!doctype html><meta charset=utf-8><title>ykeep client-load</title><script type=module src=bundle.js></script>')
const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' }
const server = createServer((req, res) => {
  const url = new URL(req.url, 'http://x')
  if (url.pathname.startsWith('/blob/')) {
    res.writeHead(200, { 'content-type': 'application/octet-stream' })
    return res.end(blobs[url.pathname.slice(6)])
  }
  const file = join(pageDir, url.pathname === '/' ? 'index.html' : url.pathname.slice(1))
  if (!existsSync(file)) { res.writeHead(404); return res.end() }
  res.writeHead(200, { 'content-type': types[file.slice(file.lastIndexOf('.'))] || 'application/octet-stream' })
  res.end(readFileSync(file))
})
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
const base = `http://127.0.0.1:${server.address().port}/`

// 3. Chromium, fresh profile.
const profile = mkdtempSync(join(work, 'profile-'))
const context = await launchChromium(profile)
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2 }
const fmt = (x) => x.toFixed(1)
const ratio = (a, b) => Math.round((a / b) * 1000) / 1000
const out = { runs: RUNS, settleMs: SETTLE_MS, chromium: context.browser()?.version() ?? 'chromium', load: {}, bytes: {} }
try {
  const page = await context.newPage()
  page.on('pageerror', (e) => console.error('page error:', e))
  await page.goto(base)
  await page.waitForFunction(() => window.benchReady === true)
  const browserVersion = await page.evaluate(() => navigator.userAgent)
  out.userAgent = browserVersion

  for (const size of ['1x', '10x']) {
    const want = await page.evaluate(async (size) => { const b = await window.bench.blob(size); window.cur = b; return b.length }, size)
    // read/apply: the floor's two parts. ykeepLoad/ykeepApply: where ykeep's time goes (KeepCore.load,
    // i.e. IndexedDB open + read in wasm + report, then the one Y.applyUpdate), measured on the
    // same database after each timed ykeep load and the same idle wait (the load leaves it unchanged).
    const rows = { ykeep: [], yindexeddb: [], floor: [], read: [], apply: [], ykeepLoad: [], ykeepApply: [] }
    const lens = new Set()
    // One warm-up round (not counted), then RUNS interleaved rounds; each library re-seeded
    // before each timed load (seeding is not timed), rotating which goes first.
    for (let i = -1; i < RUNS; i++) {
      const order = [['ykeep', 'Ykeep'], ['yindexeddb', 'Yidb'], ['floor', 'Raw']]
      for (let k = 0; k < (i + 3) % 3; k++) order.push(order.shift())
      for (const [key, fn] of order) {
        const r = await page.evaluate(async ([fn, db, settle]) => {
          await window.bench[`seed${fn}`](db, window.cur)
          // A repeat visit starts on an idle browser: let the seed's background work (IndexedDB
          // backend writes and cleanup, V8's idle-time GC) finish before the clock starts.
          await new Promise((resolve) => setTimeout(resolve, settle))
          return window.bench[`load${fn}`](db)
        }, [fn, `bench-${key}-${size}`, SETTLE_MS])
        lens.add(r.len)
        if (i < 0) continue
        rows[key].push(r.ms)
        if (key === 'floor') { rows.read.push(r.readMs); rows.apply.push(r.applyMs) }
        if (key === 'ykeep') {
          const p = await page.evaluate(async ([db, settle]) => {
            await new Promise((resolve) => setTimeout(resolve, settle))
            return window.bench.profileYkeep(db)
          }, [`bench-${key}-${size}`, SETTLE_MS])
          rows.ykeepLoad.push(p.loadMs)
          rows.ykeepApply.push(p.applyMs)
        }
      }
    }
    if (lens.size !== 1) throw new Error(`loaded documents differ in length: ${[...lens]}`)
    const m = Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, median(v)]))
    const ratios = { ykeepToFloor: ratio(m.ykeep, m.floor), ykeepToYindexeddb: ratio(m.ykeep, m.yindexeddb) }
    out.load[size] = { stateBytes: want, chars: [...lens][0], medianMs: m, ratios, samples: rows }
    console.log(`\nload from IndexedDB, automerge-paper ${size} (${want} bytes state, ${[...lens][0]} chars), median of ${RUNS} interleaved runs:`)
    console.log(`  ykeep        ${fmt(m.ykeep)} ms   (${(m.ykeep / m.floor).toFixed(2)}x floor, ${(m.ykeep / m.yindexeddb).toFixed(2)}x y-indexeddb)`)
    console.log(`  y-indexeddb  ${fmt(m.yindexeddb)} ms`)
    console.log(`  floor        ${fmt(m.floor)} ms   (raw IndexedDB open+read of one blob ${fmt(m.read)} ms + Y.applyUpdate ${fmt(m.apply)} ms)`)
    console.log(`  ykeep split  KeepCore.load ${fmt(m.ykeepLoad)} ms + Y.applyUpdate ${fmt(m.ykeepApply)} ms`)
  }

  // Bytes after 10,000 single edits.
  const edits = patches.slice(0, 10_000)
  for (const lib of ['ykeep', 'yindexeddb']) {
    const r = await page.evaluate(async ([lib, edits]) => window.bench.replayEdits(lib, `bench-edits-${lib}`, edits), [lib, edits])
    out.bytes[lib] = r
  }
  const snap = out.bytes.ykeep.snapshot
  out.bytes.bound = 2 * snap + 65536
  console.log(`\nIndexedDB record bytes (keys + values) after 10,000 edits (final state ${snap} bytes; bound 2x state + 64 KiB = ${2 * snap + 65536}):`)
  for (const lib of ['ykeep', 'yindexeddb']) {
    const r = out.bytes[lib]
    console.log(`  ${lib.padEnd(11)} ${r.bytes} bytes in ${r.records} records (${(r.bytes / snap).toFixed(2)}x the state)`)
  }
} finally {
  await context.close()
  server.close()
  rmSync(profile, { recursive: true, force: true })
}

const wasm = readFileSync(join(root, 'pkg', 'ykeep_wasm_bg.wasm'))
out.wasm = { raw: wasm.length, gzip9: gzipSync(wasm, { level: 9 }).length }
console.log(`\nwasm: ${out.wasm.raw} bytes raw, ${out.wasm.gzip9} bytes gzip -9 (pkg/ykeep_wasm_bg.wasm)`)
out.machine = { cpus: cpus().length, loadavgBefore: loadBefore.map((x) => +x.toFixed(2)), loadavgAfter: loadavg().map((x) => +x.toFixed(2)) }
try {
  out.commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim()
  out.dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'js', 'bench/client-load'], { cwd: root, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim() !== ''
} catch { /* not a git checkout */ }
out.date = new Date().toISOString()
out.trace = 'automerge-paper by Martin Kleppmann, from josephg/editing-traces, CC BY 4.0'
writeFileSync(join(results, 'client.json'), JSON.stringify(out, null, 2) + '\n')
writeFileSync(join(results, 'client.md'), markdown(out))
writeFileSync(join(results, 'client-load.svg'), svg(out))
console.log(`\nwrote ${['client.json', 'client.md', 'client-load.svg'].map((f) => join('bench', 'results', f)).join(', ')}`)

function markdown (o) {
  const n = (x) => x.toLocaleString('en-US')
  const ms = (x) => x.toFixed(1)
  const lines = [
    '# Client load from IndexedDB (headless Chromium)',
    '',
    `Written by \`node bench/client-load/run.mjs\` (\`scripts/bench client\`) on ${o.date.slice(0, 10)}${o.commit ? ` at ${o.commit}${o.dirty ? ' (with uncommitted changes)' : ''}` : ''}: ` +
      `headless Chromium ${o.chromium}, ${o.machine.cpus} cores, load average ${o.machine.loadavgBefore[0]} before and ${o.machine.loadavgAfter[0]} after. ` +
      `Every figure is the median of ${o.runs} interleaved runs (one warm-up round not counted; each library re-seeded before each timed load, seeding not timed, every seed building the doc from the bytes and storing its encoded state, then ${o.settleMs} ms idle before the clock starts, so that each timed load starts alike; the order rotates). ` +
      'Each load opens the database, reads the state and applies it to a fresh `Y.Doc`; the floor is a raw IndexedDB open + read of the same bytes as one value, then Yjs\' own `Y.applyUpdate`.',
    '',
    '| size | state bytes | ykeep ms | y-indexeddb ms | floor ms (read + apply) | ykeep / floor | ykeep / y-indexeddb |',
    '|---|---:|---:|---:|---:|---:|---:|'
  ]
  for (const [size, r] of Object.entries(o.load)) {
    const m = r.medianMs
    lines.push(`| ${size} | ${n(r.stateBytes)} | ${ms(m.ykeep)} | ${ms(m.yindexeddb)} | ${ms(m.floor)} (${ms(m.read)} + ${ms(m.apply)}) | ${r.ratios.ykeepToFloor.toFixed(2)} | ${r.ratios.ykeepToYindexeddb.toFixed(2)} |`)
  }
  lines.push('', 'Where ykeep\'s time goes (`KeepCore.load`: IndexedDB open + read + report in wasm; then the one `Y.applyUpdate`), measured on the same database after each timed load (same idle wait), next to the floor\'s parts:', '',
    '| size | KeepCore.load ms | floor read ms | ykeep apply ms | floor apply ms |', '|---|---:|---:|---:|---:|')
  for (const [size, r] of Object.entries(o.load)) {
    const m = r.medianMs
    lines.push(`| ${size} | ${ms(m.ykeepLoad)} | ${ms(m.read)} | ${ms(m.ykeepApply)} | ${ms(m.apply)} |`)
  }
  const b = o.bytes
  lines.push('', `IndexedDB record bytes (keys + values, counted the same way for both) after 10,000 single edits of the trace (final state ${n(b.ykeep.snapshot)} bytes; bound 2× state + 64 KiB = ${n(b.bound)} bytes):`, '',
    '| library | bytes | records | × state | within bound |', '|---|---:|---:|---:|---|')
  for (const lib of ['ykeep', 'yindexeddb']) {
    const r = b[lib]
    lines.push(`| ${lib === 'ykeep' ? 'ykeep' : 'y-indexeddb'} | ${n(r.bytes)} | ${n(r.records)} | ${(r.bytes / b.ykeep.snapshot).toFixed(2)} | ${r.bytes <= b.bound ? 'yes' : 'no'} |`)
  }
  lines.push('', `wasm: ${n(o.wasm.raw)} bytes raw, ${n(o.wasm.gzip9)} bytes gzip -9 (\`pkg/ykeep_wasm_bg.wasm\`).`, '',
    '![client load](client-load.svg)', '', 'All samples: `client.json`.', '', `Trace: ${o.trace}`, '')
  return lines.join('\n')
}

// One panel per size (each on its own scale): ykeep, y-indexeddb, and the floor stacked as
// read + apply, with the 1.15× floor target as a dashed line.
function svg (o) {
  const esc = (t) => String(t).replace(/&/g, '&amp;').replace(/</g, '&lt;')
  const W = 760; const left = 110; const right = 40; const barH = 22; const gap = 8
  const panels = Object.entries(o.load)
  const panelH = 3 * (barH + gap) + 48
  const H = 56 + panels.length * panelH + 34
  const colors = { ykeep: '#2b6cb0', yindexeddb: '#dd6b20', read: '#68d391', apply: '#2f855a' }
  const halo = 'paint-order="stroke" stroke="#fff" stroke-width="3"'
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">Load from IndexedDB into a Y.Doc (median of ${o.runs} interleaved runs, ms)</text>`,
    `<text x="${W / 2}" y="40" text-anchor="middle" fill="#555">Chromium ${esc(o.chromium)}; floor = raw IndexedDB read + Y.applyUpdate; dashed line = 1.15× floor</text>`
  ]
  panels.forEach(([size, r], i) => {
    const m = r.medianMs
    const top = 56 + i * panelH
    const max = Math.max(m.ykeep, m.yindexeddb, m.floor, 1.15 * m.floor) * 1.08
    const x = (v) => left + (v / max) * (W - left - right)
    parts.push(`<text x="10" y="${top + 14}" font-weight="bold">automerge-paper ${esc(size)} (${r.stateBytes.toLocaleString('en-US')} bytes)</text>`)
    // The floor bar is the floor's median, split at the median read (the parts' medians need not
    // add up to the total's).
    const readPart = Math.min(m.read, m.floor)
    const bars = [['ykeep', [[m.ykeep, colors.ykeep]]], ['y-indexeddb', [[m.yindexeddb, colors.yindexeddb]]], ['floor', [[readPart, colors.read], [m.floor - readPart, colors.apply]]]]
    const rects = []
    const labels = []
    bars.forEach(([label, segs], j) => {
      const y = top + 24 + j * (barH + gap)
      labels.push(`<text x="${left - 8}" y="${y + barH / 2 + 4}" text-anchor="end">${label}</text>`)
      let at = 0
      for (const [v, c] of segs) {
        rects.push(`<rect x="${x(at).toFixed(1)}" y="${y}" width="${(x(at + v) - x(at)).toFixed(1)}" height="${barH}" fill="${c}"/>`)
        at += v
      }
      const note = label === 'floor' ? `${m.floor.toFixed(1)} (medians: read ${m.read.toFixed(1)}, apply ${m.apply.toFixed(1)})` : `${at.toFixed(1)}${label === 'ykeep' ? ` (${r.ratios.ykeepToFloor.toFixed(2)}× floor)` : ''}`
      labels.push(`<text x="${(x(at) + 5).toFixed(1)}" y="${y + barH / 2 + 4}" ${halo}>${note}</text>`)
    })
    // Bars, then the target line over them, then the labels (with a white halo) over both.
    const tx = x(1.15 * m.floor).toFixed(1)
    const bottom = top + 24 + 3 * (barH + gap)
    parts.push(...rects,
      `<line x1="${tx}" x2="${tx}" y1="${top + 20}" y2="${bottom - gap + 4}" stroke="#c53030" stroke-dasharray="4 3"/>`,
      `<text x="${tx}" y="${top + 14}" text-anchor="middle" fill="#c53030" font-size="11">1.15× floor</text>`,
      `<line x1="${left}" x2="${left}" y1="${top + 20}" y2="${bottom}" stroke="#999"/>`,
      ...labels)
  })
  parts.push(`<text x="10" y="${H - 12}" fill="#555" font-size="11">Trace: ${esc(o.trace)}</text>`, '</svg>', '')
  return parts.join('\n')
}
