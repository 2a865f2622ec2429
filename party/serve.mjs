#!/usr/bin/env node
// Runs one Worker (ES module) with one SQLite-backed Durable Object class on the real `workerd`
// runtime through Miniflare 4, for tests, benchmarks and a dev command.
//
//   node party/serve.mjs --script <worker.mjs> [--class YkeepRoom] [--binding YKEEP]
//        [--persist DIR] [--port 0] [--host 127.0.0.1] [--var KEY=VALUE ...] [--assets DIR]
//        [--compat-date 2025-01-01] [--log-requests]
//
// stdout carries exactly two lines, in this order, once the runtime answers:
//   WORKERD_PID <pid>   the workerd child process (kill -9 it to crash the runtime)
//   READY <url>         e.g. READY http://127.0.0.1:41234 (no trailing slash)
// Everything else (workerd's own output, the Worker's console.*, Miniflare's log) goes to stderr.
// SIGTERM / SIGINT: dispose Miniflare (which SIGKILLs workerd: Miniflare has no gentler stop) and
// exit 0. If workerd dies on its own (or is killed), exit 3 with a message: Miniflare 4 would
// otherwise quietly restart workerd on the same ports, which a crash test must not get.
//
// Modules: the script's static imports are collected by Miniflare; `*.js`/`*.mjs` are ES modules,
// `*.wasm` is CompiledWasm (`import wasm from './x_bg.wasm'` gives a WebAssembly.Module),
// `*.txt`/`*.html` Text, `*.bin` Data.
// Durable Object storage persists under DIR when --persist is given (else it is in memory).
// --assets DIR: static files (Workers Static Assets, as `wrangler dev` serves them): a request
// whose path names a file under DIR gets the file; any other request goes to the Worker.

import childProcess from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { syncBuiltinESMExports } from 'node:module';

const USAGE =
  'usage: node party/serve.mjs --script <worker.mjs> [--class YkeepRoom] [--binding YKEEP] ' +
  '[--persist DIR] [--port 0] [--host 127.0.0.1] [--var KEY=VALUE ...] [--assets DIR] ' +
  '[--compat-date 2025-01-01] [--log-requests]';

function die(msg, code = 2) {
  process.stderr.write(`serve.mjs: ${msg}\n`);
  process.exit(code);
}

function parseArgs(argv) {
  const o = {
    script: null,
    className: 'YkeepRoom',
    binding: 'YKEEP',
    persist: null,
    port: 0,
    host: '127.0.0.1',
    vars: {},
    assets: null,
    compatDate: '2025-01-01',
    logRequests: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) die(`${a} needs a value\n${USAGE}`);
      return argv[++i];
    };
    switch (a) {
      case '--script': o.script = val(); break;
      case '--class': o.className = val(); break;
      case '--binding': o.binding = val(); break;
      case '--persist': o.persist = val(); break;
      case '--port': o.port = Number(val()); break;
      case '--host': o.host = val(); break;
      case '--assets': o.assets = val(); break;
      case '--compat-date': o.compatDate = val(); break;
      case '--log-requests': o.logRequests = true; break;
      case '--var': {
        const kv = val();
        const eq = kv.indexOf('=');
        if (eq <= 0) die(`--var wants KEY=VALUE, got ${JSON.stringify(kv)}`);
        o.vars[kv.slice(0, eq)] = kv.slice(eq + 1);
        break;
      }
      case '-h':
      case '--help':
        process.stdout.write(USAGE + '\n');
        process.exit(0);
      default:
        die(`unknown argument ${JSON.stringify(a)}\n${USAGE}`);
    }
  }
  if (!o.script) die(USAGE);
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) die('--port wants 0..65535');
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const script = path.resolve(opts.script);
if (!fs.existsSync(script)) die(`no such script: ${script}`);
if (opts.assets && !fs.statSync(opts.assets, { throwIfNoEntry: false })?.isDirectory()) {
  die(`--assets ${opts.assets} is not a directory`);
}
if (opts.persist) fs.mkdirSync(opts.persist, { recursive: true });

