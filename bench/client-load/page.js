// Browser side of the client-load benchmark (bundled by run.mjs with esbuild).
import * as Y from 'yjs'
import { IndexeddbPersistence } from 'y-indexeddb'
import { YKeep, KeepCore } from '../../pkg/ykeep.js'

const now = () => performance.now()

function deleteDb (name) {
  return new Promise((resolve, reject) => {
    const r = indexedDB.deleteDatabase(name)
    r.onsuccess = () => resolve()
    r.onerror = () => reject(r.error)
    r.onblocked = () => resolve()
  })
}

async function blob (name) {
  return new Uint8Array(await (await fetch(`/blob/${name}`)).arrayBuffer())
}

// ykeep: the state lands in the cache as one compacted record (seed not timed).
async function seedYkeep (dbName, bytes) {
  await deleteDb(dbName)
  const doc = new Y.Doc()
  Y.applyUpdate(doc, bytes)
  const keep = new YKeep(doc, { kind: 'document', id: 'bench', dbName })
  await keep.whenSynced
  await keep.flush()
  await keep.compact()
  await keep.destroy()
}

async function loadYkeep (dbName) {
  const t0 = now()
  const doc = new Y.Doc()
  const keep = new YKeep(doc, { kind: 'document', id: 'bench', dbName })
  await keep.whenSynced
  const ms = now() - t0
  const len = doc.getText('text').length
  await keep.destroy()
  return { ms, len }
}

async function seedYidb (dbName, bytes) {
  await deleteDb(dbName)
  const doc = new Y.Doc()
  Y.applyUpdate(doc, bytes)
  const p = new IndexeddbPersistence(dbName, doc)
  await p.whenSynced
  await p.destroy()
}

async function loadYidb (dbName) {
  const t0 = now()
  const doc = new Y.Doc()
  const p = new IndexeddbPersistence(dbName, doc)
  await p.whenSynced
  const ms = now() - t0
  const len = doc.getText('text').length
  await p.destroy()
  return { ms, len }
}

function openRaw (name) {
  return new Promise((resolve, reject) => {
    const r = indexedDB.open(name, 1)
    r.onupgradeneeded = () => r.result.createObjectStore('b')
    r.onsuccess = () => resolve(r.result)
    r.onerror = () => reject(r.error)
  })
}

// The floor's seed does the page-side work the other two seeds do (build the doc from the bytes,
// encode its state, store that), so each timed load starts with the same garbage left for V8's
// collector; with a bare put the floor's loads ran on a cleaner heap than the others'.
async function seedRaw (dbName, bytes) {
  const doc = new Y.Doc()
  Y.applyUpdate(doc, bytes)
  const state = Y.encodeStateAsUpdate(doc)
  await deleteDb(dbName)
  const db = await openRaw(dbName)
  await new Promise((resolve, reject) => {
    const tx = db.transaction('b', 'readwrite')
    tx.objectStore('b').put(state, 'state')
    tx.oncomplete = resolve
    tx.onerror = () => reject(tx.error)
  })
  db.close()
}

// The floor: open + read one blob of the same size, then one Y.applyUpdate into a fresh doc.
async function loadRaw (dbName) {
  const t0 = now()
  const db = await openRaw(dbName)
  const bytes = await new Promise((resolve, reject) => {
    const r = db.transaction('b', 'readonly').objectStore('b').get('state')
    r.onsuccess = () => resolve(r.result)
    r.onerror = () => reject(r.error)
  })
  const t1 = now()
  const doc = new Y.Doc()
  Y.applyUpdate(doc, bytes)
  const t2 = now()
  db.close()
  return { readMs: t1 - t0, applyMs: t2 - t1, ms: t2 - t0, len: doc.getText('text').length }
}

// Bytes of every record (keys + values) in a database, measured the same way for both.
function sizeOf (v) {
  if (v == null) return 0
  if (v instanceof ArrayBuffer) return v.byteLength
  if (ArrayBuffer.isView(v)) return v.byteLength
  if (typeof v === 'string') return new TextEncoder().encode(v).length
  if (typeof v === 'number') return 8
  if (typeof v === 'boolean') return 1
  if (Array.isArray(v)) return v.reduce((n, x) => n + sizeOf(x), 0)
  if (typeof v === 'object') return Object.entries(v).reduce((n, [k, x]) => n + k.length + sizeOf(x), 0)
  return 0
}

async function dbBytes (dbName) {
  const db = await new Promise((resolve, reject) => {
    const r = indexedDB.open(dbName)
    r.onsuccess = () => resolve(r.result)
    r.onerror = () => reject(r.error)
  })
  let bytes = 0
  let records = 0
  for (const name of db.objectStoreNames) {
    const store = db.transaction(name, 'readonly').objectStore(name)
    const [keys, values] = await Promise.all(['getAllKeys', 'getAll'].map((m) => new Promise((resolve, reject) => {
      const r = store[m]()
      r.onsuccess = () => resolve(r.result)
      r.onerror = () => reject(r.error)
    })))
    records += keys.length
    bytes += keys.reduce((n, k) => n + sizeOf(k), 0) + values.reduce((n, v) => n + sizeOf(v), 0)
  }
  db.close()
  return { bytes, records }
}

// Replays `patches` ([pos, del, ins]) one transaction each into a doc bound to the library.
async function replayEdits (lib, dbName, patches) {
  await deleteDb(dbName)
  const doc = new Y.Doc()
  const text = doc.getText('text')
  let binding
  if (lib === 'ykeep') {
    binding = new YKeep(doc, { kind: 'document', id: 'bench', dbName })
    await binding.whenSynced
  } else {
    binding = new IndexeddbPersistence(dbName, doc)
    await binding.whenSynced
  }
  for (const [pos, del, ins] of patches) {
    doc.transact(() => {
      if (del > 0) text.delete(pos, del)
      if (ins) text.insert(pos, ins)
    })
    // Let the library's writes run as they would between keystrokes.
    if (Math.random() < 0.05) await new Promise((resolve) => setTimeout(resolve, 0))
  }
  if (lib === 'ykeep') await binding.flush()
  // y-indexeddb trims 1 s after its 500th update: give both time to settle before measuring.
  await new Promise((resolve) => setTimeout(resolve, 1500))
  await binding.destroy()
  const snapshot = Y.encodeStateAsUpdate(doc).length
  return { ...(await dbBytes(dbName)), snapshot, len: text.length }
}

// Where ykeep's load time goes: the Rust load (IndexedDB read + merge) vs the one apply.
async function profileYkeep (dbName) {
  const t0 = now()
  const core = new KeepCore({ kind: 'document', id: 'bench', dbName })
  const { update, report } = await core.load()
  const t1 = now()
  const doc = new Y.Doc()
  Y.applyUpdate(doc, update)
  const t2 = now()
  await core.destroy()
  return { loadMs: t1 - t0, cacheMs: report.sources[2].ms, applyMs: t2 - t1, bytes: update.length }
}

window.bench = { profileYkeep, blob, seedYkeep, loadYkeep, seedYidb, loadYidb, seedRaw, loadRaw, replayEdits }
window.benchReady = true
