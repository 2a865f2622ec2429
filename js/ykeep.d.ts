import type * as Y from 'yjs'
import type {
  KeepOptions, LoadReport, SourceReport, DurabilityView, StoredBytes, CompactResult, KeepEvent,
} from './ykeep_wasm.js'
export type { KeepOptions, LoadReport, SourceReport, DurabilityView, StoredBytes, CompactResult, KeepEvent }
export { KeepCore } from './ykeep_wasm.js'

export type KeepStatus = 'loading' | 'synced' | 'error' | 'destroyed'

export interface YKeepEvents {
  status: { status: KeepStatus }
  synced: LoadReport
  durability: DurabilityView
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
  on<K extends keyof YKeepEvents>(name: K, fn: (value: YKeepEvents[K]) => void): this
  off<K extends keyof YKeepEvents>(name: K, fn: (value: YKeepEvents[K]) => void): this
  flush(): Promise<void>
  compact(): Promise<CompactResult | null>
  durability(): Promise<DurabilityView>
  outbox(): Promise<Uint8Array[]>
  storedBytes(): Promise<StoredBytes>
  clearData(): Promise<void>
  destroy(): Promise<void>
}
