// Client wasm size (issue 16, target 7): the shipped `pkg/ykeep_wasm_bg.wasm` (raw, gzip -9) and
// where its bytes go. Run by `scripts/bench wasm-size`, which builds pkg/ (scripts/build-wasm) and
// a copy with function names kept (cargo profile `wasm-names`: the release profile without
// `strip`, through the same wasm-opt -Oz and wasm-bindgen, names kept), and installs `twiggy`
// (crates.io) under target/tools when it is missing. This script reads twiggy's `top` of the
// named copy, groups the code and data by crate, and writes results/wasm-size.{json,md}.
//   node bench/wasm-size/run.mjs <named.wasm> <twiggy>
import { execFileSync } from 'node:child_process'
import { statSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '../..')
const [named, twiggy] = process.argv.slice(2)
if (!named || !twiggy) {
  console.error('usage: node bench/wasm-size/run.mjs <wasm with names> <twiggy binary> (scripts/bench wasm-size does both)')
  process.exit(2)
}
const TARGET = 150_000

// GNU gzip -9, as scripts/build-wasm prints it (zlib's level 9 comes out ~1 % larger).
const sizeOf = (file) => ({
  raw: statSync(file).size,
  gzip: execFileSync('gzip', ['-9', '-c', file], { maxBuffer: 64 << 20 }).length
})
const shipped = sizeOf(join(root, 'pkg', 'ykeep_wasm_bg.wasm'))
const withNames = { raw: statSync(named).size }

// twiggy top, as JSON: [{ name, shallow_size, ... }]
const items = JSON.parse(execFileSync(twiggy, ['top', '-n', '1000000', '-f', 'json', named], { maxBuffer: 256 << 20 }).toString())

const LIBS = new Set(['core', 'alloc', 'std', 'js_sys', 'wasm_bindgen', 'wasm_bindgen_futures', 'futures_util', 'futures_core',
  'futures_channel', 'hashbrown', 'serde_core', 'serde', 'smallvec', 'indexmap', 'tokio'])
const OWNERS = ['ykeep', 'ykeep_core', 'yrs', 'serde_json', 'serde_wasm_bindgen']

/** The group of one twiggy item: its crate; generic library code goes to the crate it was made
 * for (a hashbrown table of yrs is yrs'); formatting and panics are a group of their own. */
function groupOf (name) {
  if (name.startsWith('data segment')) return 'data segments'
  if (/^(import|export|type\[|elem|table|global|memory|code\[|func\[)/.test(name)) return `wasm section: ${name.split(/[[ ]/)[0]}`
  const m = name.match(/^[<&\s]*(?:mut |dyn )?([a-z_0-9]+)\[/)
  let crate = m ? m[1] : (name.includes('::') ? 'other' : 'wasm-bindgen exports (ykeep)')
  if (LIBS.has(crate)) crate = OWNERS.find((own) => new RegExp(`\\b${own}\\[`).test(name)) ?? crate
  if (['core', 'alloc', 'std', 'other'].includes(crate) && /fmt|Debug|Display|panic|escape|Formatter|pad|flt2dec|bignum|dec2flt/.test(name)) {
    return 'core/std formatting + panics'
  }
  return crate
}

const groups = new Map()
const top = []
let total = 0
for (const it of items) {
  const name = it.name
  const size = it.shallow_size
  if (name.startsWith('"function names"') || name.startsWith('Σ') || name.startsWith('...') || name.startsWith('"')) continue
  total += size
  const g = groupOf(name)
  const entry = groups.get(g) ?? { group: g, bytes: 0, items: 0 }
  entry.bytes += size
  entry.items += 1
  groups.set(g, entry)
  top.push({ name: name.replace(/\[[0-9a-f]{8,}\]/g, ''), bytes: size, group: g })
}
const byGroup = [...groups.values()].sort((a, b) => b.bytes - a.bytes)
top.sort((a, b) => b.bytes - a.bytes)

const pct = (n) => `${(100 * n / total).toFixed(1)} %`
const kb = (n) => (n / 1000).toFixed(1)
const lines = [
  '# Client wasm size (`scripts/bench wasm-size`)',
  '',
  `Written by \`node bench/wasm-size/run.mjs\` on ${new Date().toISOString().slice(0, 16)}Z. \`pkg/ykeep_wasm_bg.wasm\` as shipped (scripts/build-wasm: the \`wasm-release\` profile, wasm-opt -Oz, wasm-bindgen).`,
  '',
  `- **Shipped: ${shipped.raw.toLocaleString('en')} bytes raw, ${shipped.gzip.toLocaleString('en')} bytes gzip -9** (${kb(shipped.gzip)} kB; target ≤ ${kb(TARGET)} kB: ${shipped.gzip <= TARGET ? 'met' : `${kb(shipped.gzip - TARGET)} kB over`}).`,
  `- The breakdown is of the same build with function names kept (${withNames.raw.toLocaleString('en')} bytes raw with its name section; ${total.toLocaleString('en')} bytes of code and data counted below), by twiggy \`top\`. Generic library code (core, alloc, hashbrown, futures, serde) is counted under the crate it was instantiated for when its name says so.`,
  '',
  '## By crate',
  '',
  '| group | bytes | share | items |',
  '|---|---:|---:|---:|',
  ...byGroup.map((g) => `| ${g.group} | ${g.bytes.toLocaleString('en')} | ${pct(g.bytes)} | ${g.items} |`),
  '',
  '## Largest items',
  '',
  '| item | bytes | share | group |',
  '|---|---:|---:|---|',
  ...top.slice(0, 25).map((t) => `| \`${t.name.length > 110 ? `${t.name.slice(0, 107)}…` : t.name}\` | ${t.bytes.toLocaleString('en')} | ${pct(t.bytes)} | ${t.group} |`),
  ''
]
writeFileSync(join(root, 'bench/results/wasm-size.md'), lines.join('\n'))
writeFileSync(join(root, 'bench/results/wasm-size.json'), JSON.stringify({ date: new Date().toISOString(), shipped, withNames, counted: total, target: TARGET, groups: byGroup, top: top.slice(0, 200) }, null, 1))
console.log(`shipped: ${shipped.raw} bytes raw, ${shipped.gzip} gzip -9 (target ${TARGET})`)
for (const g of byGroup.slice(0, 15)) console.log(`  ${g.group.padEnd(34)} ${String(g.bytes).padStart(8)}  ${pct(g.bytes)}`)
console.log('wrote bench/results/wasm-size.md, bench/results/wasm-size.json')
