// Real relay / store processes for the reliability drivers: spawn, wait for the "listening" line,
// kill -9, restart on the same data dir and port. Logs go to files in the run's temp dir.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..')
export const SECRET = 'reliability-secret-0123456789'
export const TOKEN_KEY = 'reliability-token-key-0123456789'

export function relayBin () {
  const bin = process.env.YKEEP_RELAY_BIN || path.join(ROOT, 'target/debug/ykeep-relay')
  return fs.existsSync(bin) ? bin : null
}

export function tempDir (prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `ykeep-${prefix}-`))
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Polls `fn` until it returns a truthy value; throws `what` after `timeoutMs` (generous). */
export async function waitFor (what, fn, { timeoutMs = 60_000, everyMs = 25 } = {}) {
  const deadline = Date.now() + timeoutMs
  let last
  for (;;) {
    try {
      const v = await fn()
      if (v) return v
    } catch (e) { last = e }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ''}`)
    await sleep(everyMs)
  }
}

let logCounter = 0

/**
 * Starts `ykeep-relay <sub> ...args` and resolves once it printed its listening line.
 * Returns { proc, port, url, logFile, exited: Promise<{code, signal}>, log() }.
 */
export async function startProcess (sub, args, { logDir, env = {}, name = sub, timeoutMs = 60_000 } = {}) {
  const bin = relayBin()
  if (!bin) throw new Error('relay binary not found: build it with `cargo build -p ykeep-relay --bins` or set YKEEP_RELAY_BIN')
  const logFile = path.join(logDir, `${name}-${++logCounter}.log`)
  const out = fs.openSync(logFile, 'a')
  const proc = spawn(bin, [sub, ...args], {
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info', ...env },
    stdio: ['ignore', 'pipe', out]
  })
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })))
  let stdout = ''
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not print its listening line in ${timeoutMs} ms (log: ${logFile})`)), timeoutMs)
    proc.stdout.on('data', (chunk) => {
      fs.appendFileSync(logFile, chunk)
      stdout += chunk
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(stdout)
      if (m) { clearTimeout(timer); resolve(Number(m[1])) }
    })
    exited.then(({ code, signal }) => { clearTimeout(timer); reject(new Error(`${name} exited (${code ?? signal}) before listening; log: ${logFile}\n${tail(logFile)}`)) })
  })
  fs.closeSync(out)
  return {
    proc,
    port,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}`,
    logFile,
    exited,
    log: () => fs.readFileSync(logFile, 'utf8')
  }
}

export function tail (file, lines = 30) {
  try { return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n') } catch { return '' }
}

/** kill -9 and wait until the process is gone. */
export async function kill9 (p) {
  if (p.proc.exitCode !== null || p.proc.signalCode !== null) return
  p.proc.kill('SIGKILL')
  await p.exited
}

/** SIGTERM (graceful: the relay flushes dirty rooms) and wait. */
export async function terminate (p, timeoutMs = 60_000) {
  if (p.proc.exitCode !== null || p.proc.signalCode !== null) return p.exited
  p.proc.kill('SIGTERM')
  const timer = setTimeout(() => p.proc.kill('SIGKILL'), timeoutMs)
  const r = await p.exited
  clearTimeout(timer)
  return r
}

/** Flags for `sub` (`serve`, `relay` or `store`): `relay` takes no --token-key (the store checks tokens). */
export const relayArgs = ({ sub, port = 0, dataDir, extra = [] }) => [
  '--listen', `127.0.0.1:${port}`,
  '--data-dir', dataDir,
  '--secret', SECRET,
  ...(sub === 'relay' ? [] : ['--token-key', TOKEN_KEY]),
  ...extra
]

/** Creates the store row for `kind/id` (201, or 409 when it exists). */
export async function createResource (storeUrl, kind, id) {
  const res = await fetch(`${storeUrl}/resources/${kind}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${SECRET}`, 'content-type': 'application/json' },
    body: JSON.stringify({ id })
  })
  if (res.status !== 201 && res.status !== 409) throw new Error(`POST /resources/${kind}: ${res.status} ${await res.text()}`)
}

/** The store's snapshot bytes for kind/id, or null on 404. */
export async function loadSnapshot (storeUrl, kind, id) {
  const res = await fetch(`${storeUrl}/snapshots/${kind}/${id}`, { headers: { authorization: `Bearer ${SECRET}` } })
  if (res.status === 404) return null
  if (res.status !== 200) throw new Error(`GET /snapshots/${kind}/${id}: ${res.status} ${await res.text()}`)
  return { bytes: new Uint8Array(await res.arrayBuffer()), etag: res.headers.get('etag') }
}

/** GET /rooms/{kind}/{id}/durable → decoded JSON (markers as bytes), or null. */
export async function durable (relayUrl, kind, id) {
  const res = await fetch(`${relayUrl}/rooms/${kind}/${id}/durable`)
  if (res.status !== 200) throw new Error(`GET /durable: ${res.status} ${await res.text()}`)
  const j = await res.json()
  const b = (s) => (s == null ? null : new Uint8Array(Buffer.from(s, 'base64url')))
  return { relay: b(j.relay), store: b(j.store), storeSnapshotId: j.storeSnapshotId, savedAt: j.savedAt }
}

/** GET /rooms/{kind}/{id}/state → update bytes, or null when the room is not live (404). */
export async function liveState (relayUrl, kind, id) {
  const res = await fetch(`${relayUrl}/rooms/${kind}/${id}/state`)
  if (res.status === 404) return null
  if (res.status !== 200) throw new Error(`GET /state: ${res.status} ${await res.text()}`)
  return new Uint8Array(await res.arrayBuffer())
}
