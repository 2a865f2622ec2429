// Helpers of the end-to-end suite: real processes (relay, store, a static file server for the
// built demo page), headless Chromium through playwright-core, console checks, polling waits.
import { spawn, spawnSync } from 'node:child_process'
import { createHmac, randomBytes } from 'node:crypto'
import { copyFileSync, createReadStream, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { dirname, extname, join, normalize, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
export const OUT = join(ROOT, 'test-output', 'e2e')
export const RELAY_BIN = process.env.YKEEP_RELAY_BIN || join(ROOT, 'target/debug/ykeep-relay')
export const CHROMIUM = process.env.YKEEP_CHROMIUM || '/usr/bin/chromium'
export const DIST = join(ROOT, 'www/dist')

export function missing () {
  if (!existsSync(RELAY_BIN)) return `relay binary not built (${RELAY_BIN}): cargo build -p ykeep-relay --bins`
  if (!existsSync(CHROMIUM)) return `no Chromium at ${CHROMIUM} (scripts/setup installs Debian's chromium)`
  return false
}

export function tempDir (prefix) {
  return mkdtempSync(join(tmpdir(), `ykeep-e2e-${prefix}-`))
}

/** Builds www/dist (the page under test) unless YKEEP_E2E_SKIP_BUILD=1 and it exists. */
export function buildPage () {
  if (process.env.YKEEP_E2E_SKIP_BUILD === '1' && existsSync(join(DIST, 'index.html'))) return
  const r = spawnSync('npx', ['--no-install', 'vite', 'build', 'www', '--logLevel', 'warn'], {
    cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']
  })
  if (r.status !== 0) throw new Error(`vite build www failed:\n${r.stdout}\n${r.stderr}`)
  if (!existsSync(join(ROOT, 'pkg/package.json'))) {
    throw new Error('pkg/ (the ykeep client) is not built: run scripts/build-wasm before the e2e suite')
  }
}

/**
 * Starts a server process that prints `... listening on http://HOST:PORT` on stdout once bound.
 * stderr goes to test-output/e2e/logs/<name>.log.
 */
export function startServer (name, bin, args, { env } = {}) {
  mkdirSync(join(OUT, 'logs'), { recursive: true })
  const logFile = join(OUT, 'logs', `${name}.log`)
  const log = openSync(logFile, 'a')
  const child = spawn(bin, args, {
    stdio: ['ignore', 'pipe', log],
    env: { ...process.env, YKEEP_LOG: process.env.YKEEP_LOG || 'info', ...env }
  })
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout })
    let done = false
    rl.on('line', (line) => {
      const m = line.match(/listening on (http:\/\/(127\.0\.0\.1:(\d+)))/)
      if (!m || done) return
      done = true
      resolve({
        name,
        child,
        url: m[1],
        host: m[2],
        port: Number(m[3]),
        logFile,
        exited,
        async stop (signal = 'SIGTERM') {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal)
          return exited
        }
      })
    })
    exited.then(({ code, signal }) => {
      if (!done) reject(new Error(`${name} exited before listening (code ${code}, signal ${signal}); log: ${logFile}`))
    })
  })
}

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
  '.png': 'image/png'
}

/** A tiny static file server over `dir` on 127.0.0.1 (port 0 unless given). */
export function staticServer (dir, port = 0) {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname)
    let file = normalize(join(dir, path))
    if (!file.startsWith(dir)) { res.writeHead(403).end(); return }
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html')
    if (!existsSync(file)) { res.writeHead(404, { 'content-type': 'text/plain' }).end('not found'); return }
    res.writeHead(200, { 'content-type': MIME[extname(file)] || 'application/octet-stream', 'cache-control': 'no-store' })
    createReadStream(file).pipe(res)
  })
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => {
    const { port } = server.address()
    resolve({ url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(r)) })
  }))
}

export const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-dev-shm-usage'
]

/** Headless Chromium (Playwright gives each launch a fresh temporary user-data-dir). */
export function launchBrowser () {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS })
}

// Network log lines Chromium prints for documented answers of the contract: the relay's
// `GET /rooms/{kind}/{id}/state` is 404 when the room is not in memory, and the store's
// `GET /snapshots/{kind}/{id}` is 404 before the first save. Chromium logs every 4xx fetch
// as a console error; these two are the load chain working as designed.
const EXPECTED_404 = [/\/rooms\/(document|diagram|task)\/[\w-]+\/state(\?|$)/, /\/snapshots\/(document|diagram|task)\/[\w-]+$/]

