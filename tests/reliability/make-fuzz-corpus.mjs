// Writes the small seed corpus of fuzz/corpus/<target>/ (valid frames and updates, a few known-bad ones).
// node tests/reliability/make-fuzz-corpus.mjs
import * as Y from 'yjs'
import fs from 'node:fs'
import * as encoding from 'lib0/encoding'
import * as awarenessProtocol from 'y-protocols/awareness'
const out = (dir, name, bytes) => fs.writeFileSync(`${new URL('../../fuzz/corpus', import.meta.url).pathname}/${dir}/${name}`, Buffer.from(bytes))
const frame = (type, step, payload) => { const e = encoding.createEncoder(); encoding.writeVarUint(e, type); if (step !== null) encoding.writeVarUint(e, step); encoding.writeVarUint8Array(e, payload); return encoding.toUint8Array(e) }
const seq = (...frames) => { const parts = []; for (const f of frames) { if (f.length >= 255) continue; parts.push(f.length, ...f) } return new Uint8Array(parts) }
const updates = []
const d1 = new Y.Doc(); d1.clientID = 3
d1.on('update', (u) => updates.push(u))
const t = d1.getText('t')
t.insert(0, 'hello'); t.insert(5, ' world'); t.delete(0, 2); t.format?.(0, 1, { bold: true })
d1.getMap('m').set('k', 'v'); d1.getArray('a').push([1, 'two', { three: 3 }])
const d2 = new Y.Doc(); d2.clientID = 1 // same client id as the target's base doc: clock clashes
d2.getText('t').insert(0, 'clash')
const full = Y.encodeStateAsUpdate(d1)
const sv = Y.encodeStateVector(d1)
updates.forEach((u, i) => { out('snapshot_save', `update-${i}`, u); out('frame_decoder', `update-${i}`, seq(frame(0, 2, u))) })
out('snapshot_save', 'full', full)
out('snapshot_save', 'empty', new Uint8Array([0, 0]))
out('snapshot_save', 'clash-client-1', Y.encodeStateAsUpdate(d2))
out('snapshot_save', 'pending', updates[1])
const del = new Y.Doc(); Y.applyUpdate(del, full); const before = Y.encodeStateVector(del); del.getText('t').delete(0, 3)
out('snapshot_save', 'delete-only', Y.encodeStateAsUpdate(del, before))
out('frame_decoder', 'step1', seq(frame(0, 0, sv)))
out('frame_decoder', 'step1-empty', seq(frame(0, 0, new Uint8Array([0]))))
out('frame_decoder', 'step2-full', seq(frame(0, 1, full)))
out('frame_decoder', 'clash', seq(frame(0, 2, Y.encodeStateAsUpdate(d2))))
out('frame_decoder', 'out-of-order', seq(frame(0, 2, updates[2]), frame(0, 2, updates[1]), frame(0, 2, updates[0])))
out('frame_decoder', 'sequence', seq(...updates.map((u) => frame(0, 2, u))))
const aw = new awarenessProtocol.Awareness(d1); aw.setLocalState({ user: { name: 'x' } })
const awu = awarenessProtocol.encodeAwarenessUpdate(aw, [d1.clientID])
out('frame_decoder', 'awareness', seq(frame(1, null, awu)))
out('frame_decoder', 'awareness-query', seq(new Uint8Array([3])))
out('frame_decoder', 'auth', seq(new Uint8Array([2, 0])))
out('frame_decoder', 'unknown-type', seq(new Uint8Array([9, 1, 2])))
out('frame_decoder', 'truncated-varint', seq(new Uint8Array([0, 2, 0x80])))
out('frame_decoder', 'huge-length', seq(new Uint8Array([0, 2, 0xff, 0xff, 0xff, 0xff, 0x0f, 1])))
out('frame_decoder', 'delete-only', seq(frame(0, 2, Y.encodeStateAsUpdate(del, before))))
aw.destroy()
console.log('ok')
process.exit(0)
