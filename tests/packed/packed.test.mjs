// Every npm package as users install it: `npm pack` of each package directory, installed into a
// fresh Vite app (tests/packed/fixture, copied to a temp dir; no alias, no link into the repo),
// then:
// - every subpath in `exports` resolves in the installed copy, every file it names is packed, and
//   so is every file those import (relative imports, `new URL(..., import.meta.url)`); every bare
//   import is the package itself or one of its (peer) dependencies;
// - a strict type check (strict, skipLibCheck off, noUnusedLocals; tsconfig.json: lib es2022 +
//   dom, types []) over consumer files that import every export of every subpath: the test lists
//   the exports with the compiler API, so a new export or subpath that no consumer imports fails;
// - `vite build` of the app, loaded in headless Chromium against the real relay + store: it
//   loads a room, edits it, hears the edit reach browser, relay and store in that order (through
//   `keep.attach(provider)`), the store holds it, and a fresh browser loads it.
// Needs pkg/ (scripts/build-wasm; scripts/build-party adds ykeep/party) and the relay binary.
// YKEEP_KEEP_PACKED=1 keeps the temp dir (its path is printed).
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { builtinModules, createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, posix, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import * as Y from 'yjs'
import { CHROMIUM, CHROMIUM_ARGS, RELAY_BIN, missing, startServer } from '../e2e/lib.mjs'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
/** The package directories to pack; a new package joins here. */
const PACKAGES = [join(ROOT, 'pkg')]
/**
 * What the fixture app installs beside the tarballs and every package's peerDependencies: the
 * app's own dependencies, and the types a consumer config needs. Versions: the workspace's
 * node_modules (so the npm cache has them), else the peer range.
 */
const APP_DEPS = ['yjs', 'y-websocket', 'vite', 'typescript', '@cloudflare/workers-types']
/** Which consumer tsconfig type-checks a subpath's importers (the rest: tsconfig.json). */
const CONSUMER_CONFIG = { 'ykeep/party': 'tsconfig.party.json' }
const CONFIGS = ['tsconfig.json', 'tsconfig.party.json']
const SECRET = 'packed-secret'

let work
let appDir
/** [{ dir, name, manifest, tarball, files: Set }] */
let packs = []

function run (cmd, args, cwd, what) {
  const started = Date.now()
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 })
  const ms = Date.now() - started
  if (r.status !== 0) throw new Error(`${what} failed (${cmd} ${args.join(' ')}):\n${r.stdout}\n${r.stderr}`)
  console.log(`packed: ${what}: ${(ms / 1000).toFixed(1)} s`)
  return r.stdout
}

function workspaceVersion (name) {
  const file = join(ROOT, 'node_modules', name, 'package.json')
  return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')).version : null
}

before(() => {
  const why = missing()
  if (why) throw new Error(why)
  for (const dir of PACKAGES) {
    if (!existsSync(join(dir, 'package.json'))) throw new Error(`${dir} is not built: run scripts/build-wasm (and scripts/build-party)`)
  }
  work = mkdtempSync(join(tmpdir(), 'ykeep-packed-'))
  if (process.env.YKEEP_KEEP_PACKED === '1') console.log(`packed: temp dir ${work}`)
  packs = PACKAGES.map((dir) => {
    const [info] = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', work], dir, `npm pack ${dir}`))
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
    console.log(`packed: ${info.filename}: ${info.files.length} files, ${info.size} bytes`)
    return { dir, name: info.name, manifest, tarball: join(work, info.filename), files: new Set(info.files.map((f) => f.path)) }
  })
  appDir = join(work, 'app')
  cpSync(join(ROOT, 'tests/packed/fixture'), appDir, { recursive: true })
  const names = new Set(packs.map((p) => p.name))
  const wanted = new Map(APP_DEPS.map((n) => [n, null]))
  for (const p of packs) {
    for (const [n, range] of Object.entries(p.manifest.peerDependencies ?? {})) if (!names.has(n)) wanted.set(n, range)
  }
  const deps = [...wanted].map(([n, range]) => `${n}@${workspaceVersion(n) ?? range ?? 'latest'}`)
  run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', ...packs.map((p) => p.tarball), ...deps],
    appDir, `npm install (${packs.length} tarball(s), ${deps.length} others)`)
})

after(() => {
  if (work && process.env.YKEEP_KEEP_PACKED !== '1') rmSync(work, { recursive: true, force: true })
})

