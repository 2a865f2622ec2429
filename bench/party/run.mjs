#!/usr/bin/env node
// `scripts/bench party`: Yjs rooms hosted in a Cloudflare Durable Object on the real workerd
// (Miniflare 4, party/serve.mjs), ykeep's host (party/dist/worker.mjs, when built) against the
// baseline a PartyKit user writes today (bench/party/yserver-worker.ts: y-partyserver 2.2 YServer
// saving Y.encodeStateAsUpdate to the object's SQLite storage with y-partyserver's debounce).
//
//   node bench/party/run.mjs [--runs 3] [--updates N] [--readers 2] [--burst 5000]
//        [--hosts y-partyserver,ykeep] [--kill-after 0,3000] [--out party] [--no-write]
//        [--ykeep-path /rooms/document/{room}] [--ykeep-var KEY=VALUE ...]
//        [--ykeep-store-url URL --ykeep-secret S]   (default: a fresh `ykeep-relay store` per run)
//
// a) raw blast: one writer sends the trace's updates as raw y-sync Update frames as fast as the
//    socket drains; R readers on raw WebSockets (after SyncStep1/SyncStep2) stamp arrivals.
//    updates/s = updates / (last arrival at the slowest reader - first send); echo latency =
//    arrival - send over every (update, reader); workerd CPU (utime+stime) and VmHWM from /proc.
// b) kill after burst: a burst of B updates; once every reader holds all of them (each was
//    forwarded), workerd is SIGKILLed at once (0) and, in a second run, 3000 ms later (past
//    y-partyserver's 2 s debounce; --kill-after sets the list), restarted on the same
//    persist dir, and a fresh client's SyncStep2 shows how many of the burst the room kept.
// Runs are interleaved (run k of every host before run k+1); a fresh runtime and a fresh persist
// dir for every run. Results: bench/results/<out>.json and .md (only with the real trace and
// without --no-write).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import * as Y from 'yjs';
import { startWorker } from '../../party/serve-lib.mjs';
import { bundleYServer, ROOT } from './bundle.mjs';
import {
  loadTrace, syntheticTrace, buildWorkload, textAfter, parseSync, progressParts, progressOf,
  SYNC_STEP1_EMPTY, dataDir,
} from './trace.mjs';

const ATTRIBUTION =
  'Traces: automerge-paper by Martin Kleppmann (josephg/editing-traces, from automerge/automerge-perf), ' +
  'licensed CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/).';

// ---------------------------------------------------------------- options
function parseArgs(argv) {
  const o = {
    runs: 3, updates: null, readers: 2, burst: 5000, hosts: 'y-partyserver,ykeep',
    killAfter: '0,3000', out: 'party', write: true, ykeepPath: '/rooms/document/{room}', ykeepVars: {},
    ykeepStoreUrl: null, ykeepSecret: 'bench-secret',
    stallS: 60,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => argv[++i];
    switch (a) {
      case '--runs': o.runs = Number(v()); break;
      case '--updates': o.updates = Number(v()); break;
      case '--readers': o.readers = Number(v()); break;
      case '--burst': o.burst = Number(v()); break;
      case '--hosts': case '--servers': o.hosts = v(); break;
      case '--kill-after': o.killAfter = v(); break;
      case '--out': o.out = v(); break;
      case '--no-write': o.write = false; break;
      case '--ykeep-path': o.ykeepPath = v(); break;
      case '--ykeep-store-url': o.ykeepStoreUrl = v(); break;
      case '--ykeep-secret': o.ykeepSecret = v(); break;
      case '--stall': o.stallS = Number(v()); break;
      case '--ykeep-var': {
        const kv = v();
        const eq = kv.indexOf('=');
        o.ykeepVars[kv.slice(0, eq)] = kv.slice(eq + 1);
        break;
      }
      case '-h': case '--help':
        console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1).filter((l, i, a) => a.slice(0, i + 1).every((x) => x.startsWith('//'))).join('\n'));
        process.exit(0);
      default:
        console.error(`run.mjs: unknown argument ${a}`);
        process.exit(2);
    }
  }
  o.killAfter = o.killAfter.split(',').filter(Boolean).map(Number);
  return o;
}
const opt = parseArgs(process.argv.slice(2));
const log = (...a) => console.error(...a);

