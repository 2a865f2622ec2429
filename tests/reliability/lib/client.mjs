// A minimal y-sync client over a real WebSocket (ws), speaking the y-websocket wire protocol.
// It keeps its own Y.Doc, records every update the relay sends it (what the relay "forwarded"),
// reconnects after the relay dies, and sends its agent's updates once their dependencies arrived.
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import WebSocket from 'ws'
import { sleep } from './procs.mjs'

const MSG_SYNC = 0
const STEP1 = 0
const STEP2 = 1
const UPDATE = 2

export function syncFrame (step, payload) {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, MSG_SYNC)
  encoding.writeVarUint(e, step)
  encoding.writeVarUint8Array(e, payload)
  return encoding.toUint8Array(e)
}

export class SyncClient {
  /** url: ws://.../rooms/kind/id (query allowed); opts.reconnect (default true) */
  constructor (url, { name = 'client', reconnect = true, doc } = {}) {
    this.url = url
    this.name = name
    this.doc = doc || new Y.Doc()
    this.reconnect = reconnect
    this.received = [] // every update payload the relay sent (SyncStep2 + Update)
    this.receivedBytes = 0
    this.connected = false
    this.synced = false // got the relay's SyncStep2 on the current connection
    this.connects = 0
    this.closed = false
    this.closeEvents = []
    this.ws = null
    this.held = false
    this.pendingConnect = false
    this.onReceive = null
    this._connect()
  }

  /** While held, the client does not reconnect (the driver checks the restarted relay first). */
  hold () { this.held = true }
  release () {
    this.held = false
    if (this.pendingConnect) { this.pendingConnect = false; this._connect() }
  }

  _connect () {
    if (this.closed) return
    if (this.held) { this.pendingConnect = true; return }
    const ws = new WebSocket(this.url)
    ws.binaryType = 'nodebuffer'
    this.ws = ws
    ws.on('open', () => {
      this.connected = true
      this.synced = false
      this.connects++
      ws.send(syncFrame(STEP1, Y.encodeStateVector(this.doc)))
    })
    ws.on('message', (data) => this._onMessage(ws, new Uint8Array(data)))
    ws.on('error', () => {})
    ws.on('close', (code, reason) => {
      this.closeEvents.push({ code, reason: reason.toString() })
      if (this.ws === ws) {
        this.connected = false
        this.synced = false
        if (this.reconnect && !this.closed) setTimeout(() => this._connect(), 30 + Math.floor(Math.random() * 70))
      }
    })
  }

  _onMessage (ws, buf) {
    const d = decoding.createDecoder(buf)
    const type = decoding.readVarUint(d)
    if (type !== MSG_SYNC) return // awareness, auth, query: not needed here
    const step = decoding.readVarUint(d)
    if (step === STEP1) {
      const sv = decoding.readVarUint8Array(d)
      ws.send(syncFrame(STEP2, Y.encodeStateAsUpdate(this.doc, sv)))
    } else if (step === STEP2 || step === UPDATE) {
      const u = decoding.readVarUint8Array(d)
      this.received.push(u)
      this.receivedBytes += u.length
      if (this.onReceive) this.onReceive(u)
      Y.applyUpdate(this.doc, u, 'remote')
      if (step === STEP2) this.synced = true
    }
  }

  /** Applies a local update to the doc and sends it (if connected; else the next sync carries it). */
  sendUpdate (u) {
    Y.applyUpdate(this.doc, u, 'local')
    if (this.connected && this.ws.readyState === WebSocket.OPEN) this.ws.send(syncFrame(UPDATE, u))
  }

  covers (deps) {
    const sv = Y.decodeStateVector(Y.encodeStateVector(this.doc))
    return deps.every(([c, k]) => (sv.get(c) || 0) >= k)
  }

  text (name = 't') { return this.doc.getText(name).toString() }

  close () {
    this.closed = true
    try { this.ws.terminate() } catch {}
  }
}

/**
 * Drives one agent: sends each step once its deps are in the client's doc and the client is
 * synced. `pace()` is awaited between steps (the driver uses it to hold agents during a kill).
 */
export async function runAgent (client, steps, { pace = async () => {}, onSent = () => {} } = {}) {
  for (let i = 0; i < steps.length; i++) {
    const { update, deps } = steps[i]
    for (;;) {
      await pace()
      if (client.synced && client.covers(deps)) break
      await sleep(2)
    }
    client.sendUpdate(update)
    onSent(i)
    if (i % 8 === 7) await sleep(0)
  }
}
