import type * as Y from 'yjs'
import type {
  KeepOptions, LoadReport, SourceReport, DurabilityView, DurabilityReport, Tier, StoredBytes,
  CompactResult, KeepEvent,
} from './ykeep_wasm.js'
export type {
  KeepOptions, LoadReport, SourceReport, DurabilityView, DurabilityReport, Tier, StoredBytes,
  CompactResult, KeepEvent,
}
export { KeepCore } from './ykeep_wasm.js'

/**
 * A y-websocket-style provider: y-websocket's `WebsocketProvider`, y-partykit's and
 * y-partyserver's providers (they inherit its `messageHandlers`).
 */
export interface AckProvider {
  messageHandlers: Array<(...args: any[]) => void>
  ws: { readyState: number; send(data: Uint8Array): void } | null
  wsconnected: boolean
  on(name: 'status', fn: (event: { status: string }) => void): void
  off(name: 'status', fn: (event: { status: string }) => void): void
}

export type KeepStatus = 'loading' | 'synced' | 'error' | 'destroyed'

export interface YKeepEvents {
  status: { status: KeepStatus }
  synced: LoadReport
  /** Each time the tier of the page's latest edit (browser -> relay -> store), or the list of
   * unsaved tiers, changes. */
  durability: DurabilityReport
  compacted: Extract<KeepEvent, { type: 'compacted' }>
  warning: Extract<KeepEvent, { type: 'warning' }>
}

/**
 * Durable Yjs documents: loads relay -> store -> IndexedDB into `doc`, then keeps IndexedDB
 * current as a warm cache and outbox.
 *
 * ```js
 * const keep = new YKeep(ydoc, { kind: 'document', id, relayUrl, storeUrl, token })
 * const report = await keep.whenSynced
 * ```
 */
export declare class YKeep {
  constructor(doc: Y.Doc, options: KeepOptions)
  readonly doc: Y.Doc
  /** `kind/id` */
  readonly room: string
  readonly status: KeepStatus
  readonly synced: boolean
  readonly report: LoadReport | null
  readonly whenSynced: Promise<LoadReport>
  /** The latest `durability` report (null before the first). */
  readonly lastDurability: DurabilityReport | null
  on<K extends keyof YKeepEvents>(name: K, fn: (value: YKeepEvents[K]) => void): this
  off<K extends keyof YKeepEvents>(name: K, fn: (value: YKeepEvents[K]) => void): this
  /**
   * Hears the relay's acknowledgements through the page's own provider, and asks for them on
   * every connection (the one already open too). Without it, the relay and store tiers are
   * learnt from the relay's `/durable`, with backoff, while something is unsaved.
   */
  attach(provider: AckProvider): this
  /** Stops hearing acknowledgements through the attached provider. */
  detach(): this
  /**
   * Resolves once `tier` holds everything the doc holds at the call. Rejects on `destroy`, and
   * when the tier is unavailable (`'browser'` without a cache).
   */
  whenSaved(tier: Tier): Promise<void>
  /** The tiers that do not hold everything the doc holds. */
  unsaved(): Tier[]
  /**
   * Warns on leaving the page (`beforeunload`) while the doc holds edits the relay does not.
   * Returns the function that removes the guard.
   */
  guardUnload(): () => void
  flush(): Promise<void>
  compact(): Promise<CompactResult | null>
  durability(): Promise<DurabilityView>
  outbox(): Promise<Uint8Array[]>
  storedBytes(): Promise<StoredBytes>
  clearData(): Promise<void>
  destroy(): Promise<void>
}