// ---------------------------------------------------------------- /proc
const CLK_TCK = 100;
function cpuSeconds(pid) {
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK; // utime, stime (fields 14, 15)
  } catch {
    return NaN;
  }
}
function statusKb(pid, key) {
  try {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}
function machine() {
  let cpu = '';
  try {
    cpu = /^model name\s*:\s*(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '';
  } catch {}
  return `${os.availableParallelism()} cores, ${cpu}`;
}
const nowUtc = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

// ---------------------------------------------------------------- hosts
async function hostList() {
  const names = opt.hosts.split(',').filter(Boolean);
  const hosts = [];
  for (const name of names) {
    if (name === 'y-partyserver' || name === 'yserver') {
      hosts.push({
        name: 'y-partyserver',
        describe: 'y-partyserver 2.2 YServer (partyserver 0.5), onSave = Y.encodeStateAsUpdate into DO SQLite, ' +
          "y-partyserver's debounced save with its defaults (2 s wait, 10 s max wait)",
        script: await bundleYServer(),
        className: 'Document',
        binding: 'Document',
        path: (room) => `/parties/document/${room}`,
        vars: {},
      });
    } else if (name === 'ykeep') {
      const script = path.join(ROOT, 'party/dist/worker.mjs');
      if (!fs.existsSync(script)) {
        log(`SKIPPING host ykeep: ${path.relative(ROOT, script)} is not built (node party/build.mjs); measuring the baseline alone`);
        continue;
      }
      const relayBin = process.env.YKEEP_RELAY_BIN || path.join(ROOT, 'target/release/ykeep-relay');
      if (!opt.ykeepStoreUrl && !fs.existsSync(relayBin)) {
        log(`SKIPPING host ykeep: its store (${path.relative(ROOT, relayBin)} store) is not built ` +
          '(cargo build --release -p ykeep-relay), and no --ykeep-store-url was given');
        continue;
      }
      const shown = { YKEEP_DEV_ALLOW_ALL: 'true', ...opt.ykeepVars };
      hosts.push({
        name: 'ykeep',
        describe: `ykeep YkeepRoom Durable Object (party/dist/worker.mjs), vars ${JSON.stringify(shown)}; ` +
          (opt.ykeepStoreUrl ? `store at ${opt.ykeepStoreUrl}` : 'its snapshot store: `ykeep-relay store` on 127.0.0.1 (a fresh one per run, not in the CPU/RSS figures)'),
        script,
        className: 'YkeepRoom',
        binding: 'YKEEP',
        path: (room) => opt.ykeepPath.replace('{room}', room),
        vars: { YKEEP_DEV_ALLOW_ALL: 'true', ...opt.ykeepVars },
        setup: opt.ykeepStoreUrl
          ? async () => ({ vars: { YKEEP_STORE_URL: opt.ykeepStoreUrl, YKEEP_SECRET: opt.ykeepSecret }, cleanup: async () => {} })
          : () => startStore(relayBin),
      });
    } else {
      log(`run.mjs: unknown host ${name} (y-partyserver, ykeep)`);
      process.exit(2);
    }
  }
  return hosts;
}

/** A `ykeep-relay store` on 127.0.0.1 with a fresh data dir (the ykeep host saves snapshots to it). */
async function startStore(bin) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ykeep-party-store-'));
  const secret = 'bench-secret';
  const child = spawn(bin, ['store', '--listen', '127.0.0.1:0', '--data-dir', dir, '--secret', secret,
    '--token-key', 'bench-token-key', '--auto-create'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, YKEEP_LOG: 'warn' } });
  const errs = [];
  child.stderr.on('data', (c) => errs.push(c.toString()));
  const url = await new Promise((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (c) => {
      buf += c.toString();
      const m = /ykeep-relay listening on (http:\/\/\S+)/.exec(buf);
      if (m) resolve(m[1].replace(/\/$/, ''));
    });
    child.on('exit', (code) => reject(new Error(`ykeep-relay store exited (${code}): ${errs.join('').slice(-500)}`)));
  });
  child.stdout.resume();
  return {
    vars: { YKEEP_STORE_URL: url, YKEEP_SECRET: secret },
    cleanup: async () => {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function startHost(host, persist, extraVars = {}) {
  const lines = [];
  const w = await startWorker({
    script: host.script, persist, vars: { ...host.vars, ...extraVars }, className: host.className, binding: host.binding,
    onLog: (s) => {
      lines.push(s);
      if (lines.length > 200) lines.shift();
      if (process.env.PARTY_BENCH_VERBOSE) process.stderr.write(`[${host.name}] ${s}`);
    },
  });
  w.logTail = () => lines.join('').split('\n').filter(Boolean).slice(-8).join('\n');
  return w;
}

// ---------------------------------------------------------------- connections
/** A raw y-sync connection: SyncStep1 sent, resolved when SyncStep2 arrives. */
function syncConnect(url, timeoutMs = 30000) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 1 << 30 });
    const c = { ws, onUpdate: null, step2: null, connectMs: 0 };
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`no SyncStep2 from ${url} in ${timeoutMs} ms`));
    }, timeoutMs);
    ws.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    ws.on('close', (code) => {
      clearTimeout(timer);
      if (!c.step2) reject(new Error(`closed (${code}) before SyncStep2`));
    });
    ws.on('open', () => ws.send(SYNC_STEP1_EMPTY));
    ws.on('message', (data, isBinary) => {
      const now = performance.now();
      if (!isBinary) return;
      const m = parseSync(data);
      if (!m) return;
      if (m.step === 1 && !c.step2) {
        c.step2 = Uint8Array.from(m.payload);
        c.connectMs = now - t0;
        clearTimeout(timer);
        resolve(c);
      } else if (m.step === 2 && c.onUpdate) c.onUpdate(m.payload, now);
    });
  });
}