// Watch the workerd child that Miniflare spawns: its pid, and its death. Miniflare calls
// `child_process.spawn` through the module object, so wrapping it here sees the call. When
// `setpriv` is there, workerd is started with PR_SET_PDEATHSIG=SIGKILL so that it cannot outlive
// this process even if this process is killed with SIGKILL (setpriv execs workerd: same pid).
let workerd = null; // the ChildProcess
let stopping = false;
const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => fs.existsSync(p));
const realSpawn = childProcess.spawn;
childProcess.spawn = function spawn(command, args, options) {
  const isWorkerd = typeof command === 'string' && /workerd/.test(path.basename(command));
  let child;
  if (isWorkerd && setpriv && Array.isArray(args)) {
    child = realSpawn.call(this, setpriv, ['--pdeathsig', 'KILL', '--', command, ...args], options);
  } else {
    child = realSpawn.apply(this, arguments);
  }
  if (isWorkerd) {
    workerd = child;
    // Registered before Miniflare's own 'exit' listener: exit before it can restart workerd.
    child.on('exit', (code, signal) => {
      if (stopping) return;
      process.stderr.write(
        `serve.mjs: workerd (pid ${child.pid}) died (${signal ? 'signal ' + signal : 'exit code ' + code}); exiting\n`,
      );
      process.exit(3);
    });
  }
  return child;
};
syncBuiltinESMExports();

const { Miniflare, Log, LogLevel } = await import('miniflare');

/** Miniflare's own log, to stderr (its default Log writes to stdout, which is ours). */
class StderrLog extends Log {
  log(message) {
    process.stderr.write(message + '\n');
  }
}

/** Finds the workerd child through /proc: a child of this process whose cmdline names workerd. */
function findWorkerdPid() {
  const mine = String(process.pid);
  for (const ent of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(ent)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${ent}/stat`, 'utf8');
      const ppid = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1];
      if (ppid !== mine) continue;
      const cmd = fs.readFileSync(`/proc/${ent}/cmdline`, 'utf8');
      if (cmd.includes('workerd')) return Number(ent);
    } catch {
      // raced with an exiting process
    }
  }
  return null;
}

const mfOptions = {
  modules: true,
  scriptPath: script,
  modulesRoot: path.dirname(script),
  modulesRules: [
    { type: 'ESModule', include: ['**/*.js', '**/*.mjs'] },
    { type: 'CompiledWasm', include: ['**/*.wasm'] },
    { type: 'Text', include: ['**/*.txt', '**/*.html'] },
    { type: 'Data', include: ['**/*.bin'] },
  ],
  compatibilityDate: opts.compatDate,
  compatibilityFlags: ['nodejs_compat'],
  durableObjects: { [opts.binding]: { className: opts.className, useSQLite: true } },
  durableObjectsPersist: opts.persist ? path.resolve(opts.persist) : false,
  bindings: opts.vars,
  host: opts.host,
  port: opts.port,
  logRequests: opts.logRequests,
  log: new StderrLog(LogLevel.WARN),
  handleRuntimeStdio(stdout, stderr) {
    stdout.pipe(process.stderr);
    stderr.pipe(process.stderr);
  },
  telemetry: { enabled: false },
  cf: false, // a placeholder Request.cf: never fetch it from workers.cloudflare.com
};
if (opts.assets) {
  mfOptions.assets = { directory: path.resolve(opts.assets), routerConfig: { has_user_worker: true } };
}

let mf;
async function shutdown(sig) {
  if (stopping) return;
  stopping = true;
  try {
    await mf?.dispose();
  } catch (e) {
    process.stderr.write(`serve.mjs: dispose on ${sig}: ${e?.message ?? e}\n`);
  }
  process.exit(0);
}

try {
  mf = new Miniflare(mfOptions);
  // Miniflare's exit hook answers SIGTERM/SIGINT with process.exit(143/130) at once; replace it
  // (its 'exit' listener stays) so that a stop disposes and exits 0.
  for (const sig of ['SIGTERM', 'SIGINT']) {
    process.removeAllListeners(sig);
    process.on(sig, () => shutdown(sig));
  }
  const url = await mf.ready;
  const pid = findWorkerdPid() ?? workerd?.pid;
  if (!pid) die('workerd started but its pid was not found under /proc', 4);
  process.stdout.write(`WORKERD_PID ${pid}\n`);
  process.stdout.write(`READY ${url.origin}\n`);
} catch (e) {
  stopping = true;
  try {
    await mf?.dispose();
  } catch {}
  die(`Miniflare failed to start: ${e?.stack ?? e}`, 1);
}

// If the spawn hook did not catch workerd (a future Miniflare spawning differently), poll.
if (!workerd) {
  const pid = findWorkerdPid();
  setInterval(() => {
    if (stopping || !pid) return;
    let alive = false;
    try {
      alive = !/^\S+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
    } catch {}
    if (!alive) {
      process.stderr.write(`serve.mjs: workerd (pid ${pid}) is gone; exiting\n`);
      process.exit(3);
    }
  }, 100);
}
