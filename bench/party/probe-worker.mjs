// A tiny Worker + SQLite-backed Durable Object for checking party/serve.mjs and for probing what
// workerd (through Miniflare) does: storage surviving kill -9, value and row size limits, alarms,
// WebSocket message sizes, hibernation / eviction. Used by bench/party/selftest.mjs.
// Run: node party/serve.mjs --script bench/party/probe-worker.mjs --class Probe --binding PROBE --persist DIR
//
// Routes (all under /c/<room>/):
//   GET  count                -> {count, instance}       POST incr -> {count}
//   POST sql-put?n=BYTES      one row of an n-byte BLOB  (error text on failure)
//   POST kv-put?n=BYTES       ctx.storage.put of an n-byte Uint8Array
//   GET  params?n=N           one SQL statement with N bound parameters
//   GET  stmt?n=BYTES         one SQL statement n bytes long
//   POST alarm?ms=N           ctx.storage.setAlarm(now + N)
//   GET  alarms               {fired, pending}
//   GET  ws (Upgrade)         hibernatable WebSocket (ctx.acceptWebSocket): a binary message of
//                             n bytes is answered with JSON {got: n, instance}; the text
//                             message "send:N" is answered with one N-byte binary message
//   GET  ws-plain (Upgrade)   the same with a non-hibernatable socket (server.accept())

import { DurableObject } from 'cloudflare:workers';

export class Probe extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.instance = crypto.randomUUID().slice(0, 8);
    this.sql = ctx.storage.sql;
    this.sql.exec('CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v INTEGER)');
    this.sql.exec('CREATE TABLE IF NOT EXISTS blobs (id INTEGER PRIMARY KEY, b BLOB)');
    console.log(`probe: constructed instance ${this.instance}`);
  }

  get(k) {
    const r = this.sql.exec('SELECT v FROM kv WHERE k = ?', k).toArray()[0];
    return r ? r.v : 0;
  }

  bump(k) {
    this.sql.exec(
      'INSERT INTO kv (k, v) VALUES (?, 1) ON CONFLICT(k) DO UPDATE SET v = v + 1', k);
    return this.get(k);
  }

  async fetch(req) {
    const url = new URL(req.url);
    const op = url.pathname.split('/')[3] ?? '';
    const n = Number(url.searchParams.get('n') ?? 0);
    const json = (o) => Response.json({ ...o, instance: this.instance });
    try {
      switch (op) {
        case 'count':
          return json({ count: this.get('count') });
        case 'incr':
          return json({ count: this.bump('count') });
        case 'sql-put':
          this.sql.exec('INSERT OR REPLACE INTO blobs (id, b) VALUES (1, ?)', new Uint8Array(n));
          return json({ ok: true, n });
        case 'params': { // one statement with n bound parameters
          const q = 'SELECT 1 AS s WHERE 1 IN (' + Array.from({ length: n }, () => '?').join(',') + ')';
          const r = this.sql.exec(q, ...Array.from({ length: n }, () => 1)).one();
          return json({ ok: r.s === 1, n });
        }
        case 'stmt': { // one statement of n bytes (padded with a comment)
          const q = 'SELECT 1 AS one /*' + 'x'.repeat(Math.max(0, n - 22)) + '*/';
          this.sql.exec(q).one();
          return json({ ok: true, n: q.length });
        }
        case 'kv-put':
          await this.ctx.storage.put('blob', new Uint8Array(n));
          return json({ ok: true, n });
        case 'alarm': {
          const at = Date.now() + Number(url.searchParams.get('ms') ?? 500);
          await this.ctx.storage.setAlarm(at);
          return json({ at });
        }
        case 'alarms':
          return json({ fired: this.get('alarms'), pending: await this.ctx.storage.getAlarm() });
        case 'ws':
        case 'ws-plain': {
          if (req.headers.get('Upgrade') !== 'websocket') return new Response('want ws', { status: 426 });
          const [client, server] = Object.values(new WebSocketPair());
          if (op === 'ws') this.ctx.acceptWebSocket(server);
          else {
            server.accept();
            server.addEventListener('message', (e) => this.webSocketMessage(server, e.data));
          }
          return new Response(null, { status: 101, webSocket: client });
        }
        default:
          return new Response('no such op', { status: 404 });
      }
    } catch (e) {
      return Response.json({ ok: false, error: String(e?.message ?? e), instance: this.instance }, { status: 500 });
    }
  }

  async alarm() {
    const fired = this.bump('alarms');
    console.log(`probe: alarm fired (${fired}) in instance ${this.instance}`);
  }

  webSocketMessage(ws, msg) {
    if (typeof msg === 'string' && msg.startsWith('send:')) {
      const n = Number(msg.slice(5));
      try {
        ws.send(new Uint8Array(n));
      } catch (e) {
        ws.send(JSON.stringify({ sendError: String(e?.message ?? e) }));
      }
      return;
    }
    const got = typeof msg === 'string' ? msg.length : msg.byteLength;
    ws.send(JSON.stringify({ got, instance: this.instance }));
  }

  webSocketClose(ws, code, reason) {
    console.log(`probe: ws closed ${code} ${reason}`);
  }
}

export default {
  async fetch(req, env) {
    const url = new URL(req.url);
    const [, c, room] = url.pathname.split('/');
    if (c !== 'c' || !room) return new Response('probe worker: /c/<room>/<op>', { status: 404 });
    return env.PROBE.get(env.PROBE.idFromName(room)).fetch(req);
  },
};
