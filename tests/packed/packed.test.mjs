// Every npm package as users install it: `npm pack` of each package directory, installed into a
// fresh Vite app (tests/packed/fixture, copied to a temp dir; no alias, no link into the repo),
// then:
// - every subpath in `exports` resolves in the installed copy, and every file it names is packed;
// - `tsc --noEmit` (strict, skipLibCheck off, lib es2022 + dom, types []) over consumer files
//   that name every export of every subpath (the test lists them with the compiler API, so a new
//   export or subpath that no consumer names fails here);
// - `vite build` of the app, loaded in headless Chromium against the real relay + store: it
//   loads a room, edits it, and the store holds the edit after the save; a fresh browser loads it.
// Needs pkg/ (scripts/build-wasm; scripts/build-party adds ykeep/party) and the relay binary.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import * as Y from 'yjs'
import { CHROMIUM, RELAY_BIN, startServer } from '../e2e/lib.mjs'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
/** The package directories to pack; a new package joins here. */
const PACKAGES = [join(ROOT, 'pkg')]
/** Peers the fixture installs beside the tarballs, at the versions the workspace uses. */
const PEERS = ['yjs', 'y-websocket', 'vite', 'typescript', 'convex', 'partyserver', '@cloudflare/workers-types', 'y-prosemirror', 'prosemirror-model', 'lib0']
/** Which consumer config checks a subpath (those not listed: tsconfig.json). */
const CONSUMER_CONFIG = { './party': 'tsconfig.party.json' }
const SECRET = 'packed-secret'

let work
let app
const timings = {}

function run (cmd, args, cwd, what) {
  const started = Date.now()
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 })
  timings[what] = Date.now() - started
  if (r.status !== 0) throw new Error(`${what} failed (${cmd} ${args.join(' ')}):\n${r.stdout}\n${r.stderr}`)
  return r.stdout
}

function versionOf (name) {
  return JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version
}

before(() => {
  for (const dir of PACKAGES) {
    if (!existsSync(join(dir, 'package.json'))) throw new Error(`${dir} is not built: run scripts/build-wasm (and scripts/build-party)`)
  }
  if (!existsSync(RELAY_BIN)) throw new Error(`relay binary not built (${RELAY_BIN}): cargo build -p ykeep-relay --bins`)
  work = mkdtempSync(join(tmpdir(), 'ykeep-packed-'))
  const tarballs = PACKAGES.map((dir) => {
    const out = run('npm', ['pack', '--json', '--pack-destination', work], dir, `npm pack ${dir}`)
    const [info] = JSON.parse(out)
    return { dir, tarball: join(work, info.filename), files: info.files.map((f) => f.path) }
  })
  app = join(work, 'app')
  cpSync(join(ROOT, 'tests/packed/fixture'), app, { recursive: true })
  const peers = PEERS.map((p) => `${p}@${versionOf(p)}`)
  run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', ...tarballs.map((t) => t.tarball), ...peers], app, 'npm install')
  app = { dir: app, tarballs }
  console.log(`packed: ${tarballs.map((t) => `${t.files.length} files`).join(', ')}; timings ms ${JSON.stringify(timings)}`)
})

after(() => {
  if (work && process.env.YKEEP_KEEP_PACKED !== '1') rmSync(work, { recursive: true, force: true })
})

/** The installed package's manifest and its subpaths with their `types` and `default` files. */
function installed (name = 'ykeep') {
  const dir = join(app.dir, 'node_modules', name)
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
  const subpaths = Object.entries(manifest.exports).map(([subpath, target]) => ({
    subpath,
    specifier: subpath === '.' ? name : `${name}/${subpath.slice(2)}`,
    files: typeof target === 'string' ? [target] : Object.values(target),
    types: typeof target === 'string' ? null : target.types
  }))
  return { dir, manifest, subpaths }
}

