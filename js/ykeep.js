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
import initWasm, { KeepCore, ykeepMessageType } from './ykeep_wasm.js'

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

/** The longest wait between two `/durable` checks while something is unsaved and no relay
 * acknowledges on a provider socket. */
const MAX_POLL_MS = 30_000
const FIRST_POLL_MS = 500
/** How long after updates the page's provider applied the page marks them (to hear whether the
 * store has them): one mark for a stream of remote edits, not one per edit. */
const REMOTE_MARK_MS = 1000

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
    this._provider = null
    this._markQueued = false
    this._remoteMark = null
    /** The latest 'durability' report (null before the first). */
    this.lastDurability = null
    this._pollable = Boolean(options?.relayUrl)
    this._pollTimer = null
    this._pollDelay = FIRST_POLL_MS
    this._guards = new Set()
    this._onUpdate = (update, origin) => {
      if (origin === this || this._destroyed) return
      const fromProvider = this._provider !== null && origin === this._provider
      const seq = this.core.noteUpdate(fromProvider ? 'provider' : 'own')
      if (this.status === 'loading') this._early.push([update, seq])
      else this._store(update, seq)
      if (!fromProvider) {
        this._markSoon()
        this._pollSoon(true)
      } else {
        this._markRemote()
      }
    }
    // Content the doc had before binding is stored once, after the load.
    this._preexisting = doc.store.clients.size > 0
    doc.on('update', this._onUpdate)
    this._onDocDestroy = () => { this.destroy() }
    doc.on('destroy', this._onDocDestroy)
    this.core.onEvent((event) => {
      if (event.type === 'durability') {
        this.lastDurability = event.report
        this._emit('durability', event.report)
      }
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
      if (update.length > 0) this.core.noteUpdate('loaded')
      if (this._preexisting || othersEdited) {
        // The whole state covers the early updates; they are stored too, so that each one's
        // sequence number is written (the browser tier waits for every one).
        this._store(Y.encodeStateAsUpdate(this.doc), this.core.noteUpdate('own'))
      }
      for (const [u, seq] of this._early) this._store(u, seq)
      this._early = []
      this.report = report
      this.synced = true
      this._setStatus('synced')
      this._pollSoon(true)
      this._emit('synced', report)
      return report
    } catch (e) {
      this._setStatus('error')
      throw e
    }
  }

  _store(update, seq) {
    try {
      this.core.storeUpdate(update, seq)
    } catch (e) {
      this._emit('warning', { type: 'warning', message: e.message })
    }
  }

  /** A mark after the doc's update handlers ran: the provider has sent the update by then. */
  _markSoon() {
    if (this._markQueued) return
    this._markQueued = true
    queueMicrotask(() => {
      this._markQueued = false
      if (!this._destroyed) this.core.mark()
    })
  }

  /** A mark a while after updates the provider applied: they are on the relay already, and the
   * Saved for it says when the store has them. */
  _markRemote() {
    if (this._remoteMark !== null) return
    this._remoteMark = setTimeout(() => {
      this._remoteMark = null
      if (!this._destroyed) this.core.mark()
    }, REMOTE_MARK_MS)
  }

  /**
   * Without a relay that acknowledges on a provider socket, asks the relay's `/durable` with
   * backoff (0.5 s doubling to 30 s), and only while the relay or the store lacks something.
   */
  _pollSoon(reset) {
    if (reset) this._pollDelay = FIRST_POLL_MS
    if (this._pollTimer !== null || this._destroyed || !this._pollable || this.status === 'loading') return
    this._pollTimer = setTimeout(async () => {
      this._pollTimer = null
      // An attached provider that is offline: the relay is unreachable; its reconnect restarts
      // this (or its Welcome makes it needless).
      if (this._destroyed || this.core.acknowledged || (this._provider && !this._provider.wsconnected)) return
      if (!this.core.unsaved().some((t) => t !== 'browser')) return
      try { await this.durability() } catch { /* the relay is down: next try after the backoff */ }
      this._pollDelay = Math.min(this._pollDelay * 2, MAX_POLL_MS)
      this._pollSoon(false)
    }, this._pollDelay)
  }

  /**
   * Hears the relay's acknowledgements through the page's own provider (y-websocket,
   * y-partykit, y-partyserver: a `messageHandlers` table and a `status` event): registers the
   * ykeep message's handler and asks for them on every connection, the one already open too.
   * Stock providers that are not attached never ask and never receive one.
   */
  attach(provider) {
    if (!provider || !Array.isArray(provider.messageHandlers) || typeof provider.on !== 'function') {
      throw new TypeError('ykeep: attach(provider) needs a y-websocket-style provider (messageHandlers, on)')
    }
    if (this._destroyed) throw new Error('ykeep: destroyed')
    if (this._provider) this.detach()
    this._provider = provider
    provider.messageHandlers[ykeepMessageType()] = (_encoder, decoder) => {
      try {
        this.core.ackMessage(decoder.arr)
      } catch (e) {
        this._emit('warning', { type: 'warning', message: e.message })
      }
    }
    this.core.setSender((bytes) => {
      const ws = provider.ws
      if (ws && ws.readyState === 1) ws.send(bytes)
    })
    this._onStatus = ({ status }) => {
      if (status === 'connected') {
        this.core.link(true)
        this._pollSoon(true)
      } else if (status === 'disconnected') {
        this.core.link(false)
      }
    }
    provider.on('status', this._onStatus)
    if (provider.wsconnected) this.core.link(true)
    return this
  }

  /** Stops hearing acknowledgements through the attached provider. */
  detach() {
    const provider = this._provider
    if (!provider) return this
    this._provider = null
    delete provider.messageHandlers[ykeepMessageType()]
    provider.off('status', this._onStatus)
    this.core.setSender(null)
    this.core.link(false)
    this._pollSoon(true)
    return this
  }

  /** Resolves once `tier` holds everything the doc holds now; rejects on `destroy`, and when the
   * tier is unavailable (`'browser'` without a cache). */
  whenSaved(tier) {
    if (tier !== 'browser' && !this._provider && !this._pollable && !this._destroyed) {
      return Promise.reject(new Error(`ykeep: whenSaved('${tier}') needs a relay: attach(provider), or a relayUrl`))
    }
    const saved = this.core.whenSaved(tier)
    this._pollSoon(true)
    return saved
  }

  /** The tiers ('browser', 'relay', 'store') that do not hold everything the doc holds. */
  unsaved() { return this.core.unsaved() }

  /**
   * Warns on leaving the page (`beforeunload`) while the doc holds edits the relay does not.
   * Returns the function that removes the guard.
   */
  guardUnload() {
    const onBeforeUnload = (event) => {
      if (this._destroyed || !this.unsaved().includes('relay')) return
      event.preventDefault()
      event.returnValue = ''
    }
    globalThis.addEventListener?.('beforeunload', onBeforeUnload)
    const stop = () => {
      globalThis.removeEventListener?.('beforeunload', onBeforeUnload)
      this._guards.delete(stop)
    }
    this._guards.add(stop)
    return stop
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

  /**
   * Events: 'status' {status}, 'synced' (report), 'durability' ({tier, unsaved, browser?}, each
   * time the tier of the page's latest edit, or the list of unsaved tiers, changes),
   * 'compacted', 'warning'.
   */
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
    this.detach()
    this._destroyed = true
    clearTimeout(this._pollTimer)
    clearTimeout(this._remoteMark)
    for (const stop of [...this._guards]) stop()
    this.doc.off('update', this._onUpdate)
    this.doc.off('destroy', this._onDocDestroy)
    if (typeof globalThis.removeEventListener === 'function') globalThis.removeEventListener('pagehide', this._onPageHide)
    globalThis.document?.removeEventListener?.('visibilitychange', this._onVisibility)
    await this.core.destroy()
    this._setStatus('destroyed')
  }
}
