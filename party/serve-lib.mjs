// startWorker(): runs `node party/serve.mjs` as a child process (a Worker with one SQLite-backed
// Durable Object class on workerd, through Miniflare 4) and waits for its READY line.
//
//   const w = await startWorker({ script, persist, vars, className: 'YkeepRoom', binding: 'YKEEP' });
//   w.url          'http://127.0.0.1:PORT'      w.wsUrl  'ws://127.0.0.1:PORT'
//   w.workerdPid   the workerd process (CPU and VmHWM in /proc/<pid>/), w.pid the node parent
//   await w.kill9()  SIGKILL workerd, then the node parent: a crash of the runtime
//   await w.stop()   SIGTERM to the node parent (Miniflare disposes; it SIGKILLs workerd itself)
// A restart is another startWorker() on the same `persist` directory.
//
// Options: script (required), persist (dir; omitted = in-memory storage), vars ({KEY: 'value'}),
// port (0 = any), host ('127.0.0.1'), className ('YkeepRoom'), binding ('YKEEP'), assets (dir),
// compatDate, onLog (called with each stderr chunk of the child; default: copied to our stderr),
// timeoutMs (60000: time allowed until READY).

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SERVE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'serve.mjs');
const live = new Set();

// Whatever happens to the caller, leave no runtime behind (workerd also has PDEATHSIG set by
// serve.mjs when setpriv exists, so it dies with its parent).
process.on('exit', () => {
  for (const w of live) {
    for (const pid of [w.workerdPid, w.pid]) {
      try {
        if (pid) process.kill(pid, 'SIGKILL');
      } catch {}
    }
  }
});

/** True while `pid` exists and is not a zombie. */
export function pidAlive(pid) {
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return st[st.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

async function waitGone(pid, ms = 10000) {
  const end = Date.now() + ms;
  while (pidAlive(pid)) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

export async function startWorker({
  script,
  persist,
  vars = {},
  port = 0,
  host = '127.0.0.1',
  className = 'YkeepRoom',
  binding = 'YKEEP',
  assets,
  compatDate,
  onLog,
  timeoutMs = 60000,
} = {}) {
  if (!script) throw new Error('startWorker: script is required');
  const args = [SERVE, '--script', script, '--class', className, '--binding', binding,
    '--port', String(port), '--host', host];
  if (persist) args.push('--persist', persist);
  if (assets) args.push('--assets', assets);
  if (compatDate) args.push('--compat-date', compatDate);
  for (const [k, v] of Object.entries(vars)) args.push('--var', `${k}=${v}`);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const log = onLog ?? ((chunk) => process.stderr.write(chunk));
  child.stderr.on('data', (c) => log(c.toString()));
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));

  const w = {
    url: null,
    wsUrl: null,
    workerdPid: null,
    pid: child.pid,
    child,
    exited,
    async stop() {
      if (pidAlive(child.pid)) child.kill('SIGTERM');
      const t = setTimeout(() => w.kill9(), 10000);
      await exited;
      clearTimeout(t);
      if (w.workerdPid) await waitGone(w.workerdPid);
      live.delete(w);
    },
    async kill9() {
      if (w.workerdPid) {
        try {
          process.kill(w.workerdPid, 'SIGKILL');
        } catch {}
      }
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {}
      await exited;
      if (w.workerdPid) await waitGone(w.workerdPid);
      live.delete(w);
    },
  };
  live.add(w);

  await new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => {
      w.kill9();
      reject(new Error(`serve.mjs gave no READY in ${timeoutMs} ms`));
    }, timeoutMs);
    child.stdout.on('data', (c) => {
      buf += c.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        let m;
        if ((m = /^WORKERD_PID (\d+)$/.exec(line))) w.workerdPid = Number(m[1]);
        else if ((m = /^READY (\S+)$/.exec(line))) {
          w.url = m[1].replace(/\/$/, '');
          w.wsUrl = w.url.replace(/^http/, 'ws');
          clearTimeout(timer);
          resolve();
        }
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      live.delete(w);
      reject(new Error(`serve.mjs exited before READY (code ${code}, signal ${signal})`));
    });
  });
  return w;
}