test('every subpath in exports resolves in the installed package, and every file it names is packed', () => {
  const { dir, subpaths } = installed()
  const packed = new Set(app.tarballs[0].files)
  assert.ok(subpaths.length >= 4, `exports: ${subpaths.map((s) => s.subpath)}`)
  const appRequire = createRequire(join(app.dir, 'package.json'))
  for (const s of subpaths) {
    for (const file of s.files) {
      const rel = file.replace(/^\.\//, '')
      assert.ok(packed.has(rel), `${s.subpath}: ${rel} is not in the tarball`)
      assert.ok(existsSync(join(dir, rel)), `${s.subpath}: ${rel} is not installed`)
    }
    assert.ok(s.types, `${s.subpath} has no types`)
    // Resolved from the app (the `default` condition, as its bundler takes it).
    const resolved = appRequire.resolve(s.specifier)
    assert.ok(resolved.startsWith(`${dir}/`), `${s.specifier} resolved to ${resolved}`)
  }
})

test('tsc --noEmit, strict and skipLibCheck off, over consumers that name every export of every subpath', async () => {
  const ts = createRequire(join(app.dir, 'package.json'))('typescript')
  const { subpaths } = installed()
  const configs = new Map()
  for (const s of subpaths) {
    const config = CONSUMER_CONFIG[s.subpath] ?? 'tsconfig.json'
    if (!configs.has(config)) configs.set(config, [])
    configs.get(config).push(s)
  }
  for (const [config, covered] of configs) {
    const out = spawnSync(process.execPath, [join(app.dir, 'node_modules/typescript/bin/tsc'), '-p', config], {
      cwd: app.dir, encoding: 'utf8'
    })
    assert.equal(out.status, 0, `tsc -p ${config}:\n${out.stdout}${out.stderr}`)
    // Every export of each covered subpath is named by one of the config's consumer files.
    const parsed = ts.getParsedCommandLineOfConfigFile(join(app.dir, config), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} })
    const program = ts.createProgram(parsed.fileNames, parsed.options)
    const checker = program.getTypeChecker()
    const consumerText = parsed.fileNames.map((f) => readFileSync(f, 'utf8')).join('\n')
    for (const s of covered) {
      const resolvedModule = ts.resolveModuleName(s.specifier, join(app.dir, 'consumer.ts'), parsed.options, ts.sys).resolvedModule
      assert.ok(resolvedModule, `${s.specifier} does not resolve for tsc`)
      const source = program.getSourceFile(resolvedModule.resolvedFileName)
      assert.ok(source, `${s.specifier}: ${resolvedModule.resolvedFileName} is not in the program (no consumer imports it)`)
      const names = checker.getExportsOfModule(checker.getSymbolAtLocation(source)).map((e) => e.getName())
      assert.ok(names.length > 0, `${s.specifier} exports nothing`)
      const unnamed = names.filter((n) => !new RegExp(`\\b${n}\\b`).test(consumerText))
      assert.deepEqual(unnamed, [], `${s.specifier}: exports no consumer file of ${config} uses`)
    }
  }
})

test('the installed client in a Vite build, in Chromium against the real relay: it loads a room and saves it', { timeout: 180_000 }, async () => {
  run(join(app.dir, 'node_modules/.bin/vite'), ['build'], app.dir, 'vite build')
  const dist = join(app.dir, 'dist')
  assert.ok(readdirSync(join(dist, 'assets')).some((f) => f.endsWith('.wasm')), 'the wasm is in the build')
  const data = mkdtempSync(join(tmpdir(), 'ykeep-packed-data-'))
  const server = await startServer('packed-serve', RELAY_BIN, [
    'serve', '--listen', '127.0.0.1:0', '--data-dir', data, '--demo', '--secret', SECRET,
    '--static-dir', dist, '--save-debounce-ms', '300'
  ])
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true })
  try {
    const id = `packed-${Date.now()}`
    const open = async (text) => {
      const context = await browser.newContext()
      const page = await context.newPage()
      const errors = []
      page.on('pageerror', (e) => errors.push(String(e)))
      await page.goto(`${server.url}/?id=${id}&text=${encodeURIComponent(text)}`)
      await page.waitForFunction(() => window.ykeepResult !== undefined, null, { timeout: 30_000 })
      const result = await page.evaluate(() => window.ykeepResult)
      assert.deepEqual(errors, [])
      assert.ok(result, `the page gave no result (errors: ${errors})`)
      return { context, result }
    }
    const first = await open('saved by the installed package')
    assert.equal(first.result.after, 'saved by the installed package')
    await first.context.close() // the last user leaves: the relay saves after the debounce

    const deadline = Date.now() + 20_000
    let stored = null
    while (Date.now() < deadline && stored === null) {
      const res = await fetch(`${server.url}/snapshots/document/${id}`, { headers: { Authorization: `Bearer ${SECRET}` } })
      if (res.status === 200) {
        const doc = new Y.Doc()
        Y.applyUpdate(doc, new Uint8Array(await res.arrayBuffer()))
        stored = doc.getText('t').toString() || null
      } else {
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    }
    assert.equal(stored, 'saved by the installed package', 'the store holds the edit')

    // A fresh browser (no IndexedDB cache) opens the room the installed package saved: the relay
    // cold-starts it from the store.
    const second = await open('')
    assert.equal(second.result.after, 'saved by the installed package')
    await second.context.close()
  } finally {
    await browser.close()
    await server.stop()
    rmSync(data, { recursive: true, force: true })
  }
})
