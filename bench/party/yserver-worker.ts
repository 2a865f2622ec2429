// The baseline for `scripts/bench party`: what a PartyKit / PartyServer user writes today to keep
// a Yjs doc in a Durable Object. A y-partyserver 2.2 `YServer` whose onLoad reads the doc from the
// object's own SQLite storage and whose onSave writes `Y.encodeStateAsUpdate(this.document)` back,
// called by y-partyserver's own debounced save with its defaults (no `callbackOptions` set:
// debounceWait 2000 ms, debounceMaxWait 10000 ms). Routing by partyserver's
// `routePartykitRequest`: /parties/document/<room> (binding `Document`, class `Document`).
// Nothing else is changed from the defaults (no hibernation: `static options` left as is).
//
// A SQLite record in a Durable Object holds at most 2 MB (workerd here refuses a record over
// 2,200,000 bytes with SQLITE_TOOBIG), so the state is stored in chunks of 1 MiB, replaced in one
// transaction.
//
// Bundled by bench/party/bundle.mjs (esbuild); run by party/serve.mjs
//   --class Document --binding Document.

import { routePartykitRequest } from 'partyserver';
import { YServer } from 'y-partyserver';
import * as Y from 'yjs';

const CHUNK = 1 << 20;

interface Env {
  Document: DurableObjectNamespace;
}

export class Document extends YServer<Env> {
  async onLoad(): Promise<void> {
    const sql = this.ctx.storage.sql;
    sql.exec('CREATE TABLE IF NOT EXISTS ydoc (seq INTEGER PRIMARY KEY, data BLOB NOT NULL)');
    const chunks = sql
      .exec<{ data: ArrayBuffer }>('SELECT data FROM ydoc ORDER BY seq')
      .toArray()
      .map((r) => new Uint8Array(r.data));
    if (chunks.length === 0) return;
    const total = chunks.reduce((n, c) => n + c.length, 0);
    const state = new Uint8Array(total);
    let off = 0;
    for (const c of chunks) {
      state.set(c, off);
      off += c.length;
    }
    Y.applyUpdate(this.document, state);
  }

  async onSave(): Promise<void> {
    const state = Y.encodeStateAsUpdate(this.document);
    const sql = this.ctx.storage.sql;
    this.ctx.storage.transactionSync(() => {
      sql.exec('DELETE FROM ydoc');
      for (let seq = 0, off = 0; off < state.length; seq++, off += CHUNK) {
        sql.exec('INSERT INTO ydoc (seq, data) VALUES (?, ?)', seq, state.subarray(off, off + CHUNK));
      }
    });
  }
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    return (
      (await routePartykitRequest(request, env as unknown as Record<string, unknown>)) ||
      new Response('Not found', { status: 404 })
    );
  },
} satisfies ExportedHandler<Env>;