/**
 * Fails on every console error and uncaught page error, except the documented 404s above and,
 * while `policy.offline` is set, refused connections to the stopped relay / store.
 * Returns { errors, tolerated } arrays of strings.
 */
export function watchConsole (page, label, policy = {}) {
  const errors = []
  const tolerated = []
  page.on('pageerror', (err) => errors.push(`${label} pageerror: ${err.stack || err.message}`))
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return
    const text = msg.text()
    const url = msg.location()?.url || ''
    const line = `${label} console.error: ${text}${url ? ` (${url})` : ''}`
    if (/status of 404/.test(text) && EXPECTED_404.some((re) => re.test(url))) { tolerated.push(line); return }
    if (policy.offline && policy.offlineHosts?.some((h) => text.includes(h) || url.includes(h)) &&
        /ERR_CONNECTION_REFUSED|WebSocket connection to .* failed/.test(text)) {
      tolerated.push(line)
      return
    }
    errors.push(line)
  })
  return { errors, tolerated }
}

/** Polls `fn` until it returns a truthy value (no fixed sleeps in assertions). */
export async function until (what, fn, timeoutMs = 60_000, everyMs = 100) {
  const start = Date.now()
  let last
  for (;;) {
    try {
      last = await fn()
      if (last) return last
    } catch (e) {
      last = e
    }
    if (Date.now() - start > timeoutMs) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? ` (last error: ${last.message})` : ''}`)
    }
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
}

function b64url (buf) {
  return Buffer.from(buf).toString('base64url')
}

/** A user token in the format of docs/store-api.md (HMAC-SHA256 over the payload segment). */
export function mintToken (key, { sub = 'e2e', kind = '*', id = '*', ttl = 3600 } = {}) {
  const payload = b64url(JSON.stringify({ sub, kind, id, exp: Math.floor(Date.now() / 1000) + ttl }))
  const sig = createHmac('sha256', key).update(payload, 'ascii').digest()
  return `${payload}.${b64url(sig)}`
}

export function randomName (prefix) {
  return `${prefix}-${randomBytes(4).toString('hex')}`
}

/** Writes lines to test-output/e2e/<name> and returns the path. */
export function writeLines (name, lines) {
  mkdirSync(OUT, { recursive: true })
  const path = join(OUT, name)
  writeFileSync(path, lines.join('\n') + '\n')
  return path
}

const CLIENT_WASM = join(ROOT, 'pkg', 'ykeep_wasm_bg.wasm')

/** Why the client-only pages cannot run here (false when they can). */
export function clientUnavailable () {
  if (!existsSync(CLIENT_WASM)) return 'pkg/ (the ykeep client) is not built: scripts/build-wasm'
  if (!existsSync(CHROMIUM)) return `no Chromium at ${CHROMIUM} (scripts/setup installs Debian's chromium)`
  return false
}

/**
 * A page with only the built client: yjs and pkg/ bundled into one module (window.Y,
 * window.YKeep, window.tabReady), the wasm beside it, served from a temp dir on 127.0.0.1 (no
 * relay, no store). Returns `{ url, close }`.
 */
export async function clientPageServer (prefix) {
  const { build } = await import('esbuild')
  const dir = tempDir(prefix)
  await build({
    stdin: {
      contents: "import * as Y from 'yjs'\nimport { YKeep } from './pkg/ykeep.js'\nwindow.Y = Y\nwindow.YKeep = YKeep\nwindow.tabReady = true\n",
      resolveDir: ROOT,
      loader: 'js'
    },
    bundle: true,
    format: 'esm',
    target: 'es2022',
    outfile: join(dir, 'bundle.js'),
    logLevel: 'error'
  })
  copyFileSync(CLIENT_WASM, join(dir, 'ykeep_wasm_bg.wasm'))
  writeFileSync(join(dir, 'index.html'), `<!doctype html><meta charset=utf-8><title>ykeep ${prefix}</title><link rel=icon href="data:,"><script type=module src=bundle.js></script>\n`)
  const server = await staticServer(dir)
  return {
    url: server.url,
    async close () {
      await server.close()
      if (process.env.YKEEP_E2E_KEEP !== '1') rmSync(dir, { recursive: true, force: true })
    }
  }
}
