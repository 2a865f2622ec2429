// ykeep: durable Yjs documents in the browser. The package entry: it initialises the wasm
// module itself (top-level await), so `new YKeep(...)` works right after the import.
//
//   import { YKeep } from 'ykeep'
//   const keep = new YKeep(ydoc, { kind: 'document', id, relayUrl, storeUrl, token })
//   const report = await keep.whenSynced
//
// This file only touches the Y.Doc (listen, apply, encode) and the page's lifecycle events;
// the load chain, merge, cache, outbox, compaction and durability comparison run in Rust.
import * as Y from 'yjs'
import initWasm, { KeepCore } from './ykeep_wasm.js'

const wasmUrl = new URL('./ykeep_wasm_bg.wasm', import.meta.url)
if (wasmUrl.protocol === 'file:' && typeof process !== 'undefined' && process.versions?.node) {
  // Node (tests, SSR): fetch() cannot read file: URLs.
  const fsModule = 'node:fs/promises'
  const { readFile } = await import(/* @vite-ignore */ fsModule)
  await initWasm({ module_or_path: await readFile(wasmUrl) })
} else {
  await initWasm({ module_or_path: wasmUrl })
}

export { KeepCore }

export class YKeep {
  /**
   * Binds `doc` to the room `options.kind/options.id`: loads relay -> store -> IndexedDB,
   * applies the merged state in one `Y.applyUpdate`, then stores every later update.
   * Throws a RangeError for a bad kind, id or URL (before any I/O).
   */
  constructor(doc, options) {
    if (!doc || typeof doc.on !== 'function' || !doc.store) {
      throw new TypeError('ykeep: new YKeep(doc, options) needs a Y.Doc as its first argument')
    }
    this.doc = doc
    this.core = new KeepCore(options)
    this.room = this.core.room
    this.status = 'loading'
    this.synced = false
    this.report = null
    this._listeners = new Map()
    this._early = []
    this._destroyed = false
    this._onUpdate = (update, origin) => {
      if (origin === this || this._destroyed) return
      if (this.status === 'loading') this._early.push(update)
      else this._store(update)
    }
    // Content the doc had before binding is stored once, after the load.
    this._preexisting = doc.store.clients.size > 0
    doc.on('update', this._onUpdate)
    this._onDocDestroy = () => { this.destroy() }
    doc.on('destroy', this._onDocDestroy)
    this.core.onEvent((event) => {
      if (event.type === 'durability') this._emit('durability', event.view)
      else this._emit(event.type, event)
    })
    this._onPageHide = () => { this.flush().catch(() => {}) }
    this._onVisibility = () => {
      if (globalThis.document?.visibilityState === 'hidden') this._onPageHide()
    }
    if (typeof globalThis.addEventListener === 'function') globalThis.addEventListener('pagehide', this._onPageHide)
    globalThis.document?.addEventListener?.('visibilitychange', this._onVisibility)
    /** Resolves with the load report once the doc holds the merged state. */
    this.whenSynced = this._load()
  }

  async _load() {
    try {
      const { update, report } = await this.core.load()
      if (this._destroyed) return report
      let othersEdited = false
      if (update.length > 0) {
        // Our own 'update' listener would skip this apply (origin === this), but while any
        // listener is registered Yjs encodes the whole applied state for it (a third of the
        // apply on a large document): it is off during the apply. An observer that edits the
        // doc inside the apply runs a nested transaction that listener would miss; it is
        // noticed here, and the doc's state is stored once afterwards.
        const onTransaction = (tr) => { if (tr.origin !== this) othersEdited = true }
        this.doc.off('update', this._onUpdate)
        this.doc.on('afterTransaction', onTransaction)
        try {
          Y.applyUpdate(this.doc, update, this)
        } catch (e) {
          // Only a lone compacted cache record reaches here undecoded (see load.rs).
          const cache = report.sources[2]
          cache.status = 'corrupt'
          cache.error = `Y.applyUpdate refused the cached state: ${e.message}`
          report.loaded = report.sources.some((s) => s.status === 'ok' && s.bytes > 0)
          this._emit('warning', { type: 'warning', message: cache.error })
        } finally {
          this.doc.off('afterTransaction', onTransaction)
          this.doc.on('update', this._onUpdate)
        }
      }
      if (this._preexisting || othersEdited) this._store(Y.encodeStateAsUpdate(this.doc))
      else for (const u of this._early) this._store(u)
      this._early = []
      this.report = report
      this.synced = true
      this._setStatus('synced')
      this._emit('synced', report)
      return report
    } catch (e) {
      this._setStatus('error')
      throw e
    }
  }

  _store(update) {
    try {
      this.core.storeUpdate(update)
    } catch (e) {
      this._emit('warning', { type: 'warning', message: e.message })
    }
  }

  _setStatus(status) {
    this.status = status
    this._emit('status', { status })
  }

  _emit(name, value) {
    for (const fn of this._listeners.get(name) ?? []) {
      try { fn(value) } catch (e) { console.error(e) }
    }
  }

  /** Events: 'status' {status}, 'synced' (report), 'durability' (view), 'compacted', 'warning'. */
  on(name, fn) {
    if (!this._listeners.has(name)) this._listeners.set(name, new Set())
    this._listeners.get(name).add(fn)
    return this
  }

  off(name, fn) {
    this._listeners.get(name)?.delete(fn)
    return this
  }

  /** Resolves once every update so far is in IndexedDB. */
  flush() { return this.core.flush() }

  /** Folds the update log into the compacted record (one IndexedDB transaction). */
  compact() { return this.core.compact() }

  /** What is saved locally / on the relay / in the store, compared as Yjs snapshots. */
  durability() { return this.core.durability(Y.encodeStateAsUpdate(this.doc)) }

  /** The page's edits that no relay or store marker covers yet. */
  outbox() { return this.core.outbox() }

  /** Bytes this room occupies in IndexedDB. */
  storedBytes() { return this.core.storedBytes() }

  /**
   * Deletes this room's IndexedDB data (the doc itself is untouched). Rejects, deleting nothing,
   * when the room's cache holds records of another format version.
   */
  clearData() { return this.core.clearData() }

  /** Stops listening, flushes pending writes and closes the cache. */
  async destroy() {
    if (this._destroyed) return
    this._destroyed = true
    this.doc.off('update', this._onUpdate)
    this.doc.off('destroy', this._onDocDestroy)
    if (typeof globalThis.removeEventListener === 'function') globalThis.removeEventListener('pagehide', this._onPageHide)
    globalThis.document?.removeEventListener?.('visibilitychange', this._onVisibility)
    await this.core.destroy()
    this._setStatus('destroyed')
  }
}