/** Per reader: arrival time and cumulative progress of each update message. */
class ReaderLog {
  constructor(keep) {
    this.t = [];
    this.p = [];
    this.clock = 0;
    this.del = 0;
    this.progress = 0;
    this.hash = crypto.createHash('sha1');
    this.bytes = keep ? [] : null;
    this.waiter = null;
    this.target = Infinity;
  }
  add(payload, now) {
    const [c, d] = progressParts(payload);
    if (c > this.clock) this.clock = c;
    this.del += d;
    this.progress = this.clock + this.del;
    this.t.push(now);
    this.p.push(this.progress);
    this.hash.update(payload);
    if (this.bytes) this.bytes.push(Uint8Array.from(payload));
    if (this.waiter && this.progress >= this.target) {
      const w = this.waiter;
      this.waiter = null;
      w();
    }
  }
  until(target) {
    this.target = target;
    if (this.progress >= target) return Promise.resolve();
    return new Promise((r) => (this.waiter = r));
  }
}

/** Sends frames[from, to) as fast as the socket drains; stamps sent[i]. */
async function pump(ws, frames, sent, from, to) {
  const HIGH = 64 * 1024;
  const sock = ws._socket;
  let i = from;
  while (i < to) {
    const end = Math.min(to, i + 256);
    for (; i < end; i++) {
      sent[i] = performance.now();
      ws.send(frames[i]);
    }
    if (ws.bufferedAmount > HIGH) await new Promise((r) => sock.once('drain', r));
    else await new Promise((r) => setImmediate(r));
  }
}

/** Resolves when every reader reached `target`, rejects when no reader got anything for stallS. */
function allReached(readers, target, stallS) {
  return new Promise((resolve, reject) => {
    let lastCount = -1;
    let lastChange = performance.now();
    const iv = setInterval(() => {
      const count = readers.reduce((a, r) => a + r.t.length, 0);
      if (count !== lastCount) {
        lastCount = count;
        lastChange = performance.now();
      } else if (performance.now() - lastChange > stallS * 1000) {
        clearInterval(iv);
        reject(new Error(`stalled: no message for ${stallS} s; readers at progress ${readers.map((r) => r.progress).join(',')} of ${target}`));
      }
    }, 250);
    Promise.all(readers.map((r) => r.until(target))).then(() => {
      clearInterval(iv);
      resolve();
    });
  });
}