/** A package's subpaths from its packed manifest: the specifier and each condition's file. */
function subpathsOf (pack) {
  const exp = pack.manifest.exports
  assert.ok(exp && typeof exp === 'object', `${pack.name}: no exports map`)
  const entries = typeof exp === 'string' || !Object.keys(exp).some((k) => k.startsWith('.')) ? [['.', exp]] : Object.entries(exp)
  return entries.map(([subpath, target]) => {
    const files = []
    const walk = (t, conditions) => {
      if (typeof t === 'string') files.push({ conditions, file: posix.normalize(t.replace(/^\.\//, '')) })
      else if (t && typeof t === 'object') for (const [c, v] of Object.entries(t)) walk(v, [...conditions, c])
    }
    walk(target, [])
    return {
      subpath,
      specifier: subpath === '.' ? pack.name : `${pack.name}/${subpath.slice(2)}`,
      files,
      types: files.find((f) => f.conditions.includes('types'))?.file ?? null
    }
  })
}

/** The specifiers a JS or declaration file imports (TypeScript's scanner; comments skipped). */
function importsOf (ts, text) {
  const specs = ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName)
  for (const m of text.matchAll(/new URL\(\s*(['"])([^'"]+)\1\s*,\s*import\.meta\.url\s*\)/g)) specs.push(`./${m[2].replace(/^\.\//, '')}`)
  return specs
}

test('every subpath in exports resolves in the installed package, and every file it needs is packed', () => {
  const appRequire = createRequire(join(appDir, 'package.json'))
  const ts = appRequire('typescript')
  const builtins = new Set(builtinModules)
  for (const pack of packs) {
    const dir = join(appDir, 'node_modules', pack.name)
    const subpaths = subpathsOf(pack)
    assert.ok(subpaths.some((s) => s.subpath === '.'), `${pack.name}: exports has no "."`)
    console.log(`packed: ${pack.name} exports ${subpaths.map((s) => s.specifier).join(', ')}`)
    const allowed = new Set([pack.name, ...Object.keys(pack.manifest.dependencies ?? {}), ...Object.keys(pack.manifest.peerDependencies ?? {})])
    const seen = new Set()
    const queue = []
    for (const s of subpaths) {
      assert.ok(s.types, `${s.specifier} has no types condition`)
      for (const { file } of s.files) queue.push({ file, from: `exports["${s.subpath}"]` })
    }
    // Every file reachable from the exports, through relative imports, is in the tarball.
    while (queue.length) {
      const { file, from } = queue.shift()
      if (seen.has(file)) continue
      seen.add(file)
      assert.ok(pack.files.has(file), `${file} (named by ${from}) is not in the tarball ${pack.tarball}`)
      assert.ok(existsSync(join(dir, file)), `${file} (named by ${from}) is not installed`)
      if (!/\.(m?js|d\.ts)$/.test(file)) continue
      const declaration = file.endsWith('.d.ts')
      for (const spec of importsOf(ts, readFileSync(join(dir, file), 'utf8'))) {
        if (spec.startsWith('.')) {
          const target = posix.normalize(posix.join(posix.dirname(file), spec))
          const candidates = declaration
            ? [target.replace(/\.m?js$/, '.d.ts'), `${target}.d.ts`, `${target}/index.d.ts`, target]
            : [target]
          queue.push({ file: candidates.find((c) => pack.files.has(c)) ?? candidates[0], from: file })
        } else if (!spec.startsWith('node:') && !builtins.has(spec)) {
          const dep = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]
          assert.ok(allowed.has(dep), `${file} imports ${spec}, not a dependency or peerDependency of ${pack.name}`)
        }
      }
    }
    // Resolved from the app as Node resolves it (the default condition, as a bundler takes it).
    for (const s of subpaths) {
      const resolved = appRequire.resolve(s.specifier)
      assert.ok(resolved.startsWith(`${dir}/`), `${s.specifier} resolved to ${resolved}`)
    }
  }
})

test('strict type check, skipLibCheck off, over consumers that import every export of every subpath', () => {
  const ts = createRequire(join(appDir, 'package.json'))('typescript')
  const started = Date.now()
  const programs = CONFIGS.map((config) => {
    const parsed = ts.getParsedCommandLineOfConfigFile(join(appDir, config), {}, {
      ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => { throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n')) }
    })
    const program = ts.createProgram(parsed.fileNames, parsed.options)
    const diagnostics = ts.getPreEmitDiagnostics(program)
    const host = { getCanonicalFileName: (f) => f, getCurrentDirectory: () => appDir, getNewLine: () => '\n' }
    assert.equal(diagnostics.length, 0, `tsc -p ${config}:\n${ts.formatDiagnostics(diagnostics, host)}`)
    return { config, parsed, program, consumers: parsed.fileNames.map((f) => program.getSourceFile(f)) }
  })
  console.log(`packed: type check (${CONFIGS.join(', ')}): ${((Date.now() - started) / 1000).toFixed(1)} s`)

  for (const pack of packs) {
    for (const s of subpathsOf(pack)) {
      const config = CONSUMER_CONFIG[s.specifier] ?? 'tsconfig.json'
      const { program, parsed, consumers } = programs.find((p) => p.config === config)
      const checker = program.getTypeChecker()
      const resolved = ts.resolveModuleName(s.specifier, join(appDir, 'consumer.ts'), parsed.options, ts.sys).resolvedModule
      assert.ok(resolved, `${s.specifier} does not resolve for tsc (${config})`)
      assert.equal(resolved.resolvedFileName, join(appDir, 'node_modules', pack.name, s.types), `${s.specifier}: tsc took another file`)
      const source = program.getSourceFile(resolved.resolvedFileName)
      assert.ok(source, `${s.specifier}: no consumer file of ${config} imports it`)
      const names = checker.getExportsOfModule(checker.getSymbolAtLocation(source)).map((e) => e.getName())
      assert.ok(names.length > 0, `${s.specifier} exports nothing`)
      const used = importedNames(ts, consumers, s.specifier)
      const unused = names.filter((n) => !used.has(n))
      assert.deepEqual(unused, [], `${s.specifier}: exports the consumer files of ${config} do not import (add them there)`)
    }
  }
})

/**
 * The names consumer files take from `specifier`: named imports and re-exports, and members of a
 * namespace import. With noUnusedLocals on, each import is also used.
 */
function importedNames (ts, files, specifier) {
  const names = new Set()
  for (const file of files) {
    const namespaces = new Set()
    for (const st of file.statements) {
      if (!st.moduleSpecifier || !ts.isStringLiteral(st.moduleSpecifier) || st.moduleSpecifier.text !== specifier) continue
      if (ts.isImportDeclaration(st) && st.importClause) {
        if (st.importClause.name) names.add('default')
        const b = st.importClause.namedBindings
        if (b && ts.isNamedImports(b)) for (const e of b.elements) names.add((e.propertyName ?? e.name).text)
        if (b && ts.isNamespaceImport(b)) namespaces.add(b.name.text)
      } else if (ts.isExportDeclaration(st) && st.exportClause && ts.isNamedExports(st.exportClause)) {
        for (const e of st.exportClause.elements) names.add((e.propertyName ?? e.name).text)
      }
    }
    if (namespaces.size === 0) continue
    const visit = (node) => {
      if ((ts.isPropertyAccessExpression(node) || ts.isQualifiedName(node)) && ts.isIdentifier(node.expression ?? node.left) &&
        namespaces.has((node.expression ?? node.left).text)) names.add((node.name ?? node.right).text)
      ts.forEachChild(node, visit)
    }
    visit(file)
  }
  return names
}

test('the installed client in a Vite build, in Chromium against the real relay: it loads a room and saves it', { timeout: 180_000 }, async () => {
  run(join(appDir, 'node_modules/.bin/vite'), ['build'], appDir, 'vite build')
  const dist = join(appDir, 'dist')
  assert.ok(readdirSync(join(dist, 'assets')).some((f) => f.endsWith('.wasm')), 'the wasm is in the build')
  const data = mkdtempSync(join(tmpdir(), 'ykeep-packed-data-'))
  // The relay serves the built app too (one origin on 127.0.0.1, as the demo runs).
  const server = await startServer('packed-serve', RELAY_BIN, [
    'serve', '--listen', '127.0.0.1:0', '--data-dir', data, '--demo', '--secret', SECRET,
    '--static-dir', dist, '--save-debounce-ms', '300'
  ])
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS })
  try {
    const id = `packed-${Date.now()}`
    const text = 'saved by the installed package'
    // Each context is a fresh profile: no IndexedDB cache, no HTTP cache.
    const open = async (edit) => {
      const context = await browser.newContext()
      const page = await context.newPage()
      const errors = []
      page.on('pageerror', (e) => errors.push(String(e)))
      await page.goto(`${server.url}/?id=${id}&text=${encodeURIComponent(edit)}`)
      await page.waitForFunction(() => window.ykeepResult !== undefined, null, { timeout: 30_000 })
      const result = await page.evaluate(() => window.ykeepResult)
      assert.deepEqual(errors, [], 'page errors')
      assert.ok(result, 'the page gave no result')
      return { context, result }
    }
    const first = await open(text)
    assert.equal(first.result.before, '')
    assert.equal(first.result.after, text)
    assert.deepEqual(first.result.tiers, ['browser', 'relay', 'store'], 'the edit\'s tiers, in order, as the page heard them')
    await first.context.close()

    // Read back through the store's HTTP API.
    const deadline = Date.now() + 20_000
    let stored = null
    while (Date.now() < deadline && stored === null) {
      const res = await fetch(`${server.url}/snapshots/document/${id}`, { headers: { Authorization: `Bearer ${SECRET}` } })
      if (res.status === 200) {
        const doc = new Y.Doc()
        Y.applyUpdate(doc, new Uint8Array(await res.arrayBuffer()))
        stored = doc.getText('t').toString() || null
      } else {
        await res.arrayBuffer()
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    }
    assert.equal(stored, text, 'the store holds the edit')

    // A fresh browser profile opens the room the installed package saved.
    const second = await open('')
    assert.equal(second.result.before, text, `the load before the WebSocket: ${JSON.stringify(second.result.report)}`)
    await second.context.close()
  } finally {
    await browser.close()
    await server.stop()
    rmSync(data, { recursive: true, force: true })
  }
})
