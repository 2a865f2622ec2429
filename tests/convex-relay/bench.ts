// Save/load figures of the Convex functions under convex-test (in-process: no network, no
// real Convex; this measures ykeep's own work in the HTTP actions: validation, the Yjs
// snapshot, compare-and-set) on the automerge-paper trace (../shared/bench-data, CC BY 4.0,
// Martin Kleppmann).
//
//   node --expose-gc node_modules/vite-node/vite-node.mjs --config convex/vitest.config.mjs tests/convex-relay/bench.ts [-- --trace /work/shared/bench-data/automerge-paper.json.gz] [--rounds 20]
import { convexTest } from "convex-test";
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import * as Y from "yjs";
import schema from "../../convex/schema";
import { modules } from "../../convex/test.setup";
import { internal } from "../../convex/_generated/api";
import { checkUpdate } from "../../js/convex/yupdate";

const argv = process.argv.slice(2).filter((a) => a !== "--");
const opt = (name: string, dflt: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : dflt;
};
const tracePath = opt("--trace", "/work/shared/bench-data/automerge-paper.json.gz");
const rounds = Number(opt("--rounds", "20"));

type Trace = { endContent: string; txns: { patches: [number, number, string][] }[] };
const trace = JSON.parse(gunzipSync(readFileSync(tracePath)).toString("utf8")) as Trace;
const doc = new Y.Doc();
doc.clientID = 1;
const text = doc.getText("t");
for (const txn of trace.txns) {
  doc.transact(() => {
    for (const [pos, del, ins] of txn.patches) {
      if (del > 0) text.delete(pos, del);
      if (ins) text.insert(pos, ins);
    }
  });
}
if (text.toString() !== trace.endContent) throw new Error("trace replay does not match endContent");
const state = Y.encodeStateAsUpdate(doc) as Uint8Array<ArrayBuffer>;
console.log(`trace ${tracePath}: ${trace.txns.length} txns, state ${state.byteLength} bytes (v1)`);

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))];
const fmt = (xs: number[]) => `median ${pct(xs, 50).toFixed(1)} ms, p90 ${pct(xs, 90).toFixed(1)} ms`;

// The validation + Yjs snapshot alone (what every save pays in the action).
const check: number[] = [];
console.log(`Yjs snapshot marker kept on the row: ${checkUpdate(state).marker.byteLength} bytes`);
for (let i = 0; i < rounds; i++) {
  const t0 = performance.now();
  checkUpdate(state);
  check.push(performance.now() - t0);
}
// Heap of one applied doc (run node with --expose-gc for a clean figure).
const gc = (globalThis as { gc?: () => void }).gc;
gc?.();
const heapBefore = process.memoryUsage().heapUsed;
const keep = new Y.Doc();
Y.applyUpdate(keep, state);
gc?.();
const heapDoc = process.memoryUsage().heapUsed - heapBefore;

process.env.YKEEP_SECRET = "bench";
const t = convexTest(schema, modules);
const id = await t.mutation(internal.app.createResource, { kind: "document" });
const path = `/ykeep/snapshots/document/${id}`;
const saves: number[] = [];
const loads: number[] = [];
const started = performance.now();
for (let i = 0; i < rounds; i++) {
  let t0 = performance.now();
  const res = await t.fetch(path, { method: "POST", headers: { Authorization: "Bearer bench" }, body: state });
  if (res.status !== 200) throw new Error(`save ${res.status} ${await res.text()}`);
  await res.arrayBuffer();
  saves.push(performance.now() - t0);
  t0 = performance.now();
  const got = await t.fetch(path, { headers: { Authorization: "Bearer bench" } });
  const bytes = new Uint8Array(await got.arrayBuffer());
  if (got.status !== 200 || bytes.byteLength !== state.byteLength) throw new Error(`load ${got.status}`);
  loads.push(performance.now() - t0);
}
const total = (performance.now() - started) / 1000;
console.log(`checkUpdate (decode + apply + snapshot): ${fmt(check)}; a Y.Doc of this state takes ${gc ? `~${(heapDoc / 1e6).toFixed(0)} MB of heap` : "(run with --expose-gc to measure heap)"}`);
console.log(`save (no precondition, contains-check against the previous snapshot): ${fmt(saves)}`);
console.log(`load: ${fmt(loads)}`);
console.log(`${rounds} save+load rounds in ${total.toFixed(2)} s: ${((rounds * state.byteLength) / 1e6 / total).toFixed(1)} MB/s saved+loaded each way`);