function pct(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}
function median(xs) {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

function applyText(updates) {
  const doc = new Y.Doc();
  for (const u of updates) Y.applyUpdate(doc, u);
  return doc.getText('t').toString();
}

// ---------------------------------------------------------------- (a) raw blast
async function blastOnce(host, work, readersN) {
  const persist = fs.mkdtempSync(path.join(os.tmpdir(), `ykeep-party-${host.name}-`));
  const env = host.setup ? await host.setup() : { vars: {}, cleanup: async () => {} };
  const w = await startHost(host, persist, env.vars);
  const url = w.wsUrl + host.path('bench');
  const conns = [];
  try {
    const readers = [];
    for (let r = 0; r < readersN; r++) {
      const c = await syncConnect(url);
      const rl = new ReaderLog(r === 0);
      c.onUpdate = (p, now) => rl.add(p, now);
      conns.push(c);
      readers.push(rl);
    }
    const writer = await syncConnect(url); // reads (and drops) what it is sent, as a client does
    conns.push(writer);
    const rssStartKb = statusKb(w.workerdPid, 'VmRSS');
    const n = work.n;
    const total = work.progress[n - 1];
    const sent = new Float64Array(n);
    const cpu0 = cpuSeconds(w.workerdPid);
    const done = allReached(readers, total, opt.stallS);
    await pump(writer.ws, work.frames, sent, 0, n);
    await done;
    const cpu = cpuSeconds(w.workerdPid) - cpu0;
    const peakKb = statusKb(w.workerdPid, 'VmHWM');
    // Latency: update i is delivered by the first message whose cumulative progress >= progress[i].
    const lat = new Float64Array(n * readersN);
    let li = 0;
    let last = 0;
    for (const rl of readers) {
      let m = 0;
      for (let i = 0; i < n; i++) {
        while (rl.p[m] < work.progress[i]) m++;
        lat[li++] = rl.t[m] - sent[i];
      }
      last = Math.max(last, rl.t[m]);
    }
    lat.sort();
    // Checks (after timing): reader 0's bytes rebuild the expected text; the other streams equal it.
    const text = applyText(readers[0].bytes);
    const textOk = text === work.expectedText;
    const h0 = readers[0].hash.digest('hex');
    const same = readers.slice(1).every((r) => r.hash.digest('hex') === h0 && r.t.length === readers[0].t.length);
    const seconds = (last - sent[0]) / 1000;
    return {
      writer_s: (sent[n - 1] - sent[0]) / 1000,
      ok: textOk && same,
      note: textOk && same ? '' : `text_ok=${textOk} streams_identical=${same}`,
      updates: n,
      updates_per_s: n / seconds,
      seconds,
      p50_ms: pct(lat, 0.5),
      p99_ms: pct(lat, 0.99),
      cpu_s: cpu,
      cpu_us_per_update: (cpu / n) * 1e6,
      peak_rss_mb: peakKb / 1024,
      rss_at_start_mb: rssStartKb / 1024,
      messages: readers[0].t.length,
    };
  } catch (e) {
    return { ok: false, note: `${e.message}\n${w.logTail()}` };
  } finally {
    for (const c of conns) c.ws.terminate();
    await w.kill9(); // Miniflare's own stop SIGKILLs workerd too; this is the quicker one
    await env.cleanup();
    fs.rmSync(persist, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- (b) kill after burst
async function killOnce(host, work, readersN, burst, killAfterMs) {
  const persist = fs.mkdtempSync(path.join(os.tmpdir(), `ykeep-party-kill-${host.name}-`));
  const env = host.setup ? await host.setup() : { vars: {}, cleanup: async () => {} };
  let w = await startHost(host, persist, env.vars);
  const url = () => w.wsUrl + host.path('burst');
  const conns = [];
  try {
    const readers = [];
    for (let r = 0; r < readersN; r++) {
      const c = await syncConnect(url());
      const rl = new ReaderLog(false);
      c.onUpdate = (p, now) => rl.add(p, now);
      conns.push(c);
      readers.push(rl);
    }
    const writer = await syncConnect(url());
    conns.push(writer);
    const sent = new Float64Array(burst);
    const target = work.progress[burst - 1];
    const done = allReached(readers, target, opt.stallS);
    const t0 = performance.now();
    await pump(writer.ws, work.frames, sent, 0, burst);
    let forwarded = burst;
    try {
      await done;
    } catch (e) {
      const p = Math.min(...readers.map((r) => r.progress));
      forwarded = work.progress.findIndex((x) => x > p);
      if (forwarded < 0) forwarded = burst;
      log(`  ${host.name}: not every update reached every reader: ${e.message}`);
    }
    const burstMs = performance.now() - t0;
    if (killAfterMs > 0) await new Promise((r) => setTimeout(r, killAfterMs));
    await w.kill9();
    for (const c of conns) c.ws.terminate();
    conns.length = 0;
    let t = performance.now();
    w = await startHost(host, persist, env.vars);
    const restartMs = performance.now() - t;
    const c = await syncConnect(url());
    conns.push(c);
    const state = c.step2;
    const got = progressOf(state);
    let kept = 0;
    while (kept < burst && work.progress[kept] <= got) kept++;
    // The kept state must be exactly the first `kept` updates.
    const doc = new Y.Doc();
    Y.applyUpdate(doc, state);
    const prefixOk = doc.getText('t').toString() === textAfter(work, kept);
    return {
      ok: prefixOk, note: prefixOk ? '' : 'restarted room is not a prefix of the burst',
      burst, forwarded, kept, lost: forwarded - kept, kill_after_ms: killAfterMs,
      burst_ms: burstMs, restart_ms: restartMs, cold_sync_ms: c.connectMs, state_bytes: state.length,
    };
  } catch (e) {
    return { ok: false, note: `${e.message}\n${w.logTail()}`, burst, kill_after_ms: killAfterMs };
  } finally {
    for (const c of conns) c.ws.terminate();
    await w.kill9();
    await env.cleanup();
    fs.rmSync(persist, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- main
const hosts = await hostList();
if (hosts.length === 0) {
  log('run.mjs: no host to measure');
  process.exit(1);
}
let trace = loadTrace('automerge-paper');
const real = trace !== null;
if (!real) {
  log(`NOTE: ${path.join(dataDir(), 'automerge-paper.json.gz')} not found (set YKEEP_BENCH_DATA): ` +
    'using a seeded synthetic typing stream; results are printed, not written');
  trace = syntheticTrace(Math.max(opt.updates ?? 50000, opt.burst));
}
let t = performance.now();
const work = buildWorkload(trace, opt.updates ?? trace.txns.length);
const burst = Math.min(opt.burst, trace.txns.length);
const burstWork = burst <= work.n ? work : buildWorkload(trace, burst);
log(`${trace.name}: ${work.n} of ${trace.txns.length} updates pre-encoded with Yjs (${work.bytes} bytes) in ` +
  `${(performance.now() - t).toFixed(0)} ms; ${opt.readers} readers; ${opt.runs} interleaved runs; burst ${burst}`);

const blast = Object.fromEntries(hosts.map((h) => [h.name, []]));
const kills = Object.fromEntries(hosts.map((h) => [h.name, []]));
for (let run = 0; run < opt.runs; run++) {
  for (const h of hosts) {
    const r = await blastOnce(h, work, opt.readers);
    blast[h.name].push(r);
    log(r.ok
      ? `run ${run} blast ${h.name.padEnd(13)} ${r.updates_per_s.toFixed(0).padStart(7)} updates/s (writer done in ${r.writer_s.toFixed(1)} s of ${r.seconds.toFixed(1)} s)  p50 ${r.p50_ms.toFixed(1)} ms  p99 ${r.p99_ms.toFixed(1)} ms  cpu ${r.cpu_s.toFixed(2)} s  peak ${r.peak_rss_mb.toFixed(0)} MB  msgs ${r.messages}`
      : `run ${run} blast ${h.name}: FAILED ${r.note}`);
  }
  for (const h of hosts) {
    for (const ka of opt.killAfter) {
      const r = await killOnce(h, burstWork, opt.readers, burst, ka);
      kills[h.name].push(r);
      log(r.ok
        ? `run ${run} kill  ${h.name.padEnd(13)} burst ${r.burst} (${r.burst_ms.toFixed(0)} ms)  forwarded ${r.forwarded}  kill -9 after ${ka} ms  kept ${r.kept}  restart ${r.restart_ms.toFixed(0)} ms  cold sync ${r.cold_sync_ms.toFixed(1)} ms (${r.state_bytes} B)`
        : `run ${run} kill  ${h.name}: FAILED ${r.note}`);
    }
  }
}

// ---------------------------------------------------------------- report
const okOf = (xs) => xs.filter((x) => x.ok);
const med = (xs, k) => median(okOf(xs).map((x) => x[k]));
const yk = hosts.some((h) => h.name === 'ykeep');
let md = `# Yjs rooms in a Durable Object on workerd (\`scripts/bench party\`)\n\n` +
  `${nowUtc()}; ${machine()}; workerd ${workerdVersion()} through Miniflare ${pkgVersion('miniflare')}; ` +
  `${trace.name}, ${work.n} updates pre-encoded with Yjs (one per edit), one writer as fast as the socket drains ` +
  `(latency is queueing under saturation), ${opt.readers} readers on raw WebSockets; median of ${opt.runs} interleaved runs ` +
  `(a fresh workerd and persist dir per run).\n\n`;
md += `| host | updates/s | p50 echo ms | p99 echo ms | workerd CPU s | CPU µs/update | peak RSS MB |${yk ? ' ykeep ÷ this (updates/s) |' : ''} ok runs |\n`;
md += `|---|---|---|---|---|---|---|${yk ? '---|' : ''}---|\n`;
const rows = [];
const ykThr = yk ? med(blast.ykeep, 'updates_per_s') : NaN;
for (const h of hosts) {
  const b = blast[h.name];
  const row = {
    host: h.name, describe: h.describe, updates: work.n, readers: opt.readers,
    updates_per_s: med(b, 'updates_per_s'), p50_ms: med(b, 'p50_ms'), p99_ms: med(b, 'p99_ms'),
    cpu_s: med(b, 'cpu_s'), cpu_us_per_update: med(b, 'cpu_us_per_update'), peak_rss_mb: med(b, 'peak_rss_mb'),
    rss_at_start_mb: med(b, 'rss_at_start_mb'), ok_runs: okOf(b).length, runs: opt.runs, samples: b,
  };
  rows.push(row);
  md += `| ${h.name} | ${row.updates_per_s.toFixed(0)} | ${row.p50_ms.toFixed(1)} | ${row.p99_ms.toFixed(1)} | ` +
    `${row.cpu_s.toFixed(2)} | ${row.cpu_us_per_update.toFixed(1)} | ${row.peak_rss_mb.toFixed(0)} |` +
    `${yk ? ` ${(ykThr / row.updates_per_s).toFixed(2)} |` : ''} ${row.ok_runs}/${opt.runs} |\n`;
}
md += `\n**Kill -9 after a burst** (${burst} updates; workerd SIGKILLed the given ms after every reader holds every ` +
  `update (0 = at once), restarted on the same persist dir; a fresh client's SyncStep2 counted against the burst)\n\n`;
md += '| host | kill -9 after ms | forwarded to readers | kept after kill -9 (median) | kept min–max | restart to READY ms | cold SyncStep2 ms | ok runs |\n|---|---|---|---|---|---|---|---|\n';
const killRows = [];
for (const h of hosts) {
  for (const ka of opt.killAfter) {
    const ks = kills[h.name].filter((k) => k.kill_after_ms === ka);
    const ok = okOf(ks);
    const row = {
      host: h.name, burst, kill_after_ms: ka, forwarded: med(ks, 'forwarded'), kept: med(ks, 'kept'),
      kept_min: Math.min(...ok.map((k) => k.kept)), kept_max: Math.max(...ok.map((k) => k.kept)),
      restart_ms: med(ks, 'restart_ms'), cold_sync_ms: med(ks, 'cold_sync_ms'), ok_runs: ok.length,
      runs: ks.length, samples: ks,
    };
    killRows.push(row);
    md += `| ${h.name} | ${ka} | ${row.forwarded} | ${row.kept} | ${row.kept_min}–${row.kept_max} | ` +
      `${row.restart_ms.toFixed(0)} | ${row.cold_sync_ms.toFixed(1)} | ${row.ok_runs}/${row.runs} |\n`;
  }
}
md += '\nHosts:\n' + hosts.map((h) => `- **${h.name}**: ${h.describe}`).join('\n') + '\n';
md += '\nworkerd CPU = utime + stime of the workerd process over the blast; peak RSS = its VmHWM (whole runtime, ' +
  `${median(rows.map((r) => r.rss_at_start_mb)).toFixed(0)} MB of it before the first update). ` +
  'Updates are built in Node with Yjs from the trace (`bench/party/trace.mjs`), not by the Rust bench.\n';
if (real) md += `\n${ATTRIBUTION}\n`;
console.log(md);

if (real && opt.write) {
  const dir = process.env.YKEEP_BENCH_RESULTS || path.join(ROOT, 'bench/results');
  fs.mkdirSync(dir, { recursive: true });
  const out = {
    benchmark: 'party', at: nowUtc(), machine: machine(), workerd: workerdVersion(),
    miniflare: pkgVersion('miniflare'), 'y-partyserver': pkgVersion('y-partyserver'), trace: trace.name,
    updates: work.n, readers: opt.readers, runs: opt.runs, burst, rows, kill_after_burst: killRows,
    attribution: ATTRIBUTION,
  };
  fs.writeFileSync(path.join(dir, `${opt.out}.json`), JSON.stringify(out, null, 2));
  fs.writeFileSync(path.join(dir, `${opt.out}.md`), md);
  log(`wrote ${path.join(dir, opt.out)}.{json,md}`);
} else {
  log(real ? 'not written (--no-write)' : 'not written (synthetic workload)');
}
process.exit(0);

function pkgVersion(name) {
  try {
    return JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return '?';
  }
}
function workerdVersion() {
  return pkgVersion('@cloudflare/workerd-linux-64');
}
