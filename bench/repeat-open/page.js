// Browser side of the repeat-open benchmark (bundled by run.mjs with esbuild, once per client
// build: `ykeep-client` is this checkout's pkg/ or, for the before column, an earlier build's).
// Served by the relay's --static-dir, so the page, /state and the store share one origin.
import * as Y from 'yjs'
import { YKeep } from 'ykeep-client'

const now = () => performance.now()
const origin = location.origin

function deleteDb (name) {
  return new Promise((resolve, reject) => {
    const r = indexedDB.deleteDatabase(name)
    r.onsuccess = () => resolve()
    r.onerror = () => reject(r.error)
    r.onblocked = () => resolve()
  })
}

function options (room, dbName, token) {
  return { kind: 'document', id: room, relayUrl: origin, storeUrl: origin, token, dbName }
}

// The first visit: an empty cache loads from the relay and the store, then the cache is
// compacted, as the compaction policy does by itself after enough edits.
async function firstVisit (room, dbName, token) {
  await deleteDb(dbName)
  const doc = new Y.Doc()
  const keep = new YKeep(doc, options(room, dbName, token))
  const report = await keep.whenSynced
  await keep.flush()
  await keep.compact()
  await keep.destroy()
  return { report, len: doc.getText('text').length }
}

// A repeat visit: a fresh Y.Doc and YKeep on the warm cache, with the relay and the store live.
async function repeatVisit (room, dbName, token) {
  const t0 = now()
  const doc = new Y.Doc()
  const keep = new YKeep(doc, options(room, dbName, token))
  const report = await keep.whenSynced
  const ms = now() - t0
  const len = doc.getText('text').length
  await keep.destroy()
  return { ms, len, report }
}

function b64url (bytes) {
  let s = ''
  for (const b of bytes) s += String.fromCharCode(b)
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

// The two requests a client without conditional loads sends on a repeat visit (what the
// previous release sent): /state with the cache's state vector, and the store's snapshot.
async function unconditional (room, token, sv) {
  // cache: 'no-store': the previous release's store sent no ETag, so the browser had nothing to
  // revalidate with; this build's does, and the HTTP cache would turn these into 304s.
  const init = { headers: { authorization: `Bearer ${token}` }, cache: 'no-store' }
  const a = await fetch(`${origin}/rooms/document/${room}/state?sv=${sv}`, init)
  const b = await fetch(`${origin}/snapshots/document/${room}`, init)
  return { relay: (await a.arrayBuffer()).byteLength, store: (await b.arrayBuffer()).byteLength, status: [a.status, b.status] }
}

function stateVectorOf (bytes) {
  return b64url(Y.encodeStateVectorFromUpdate(bytes))
}

function openRaw (name) {
  return new Promise((resolve, reject) => {
    const r = indexedDB.open(name, 1)
    r.onupgradeneeded = () => r.result.createObjectStore('b')
    r.onsuccess = () => resolve(r.result)
    r.onerror = () => reject(r.error)
  })
}

async function seedRaw (dbName, bytes) {
  await deleteDb(dbName)
  const db = await openRaw(dbName)
  await new Promise((resolve, reject) => {
    const tx = db.transaction('b', 'readwrite')
    tx.objectStore('b').put(bytes, 'state')
    tx.oncomplete = resolve
    tx.onerror = () => reject(tx.error)
  })
  db.close()
}

// The floor: open + read one blob of the state, then one Y.applyUpdate into a fresh doc.
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

async function token () {
  const res = await fetch(`${origin}/demo/token`)
  if (!res.ok) throw new Error(`/demo/token: HTTP ${res.status}`)
  return (await res.json()).token
}

async function stateOf (room, tok) {
  const r = await fetch(`${origin}/snapshots/document/${room}`, { headers: { authorization: `Bearer ${tok}` } })
  return new Uint8Array(await r.arrayBuffer())
}

window.bench = { firstVisit, repeatVisit, unconditional, stateVectorOf, seedRaw, loadRaw, token, stateOf }
window.benchReady = true
