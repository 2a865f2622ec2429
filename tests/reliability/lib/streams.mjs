// Edit streams for the reliability drivers: per-agent lists of Yjs v1 updates, each with the
// state vector the agent's view must reach before it may send it (its causal dependencies).
//
//   { agents: [{ clientId, steps: [{ update: Uint8Array, deps: [[client, clock], ...] }] }],
//     endContent, source }
//
// Two sources: a seeded synthetic concurrent stream (runs everywhere) and the concurrent trace
// clownschool-concurrent.json.gz, replayed through its DAG in one forked Y.Doc per agent.
import * as Y from 'yjs'
import fs from 'node:fs'
import path from 'node:path'
import zlib from 'node:zlib'
import { makeRng } from './rng.mjs'

export const TEXT = 't'

const svPairs = (doc) => [...Y.decodeStateVector(Y.encodeStateVector(doc)).entries()]

/** Captures the update of one local transaction. */
function captureLocal (doc, fn) {
  let update = null
  const h = (u, origin) => { if (origin === 'local') update = update ? Y.mergeUpdates([update, u]) : u }
  doc.on('update', h)
  doc.transact(fn, 'local')
  doc.off('update', h)
  return update
}

const WORDS = ['alpha ', 'beta ', 'gamma ', 'δelta ', 'x', 'y', 'z', '\n', 'emoji🙂 ', 'lorem ', 'ipsum ']

/**
 * A seeded synthetic concurrent stream: `numAgents` agents each edit their own fork; now and
 * then an agent merges another agent's view (so later edits depend on it).
 */
export function syntheticStream ({ seed, numAgents = 4, edits = 1200, syncChance = 0.2 }) {
  const rng = makeRng(seed)
  const docs = Array.from({ length: numAgents }, (_, i) => {
    const d = new Y.Doc({ gc: true })
    d.clientID = 1000 + i
    return d
  })
  const agents = docs.map((d) => ({ clientId: d.clientID, steps: [] }))
  for (let n = 0; n < edits; n++) {
    const a = rng.int(0, numAgents - 1)
    const doc = docs[a]
    if (rng.chance(syncChance)) {
      const other = docs[rng.int(0, numAgents - 1)]
      if (other !== doc) Y.applyUpdate(doc, Y.encodeStateAsUpdate(other, Y.encodeStateVector(doc)), 'remote')
    }
    const deps = svPairs(doc)
    const text = doc.getText(TEXT)
    const len = text.length
    const update = captureLocal(doc, () => {
      if (len > 20 && rng.chance(0.3)) {
        const pos = rng.int(0, len - 1)
        const n = Math.min(rng.int(1, 6), len - pos)
        // Do not cut a surrogate pair in half: delete whole code units of the JS string.
        const s = text.toString()
        let start = pos; let end = pos + n
        if (start > 0 && isLowSurrogate(s.charCodeAt(start))) start--
        if (end < s.length && isLowSurrogate(s.charCodeAt(end))) end++
        text.delete(start, end - start)
      } else {
        const s = text.toString()
        let pos = rng.int(0, len)
        if (pos > 0 && pos < s.length && isLowSurrogate(s.charCodeAt(pos))) pos--
        text.insert(pos, rng.pick(WORDS))
      }
    })
    if (update) agents[a].steps.push({ update, deps })
  }
  const all = Y.mergeUpdates(agents.flatMap((a) => a.steps.map((s) => s.update)))
  const check = new Y.Doc()
  Y.applyUpdate(check, all)
  return { agents, endContent: check.getText(TEXT).toString(), source: `synthetic(seed=${seed}, agents=${numAgents}, edits=${edits})` }
}

const isLowSurrogate = (c) => c >= 0xdc00 && c <= 0xdfff

export function benchDataDir () {
  return process.env.YKEEP_BENCH_DATA || path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../../../shared/bench-data')
}

/** Loads the concurrent trace, or returns null (with the reason) when it is absent. */
export function loadConcurrentTrace (file = 'clownschool-concurrent.json.gz') {
  const p = path.join(benchDataDir(), file)
  if (!fs.existsSync(p)) return { trace: null, reason: `${p} not found (set YKEEP_BENCH_DATA)` }
  return { trace: JSON.parse(zlib.gunzipSync(fs.readFileSync(p))), path: p }
}

/**
 * Replays a concurrent trace's DAG: each agent keeps one forked Y.Doc; before transaction i the
 * agent's doc receives the updates of every ancestor of i it lacks, so its text is "the document
 * as that agent saw it after its parents", where the trace's positions apply.
 */
export function traceStream (trace, { limit } = {}) {
  const txns = limit ? trace.txns.slice(0, limit) : trace.txns
  const n = trace.numAgents
  const docs = Array.from({ length: n }, (_, i) => {
    const d = new Y.Doc({ gc: true })
    d.clientID = 2000 + i
    return d
  })
  const applied = Array.from({ length: n }, () => new Uint8Array(txns.length))
  const updates = new Array(txns.length)
  const agents = docs.map((d) => ({ clientId: d.clientID, steps: [] }))
  let astral = false
  for (let i = 0; i < txns.length; i++) {
    const tx = txns[i]
    const a = tx.agent
    const doc = docs[a]
    // Missing ancestors: walk up from the parents, stopping at what this agent already has
    // (the applied set is closed under ancestry).
    const missing = []
    const stack = [...tx.parents]
    while (stack.length) {
      const p = stack.pop()
      if (applied[a][p]) continue
      applied[a][p] = 1
      missing.push(p)
      for (const q of txns[p].parents) stack.push(q)
    }
    missing.sort((x, y) => x - y)
    if (missing.length) Y.applyUpdate(doc, Y.mergeUpdates(missing.map((p) => updates[p])), 'remote')
    const deps = svPairs(doc)
    const text = doc.getText(TEXT)
    const update = captureLocal(doc, () => {
      for (const [pos, del, ins] of tx.patches) {
        const s = astral ? text.toString() : null
        const at = astral ? cpToUnit(s, pos) : pos
        if (del > 0) text.delete(at, astral ? cpToUnit(s, pos + del) - at : del)
        if (ins) {
          if (/[\u{10000}-\u{10FFFF}]/u.test(ins)) astral = true
          text.insert(at, ins)
        }
      }
    })
    applied[a][i] = 1
    updates[i] = update || new Uint8Array([0, 0])
    if (update) agents[a].steps.push({ update, deps })
  }
  const all = Y.mergeUpdates(updates)
  const check = new Y.Doc()
  Y.applyUpdate(check, all)
  const got = check.getText(TEXT).toString()
  if (!limit && got !== trace.endContent) {
    throw new Error(`trace replay does not reproduce endContent (${got.length} vs ${trace.endContent.length} chars)`)
  }
  return { agents, endContent: got, source: `trace(${txns.length} txns, ${n} agents)` }
}

function cpToUnit (s, cp) {
  let unit = 0
  for (let i = 0; i < cp && unit < s.length; i++) unit += s.codePointAt(unit) > 0xffff ? 2 : 1
  return unit
}

/** Writes a stream to a temp dir (one file per agent), for inspection or another process. */
export function writeStream (stream, dir) {
  fs.mkdirSync(dir, { recursive: true })
  stream.agents.forEach((a, i) => {
    const lines = a.steps.map((s) => JSON.stringify({ u: Buffer.from(s.update).toString('base64'), deps: s.deps }))
    fs.writeFileSync(path.join(dir, `agent-${i}.jsonl`), lines.join('\n') + '\n')
  })
  fs.writeFileSync(path.join(dir, 'end-content.txt'), stream.endContent)
}
