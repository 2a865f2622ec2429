// Client-load benchmark in headless Chromium (playwright-core driving /usr/bin/chromium):
//  - load time from IndexedDB of the automerge-paper document and of a 10x one (the trace
//    appended 10 times): ykeep vs y-indexeddb vs the floor (raw read of one blob + Y.applyUpdate),
//    medians of interleaved runs;
//  - IndexedDB record bytes (keys + values) after replaying 10,000 edits, ykeep vs y-indexeddb;
//  - the gzipped wasm size.
// Run: scripts/build-wasm && node bench/client-load/run.mjs   (env RUNS, default 9)
// Trace: YKEEP_BENCH_DATA (default ../shared/bench-data) / automerge-paper.json.gz (CC BY 4.0).
import { createServer } from 'node:http'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs'
import { gunzipSync, gzipSync } from 'node:zlib'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as Y from 'yjs'
import { build } from 'esbuild'
import { chromium } from 'playwright-core'

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
const work = join(root, 'bench', 'results', 'tmp', 'client-load')
mkdirSync(work, { recursive: true })

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
const profile = mkdtempSync(join(tmpdir(), 'ykeep-bench-'))
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.YKEEP_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage']
})
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2 }
const fmt = (x) => x.toFixed(1)
const out = { runs: RUNS, chromium: context.browser()?.version() ?? 'chromium', load: {}, bytes: {} }
try {
  const page = await context.newPage()
  page.on('pageerror', (e) => console.error('page error:', e))
  await page.goto(base)
  await page.waitForFunction(() => window.benchReady === true)
  const browserVersion = await page.evaluate(() => navigator.userAgent)
  out.userAgent = browserVersion

  for (const size of ['1x', '10x']) {
    const want = await page.evaluate(async (size) => { const b = await window.bench.blob(size); window.cur = b; return b.length }, size)
    const rows = { ykeep: [], yindexeddb: [], floor: [], read: [], apply: [] }
    const lens = new Set()
    // One warm-up round (not counted), then RUNS interleaved rounds; each library re-seeded
    // before each timed load (seeding is not timed), rotating which goes first.
    for (let i = -1; i < RUNS; i++) {
      const order = [['ykeep', 'Ykeep'], ['yindexeddb', 'Yidb'], ['floor', 'Raw']]
      for (let k = 0; k < (i + 3) % 3; k++) order.push(order.shift())
      for (const [key, fn] of order) {
        const r = await page.evaluate(async ([fn, db]) => {
          await window.bench[`seed${fn}`](db, window.cur)
          return window.bench[`load${fn}`](db)
        }, [fn, `bench-${key}-${size}`])
        lens.add(r.len)
        if (i < 0) continue
        rows[key].push(r.ms)
        if (key === 'floor') { rows.read.push(r.readMs); rows.apply.push(r.applyMs) }
      }
    }
    if (lens.size !== 1) throw new Error(`loaded documents differ in length: ${[...lens]}`)
    const m = Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, median(v)]))
    out.load[size] = { stateBytes: want, medianMs: m, samples: rows }
    console.log(`\nload from IndexedDB, automerge-paper ${size} (${want} bytes state, ${[...lens][0]} chars), median of ${RUNS} interleaved runs:`)
    console.log(`  ykeep        ${fmt(m.ykeep)} ms   (${(m.ykeep / m.floor).toFixed(2)}x floor, ${(m.ykeep / m.yindexeddb).toFixed(2)}x y-indexeddb)`)
    console.log(`  y-indexeddb  ${fmt(m.yindexeddb)} ms`)
    console.log(`  floor        ${fmt(m.floor)} ms   (raw IndexedDB open+read of one blob ${fmt(m.read)} ms + Y.applyUpdate ${fmt(m.apply)} ms)`)
  }

  // Bytes after 10,000 single edits.
  const edits = patches.slice(0, 10_000)
  for (const lib of ['ykeep', 'yindexeddb']) {
    const r = await page.evaluate(async ([lib, edits]) => window.bench.replayEdits(lib, `bench-edits-${lib}`, edits), [lib, edits])
    out.bytes[lib] = r
  }
  const snap = out.bytes.ykeep.snapshot
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
writeFileSync(join(work, 'last-run.json'), JSON.stringify(out, null, 2))
console.log(`(all samples: ${join(work, 'last-run.json')})`)
