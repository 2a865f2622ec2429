#!/usr/bin/env node
// Checks party/serve.mjs + party/serve-lib.mjs on the real workerd with bench/party/probe-worker.mjs,
// and prints what this workerd does at the edges (limits, alarms, hibernation, kill -9).
//   node bench/party/selftest.mjs [--idle 15] [--quick]
// Exit code 0 when the checks marked CHECK pass; the PROBE lines are observations.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { startWorker, pidAlive } from '../../party/serve-lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const script = path.join(here, 'probe-worker.mjs');
const argv = process.argv.slice(2);
const idleS = Number(argv[argv.indexOf('--idle') + 1] || 0) || 15;
const quick = argv.includes('--quick');
const persist = fs.mkdtempSync(path.join(os.tmpdir(), 'ykeep-party-selftest-'));
const logs = [];
const opts = { script, persist, className: 'Probe', binding: 'PROBE', onLog: (s) => logs.push(s) };
let failed = 0;
const check = (ok, what) => {
  console.log(`${ok ? 'CHECK ok  ' : 'CHECK FAIL'} ${what}`);
  if (!ok) failed++;
};
const probe = (what) => console.log(`PROBE      ${what}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const ms = (t0) => (performance.now() - t0).toFixed(0);

async function call(w, room, op, method = 'GET') {
  const r = await fetch(`${w.url}/c/${room}/${op}`, { method });
  const t = await r.text();
  try {
    return { status: r.status, ...JSON.parse(t) };
  } catch {
    return { status: r.status, text: t };
  }
}

function openWs(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { maxPayload: 256 * 1024 * 1024 });
    ws.binaryType = 'nodebuffer';
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** Sends one message and waits for one reply or a close. */
function roundTrip(ws, data, timeout = 10000) {
  return new Promise((resolve) => {
    const done = (v) => {
      clearTimeout(t);
      ws.off('message', onMsg);
      ws.off('close', onClose);
      resolve(v);
    };
    const onMsg = (m, isBinary) => done(isBinary ? { bytes: m.length } : JSON.parse(m.toString()));
    const onClose = (code, reason) => done({ closed: code, reason: reason.toString() });
    const t = setTimeout(() => done({ timeout: true }), timeout);
    ws.on('message', onMsg);
    ws.on('close', onClose);
    ws.send(data);
  });
}

let t0 = performance.now();
let w = await startWorker(opts);
check(w.url.startsWith('http://127.0.0.1:') && pidAlive(w.workerdPid), `READY ${w.url}, WORKERD_PID ${w.workerdPid} (${ms(t0)} ms to READY, fresh dir)`);
check(fs.readFileSync(`/proc/${w.workerdPid}/cmdline`, 'utf8').includes('workerd'), 'WORKERD_PID names a workerd process');

// 1. Acknowledged writes survive kill -9.
for (let i = 0; i < 100; i++) await call(w, 'r1', 'incr', 'POST');
// Then a stream of increments, killed mid-way: every acknowledged one must survive.
let acked = 0;
let stopFlood = false;
const flood = (async () => {
  while (!stopFlood) {
    try {
      const r = await call(w, 'r1', 'incr', 'POST');
      if (r.count) acked = r.count;
    } catch {
      break;
    }
  }
})();
await sleep(300);
await w.kill9();
stopFlood = true;
await flood;
check(!pidAlive(w.workerdPid), 'kill9(): workerd gone');
t0 = performance.now();
w = await startWorker(opts);
const restartMs = ms(t0);
const c = await call(w, 'r1', 'count');
check(c.count >= acked && acked >= 100, `after kill -9 + restart on the same dir (${restartMs} ms to READY): count ${c.count} >= last acknowledged ${acked} (output gate: a reply is sent only once its write is durable)`);
probe(`unacknowledged increments that still landed: ${c.count - acked} (0 or 1 expected: the one in flight)`);

// 2. Storage size limits.
// workerd here refuses a record over 2,200,000 bytes (SQLITE_TOOBIG); Cloudflare documents 2 MB.
for (const n of [2 * (1 << 20), 2199994, 2199995]) {
  const r = await call(w, 'r2', `sql-put?n=${n}`, 'POST');
  probe(`SQLite BLOB of ${n} bytes in one row: ${r.ok ? 'ok' : 'REFUSED: ' + r.error}`);
}
for (const n of [(128 << 10) + 1, 2 * (1 << 20), 2199975, 2199976]) {
  const r = await call(w, 'r2', `kv-put?n=${n}`, 'POST');
  probe(`ctx.storage.put of ${n} bytes (SQLite-backed KV API): ${r.ok ? 'ok' : 'REFUSED: ' + r.error}`);
}

for (const n of [100, 101]) {
  const r = await call(w, 'r2', `params?n=${n}`);
  probe(`SQL statement with ${n} bound parameters: ${r.ok ? 'ok' : 'REFUSED: ' + (r.error ?? r.text)}`);
}
for (const n of [100000, 100100]) {
  const r = await call(w, 'r2', `stmt?n=${n}`);
  probe(`SQL statement of ${n} bytes: ${r.ok ? 'ok' : 'REFUSED: ' + (r.error ?? r.text)}`);
}

// 3. WebSocket message sizes, both directions. Over 32 MiB workerd closes with 1009; `ws` reports
// the close only once the TCP connection ends (~10 s later on a hibernatable socket).
for (const kind of ['ws', 'ws-plain']) {
  for (const n of [1 << 20, (1 << 20) + 1, 16 << 20, 32 << 20, (32 << 20) + 1, 64 << 20]) {
    const ws = await openWs(`${w.wsUrl}/c/r3/${kind}`);
    const r = await roundTrip(ws, Buffer.alloc(n), 15000);
    probe(`${kind}: client->server binary message of ${n} bytes: ${r.got === n ? 'delivered' : JSON.stringify(r)}`);
    ws.terminate();
  }
  for (const n of [1 << 20, 16 << 20, (32 << 20) + 1, 64 << 20]) {
    const ws = await openWs(`${w.wsUrl}/c/r3/${kind}`);
    const r = await roundTrip(ws, `send:${n}`);
    probe(`${kind}: server->client binary message of ${n} bytes: ${r.bytes === n ? 'delivered' : JSON.stringify(r)}`);
    ws.terminate();
  }
}

// 4. Alarms: fire; and one set just before kill -9 fires after the restart.
await call(w, 'r4', 'alarm?ms=200', 'POST');
await sleep(1000);
let a = await call(w, 'r4', 'alarms');
check(a.fired === 1, `alarm set 200 ms ahead fired (fired=${a.fired})`);
await call(w, 'r4', 'alarm?ms=1500', 'POST');
await w.kill9();
w = await startWorker(opts);
await sleep(3000);
a = await call(w, 'r4', 'alarms');
probe(`alarm set 1.5 s ahead, then kill -9 and restart (nothing touches the room): fired=${a.fired} (2 = it fired after the restart), pending=${a.pending}`);

// 5. Hibernation / eviction of an idle object.
if (!quick) {
  const hib = await openWs(`${w.wsUrl}/c/r5/ws`);
  const plain = await openWs(`${w.wsUrl}/c/r6/ws-plain`);
  const h1 = await roundTrip(hib, Buffer.alloc(1));
  const p1 = await roundTrip(plain, Buffer.alloc(1));
  console.log(`(idle ${idleS} s to see whether workerd evicts the objects)`);
  await sleep(idleS * 1000);
  const h2 = await roundTrip(hib, Buffer.alloc(1));
  const p2 = await roundTrip(plain, Buffer.alloc(1));
  probe(`hibernatable socket (ctx.acceptWebSocket), idle ${idleS} s: instance ${h1.instance} -> ${h2.instance} (${h1.instance === h2.instance ? 'same object, not evicted' : 'NEW object: evicted, the socket survived hibernation'})`);
  probe(`plain socket (accept()), idle ${idleS} s: instance ${p1.instance} -> ${p2.instance} (${p1.instance === p2.instance ? 'same object' : 'NEW object'}${p2.closed ? ', closed ' + p2.closed : ''})`);
  hib.terminate();
  plain.terminate();
}

// 6. stop() (SIGTERM) timing; what a dead runtime looks like to a connected client.
const ws = await openWs(`${w.wsUrl}/c/r7/ws`);
const closed = new Promise((r) => {
  ws.on('close', (code, reason) => r({ code, reason: reason.toString() }));
  ws.on('error', (e) => r({ error: e.message }));
});
const fetchDuring = fetch(`${w.url}/c/r7/count`).then((r) => r.status, (e) => `error ${e.cause?.code ?? e.message}`);
t0 = performance.now();
await w.kill9();
const cl = await closed;
probe(`an open WebSocket when workerd is SIGKILLed: ${JSON.stringify(cl)} after ${ms(t0)} ms; a fetch in flight: ${await fetchDuring}`);
w = await startWorker(opts);
t0 = performance.now();
await w.stop();
check(!pidAlive(w.pid) && !pidAlive(w.workerdPid), `stop(): node parent and workerd gone in ${ms(t0)} ms`);
const codes = await w.exited;
check(codes.code === 0, `serve.mjs exit code after SIGTERM: ${codes.code}`);

// 7. serve.mjs exits non-zero when workerd dies under it.
w = await startWorker(opts);
process.kill(w.workerdPid, 'SIGKILL');
const ex = await w.exited;
check(ex.code === 3, `workerd SIGKILLed alone: serve.mjs exits with code ${ex.code} (3 expected), message: ${logs.join('').split('\n').filter((l) => l.includes('died')).pop()}`);
await w.kill9();

fs.rmSync(persist, { recursive: true, force: true });
console.log(failed ? `${failed} check(s) FAILED` : 'all checks passed');
process.exit(failed ? 1 : 0);
