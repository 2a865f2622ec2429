// One room of the demo: a Y.Doc loaded through the ykeep client (relay → store → IndexedDB),
// kept live by the stock y-websocket provider, with a load report and a durability badge fed by
// the client's pushed 'durability' reports (the relay acknowledges on the provider's socket).
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

// The no-client mode's /durable polling (pollDurable); with the client the page polls nothing.
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
  // state.report: the load report; state.durability: the client's latest 'durability' report.
  const state = { level: 'none', report: null, durability: null }

  const history = []
  state.history = history
  const setLevel = (level, title) => {
    if (level !== state.level || history.length === 0) history.push({ level, at: Date.now() })
    state.level = level
    badge.dataset.level = level
    badge.textContent = LABELS[level]
    badge.title = title
  }
  // With the client the badge comes only from the reports it pushes ('durability', each time
  // the tier of the page's latest edit changes, or what is unsaved does): the relay acknowledges
  // on the provider's own socket (keep.attach below) and the page asks nothing, no /durable,
  // no keep.durability(). Listening from the start hears the load's reports too.
  const onReport = (report) => {
    state.durability = report
    setLevel(levelOf(report, ydoc.store.clients.size > 0), titleOf(report))
  }

  let keep = null
  let keepError = null
  try {
    const { YKeep } = await loadClient()
    keep = new YKeep(ydoc, {
      kind, id, relayUrl: config.relayUrl, storeUrl: config.storeUrl, token: config.token
    })
    keep.on('durability', onReport)
    state.report = await keep.whenSynced
  } catch (e) {
    keepError = e instanceof Error ? e : new Error(String(e))
    keep?.off('durability', onReport)
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

  let stop
  let check = null
  if (keep) {
    keep.attach(provider)
    if (history.length === 0) setLevel('none', 'no durability report yet')
    stop = () => { keep.off('durability', onReport); keep.detach() }
  } else {
    // Without the client nothing pushes reports: the page compares the relay's /durable
    // markers itself, and polls them (this mode only).
    ({ check, stop } = pollDurable({ kind, id, config, ydoc, provider, setLevel }))
  }

  provider.on('status', ({ status }) => {
    conn.dataset.state = status
    conn.textContent = status === 'connected' ? 'relay: connected' : status === 'connecting' ? 'relay: connecting…' : 'relay: offline'
  })
  provider.on('sync', (synced) => {
    conn.dataset.synced = String(synced)
  })

  const room = { kind, id, ydoc, provider, keep, state, check, stop }
  pane.dataset.ready = 'true'
  return room
}

const TIERS = ['browser', 'relay', 'store']

/**
 * The badge of a client report: the tier of the page's latest edit. Before the page's first
 * edit the report's tier is null; the badge then says how far everything the page holds (what
 * it loaded or received) has got: the tiers before the first one `unsaved` lists (the browser
 * skipped when it is unavailable), and 'none' while the page holds nothing. With an edit whose
 * tier is null, `unsaved` lists the browser (or the relay, browser unavailable): 'none' too.
 */
export function levelOf (report, holdsContent) {
  if (report.tier) return report.tier
  if (!holdsContent) return 'none'
  let level = 'none'
  for (const tier of TIERS) {
    if (tier === 'browser' && report.browser) continue
    if (report.unsaved.includes(tier)) break
    level = tier
  }
  return level
}

function titleOf (report) {
  const parts = [`latest edit: ${report.tier ? LABELS[report.tier] : 'not in this browser yet (or no edit)'}`]
  parts.push(report.unsaved.length ? `not yet in: ${report.unsaved.join(', ')}` : 'everything this tab holds is in the store')
  if (report.browser) parts.push(`browser tier unavailable: ${report.browser}`)
  return parts.join('; ')
}

/**
 * The no-client mode: no browser tier, and nothing pushes acknowledgements, so the page asks
 * the relay's `/durable` after each edit and every POLL_MS, and compares its markers with the doc
 * (durability.js). Returns { check, stop }.
 */
function pollDurable ({ kind, id, config, ydoc, provider, setLevel }) {
  const levels = { relay: false, store: false, savedAt: null }
  const update = () => {
    const level = levels.store ? 'store' : levels.relay ? 'relay' : 'none'
    const saved = levels.savedAt ? `, store saved at ${new Date(levels.savedAt).toLocaleTimeString()}` : ''
    setLevel(level, `browser: no (no ykeep client), relay: ${levels.relay ? 'yes' : 'no'}, store: ${levels.store ? 'yes' : 'no'}${saved}`)
  }
  let changes = 0
  let checking = null
  let again = false
  const check = () => {
    if (checking) { again = true; return checking }
    checking = (async () => {
      const before = changes
      try {
        if (!provider.wsconnected) return
        const res = await fetch(`${config.relayUrl}/rooms/${kind}/${id}/durable`, {
          headers: config.token ? { Authorization: `Bearer ${config.token}` } : {}
        })
        if (!res.ok) throw new Error(`relay /durable: HTTP ${res.status}`)
        const cmp = compareWithDurable(ydoc, await res.json())
        if (changes !== before) return
        levels.relay = cmp.relay
        levels.store = cmp.store
        levels.savedAt = cmp.savedAt
      } catch (e) {
        levels.relay = false
        levels.store = false
        console.warn(`[${kind}] durability check failed: ${e.message}`)
      } finally {
        update()
      }
    })().finally(() => {
      // Cleared here, after `checking` is assigned: a check that returns without awaiting
      // (socket not connected) would otherwise clear it before, and stay "in progress" forever.
      checking = null
      if (again) { again = false; check() }
    })
    return checking
  }
  let editTimer = null
  ydoc.on('update', (_update, origin) => {
    changes++
    // A local edit is durable nowhere until a check says so. An update that came from the
    // relay is on the relay already; only the check can say whether the store has it.
    if (origin !== provider) levels.relay = false
    levels.store = false
    update()
    clearTimeout(editTimer)
    editTimer = setTimeout(check, AFTER_EDIT_MS)
  })
  provider.on('status', ({ status }) => {
    if (status !== 'connected') { levels.relay = false; levels.store = false; update() }
  })
  provider.on('sync', (synced) => { if (synced) check() })
  const timer = setInterval(check, POLL_MS)
  check()
  return { check, stop: () => { clearInterval(timer); clearTimeout(editTimer) } }
}
