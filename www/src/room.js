// One room of the demo: a Y.Doc loaded through the ykeep client (relay → store → IndexedDB),
// kept live by the stock y-websocket provider, with a load report and a durability badge.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { compareWithDurable } from './durability.js'

const LABELS = {
  none: 'not saved yet',
  browser: 'saved in this browser',
  relay: 'on the relay',
  store: 'in the snapshot store'
}
// The client is loaded on its own: if its wasm fails to initialise, the panes say so and live
// sync still works, instead of the whole page failing with the module graph.
let clientModule = null
function loadClient () {
  clientModule ??= import('ykeep')
  return clientModule
}

const POLL_MS = 1000
const AFTER_EDIT_MS = 150

function fmtBytes (n) {
  if (n == null) return ''
  return n < 1024 ? `${n} B` : `${(n / 1024).toFixed(1)} KB`
}

function fmtMs (ms) {
  return ms == null ? '' : `${Math.round(ms)} ms`
}

/** The first source, in precedence order relay → store → IndexedDB, that answered with data. */
export function answeredBy (report) {
  const ok = (report?.sources || []).filter((s) => s.status === 'ok')
  return ok.length ? ok[0].source : null
}

function renderReport (el, report, error) {
  el.replaceChildren()
  if (error) {
    const span = document.createElement('span')
    span.className = 'err'
    span.textContent = `ykeep client not available (${error.message}); live sync only`
    el.append(span)
    el.dataset.answered = 'none'
    return
  }
  const answered = answeredBy(report)
  el.dataset.answered = answered || 'none'
  const head = document.createElement('strong')
  head.textContent = answered
    ? `loaded from ${answered === 'indexeddb' ? 'IndexedDB' : `the ${answered}`} in ${fmtMs(report.totalMs)}`
    : `nothing stored yet (${fmtMs(report.totalMs)})`
  el.append(head)
  for (const s of report.sources || []) {
    const line = document.createElement('div')
    line.dataset.source = s.source
    line.dataset.status = s.status
    const detail = s.status === 'ok' ? `ok, ${fmtBytes(s.bytes)}` : s.status
    line.textContent = `${s.source}: ${detail} in ${fmtMs(s.ms)}${s.error ? ` (${s.error})` : ''}`
    if (s.status === 'error' || s.status === 'timeout' || s.status === 'corrupt') line.className = 'err'
    el.append(line)
  }
}

export async function openRoom ({ kind, config, pane }) {
  const conn = pane.querySelector('[data-role=conn]')
  const badge = pane.querySelector('[data-role=badge]')
  const reportEl = pane.querySelector('[data-role=load-report]')
  const id = config.set
  const ydoc = new Y.Doc()
  const state = { local: null, relay: false, store: false, body: null, level: 'none', report: null }

  let keep = null
  let keepError = null
  try {
    const { YKeep } = await loadClient()
    keep = new YKeep(ydoc, {
      kind, id, relayUrl: config.relayUrl, storeUrl: config.storeUrl, token: config.token
    })
    state.report = await keep.whenSynced
  } catch (e) {
    keepError = e instanceof Error ? e : new Error(String(e))
    keep = null
  }
  renderReport(reportEl, state.report, keepError)

  const provider = new WebsocketProvider(`${config.wsUrl}/rooms/${kind}`, id, ydoc, {
    params: config.token ? { token: config.token } : {},
    // Every byte between windows goes through the relay (no same-browser shortcut).
    disableBc: true
  })

  // Remote cursors in the editors carry a name and a colour (y-codemirror.next reads 'user').
  provider.awareness.setLocalStateField('user', config.user)

  const history = []
  state.history = history
  const setLevel = () => {
    const level = state.store ? 'store' : state.relay ? 'relay' : state.local ? 'browser' : 'none'
    if (level !== state.level || history.length === 0) history.push({ level, at: Date.now() })
    state.level = level
    badge.dataset.level = level
    badge.textContent = LABELS[level]
    const saved = state.savedAt ? `, store saved at ${new Date(state.savedAt).toLocaleTimeString()}` : ''
    const pending = state.pending != null ? `, ${state.pending} update(s) waiting for the relay/store` : ''
    badge.title = `browser: ${state.local ? 'yes' : 'no'}, relay: ${state.relay ? 'yes' : 'no'}, store: ${state.store ? 'yes' : 'no'}${saved}${pending}`
  }

  // Asks what is durable. With the client: keep.durability() (flushes IndexedDB, reads the
  // relay's /durable markers, compares them as Yjs snapshots). Offline it only flushes: what
  // the relay or store hold cannot be confirmed then. Without the client the page compares the
  // markers itself (durability.js) and has no browser level.
  let checking = null
  let again = false
  const check = () => {
    if (checking) { again = true; return checking }
    checking = (async () => {
      const changes = state.changes
      try {
        if (keep) {
          if (provider.wsconnected) {
            const view = await keep.durability()
            if (state.changes !== changes) return
            state.local = view.local
            state.relay = view.relay === true
            state.store = view.store === true
            state.savedAt = view.savedAt
            state.pending = view.pendingUpdates
          } else {
            await keep.flush()
            if (state.changes !== changes) return
            state.local = keep.core?.cacheDisabledReason === undefined
            state.relay = false
            state.store = false
          }
        } else if (provider.wsconnected) {
          const res = await fetch(`${config.relayUrl}/rooms/${kind}/${id}/durable`, {
            headers: config.token ? { Authorization: `Bearer ${config.token}` } : {}
          })
          if (!res.ok) throw new Error(`relay /durable: HTTP ${res.status}`)
          const cmp = compareWithDurable(ydoc, await res.json())
          state.relay = cmp.relay
          state.store = cmp.store
          state.savedAt = cmp.savedAt
        }
      } catch (e) {
        state.relay = false
        state.store = false
        console.warn(`[${kind}] durability check failed: ${e.message}`)
      } finally {
        setLevel()
        checking = null
        if (again) { again = false; check() }
      }
    })()
    return checking
  }

  state.changes = 0
  let editTimer = null
  ydoc.on('update', (update, origin) => {
    state.changes++
    // A local edit is not durable anywhere until a check says so. An update that came from
    // the relay is on the relay already; only the check can say whether the store has it.
    state.local = false
    if (origin !== provider) state.relay = false
    state.store = false
    setLevel()
    clearTimeout(editTimer)
    editTimer = setTimeout(check, AFTER_EDIT_MS)
  })

  provider.on('status', ({ status }) => {
    conn.dataset.state = status
    conn.textContent = status === 'connected' ? 'relay: connected' : status === 'connecting' ? 'relay: connecting…' : 'relay: offline'
    if (status !== 'connected') { state.relay = false; state.store = false; setLevel() }
  })
  provider.on('sync', (synced) => {
    conn.dataset.synced = String(synced)
    if (synced) check()
  })
  const timer = setInterval(check, POLL_MS)
  check()

  const room = { kind, id, ydoc, provider, keep, state, check, stop: () => clearInterval(timer) }
  pane.dataset.ready = 'true'
  return room
}
