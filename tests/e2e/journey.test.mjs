// The whole chain in a real browser: two users edit a document, a diagram and a task through
// the demo page; the relay saves to the store after they leave; the relay restarts with an
// empty data dir and a new visitor cold-starts from the store; then relay and store go down,
// a cached tab reloads from IndexedDB and edits offline, and the edits reach the relay and the
// store when they come back. The durability badges are checked at each step, every step is
// screenshotted under test-output/e2e/, and any console error or uncaught error fails the test.
// The badges come from the client's pushed 'durability' reports (keep.attach(provider)): a last
// step makes one edit per pane and checks its badge went none > browser > relay > store, and
// no page asks the relay's /durable while the relay acknowledges (steps 1, 2 and 6).
//
// Processes: a static server for www/dist (so the page outlives relay and store), the store
// (`ykeep-relay store`) and the relay (`ykeep-relay relay --store-url`) as separate processes.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import * as Y from 'yjs'
import {
  DIST, RELAY_BIN, buildPage, launchBrowser, mintToken, missing, randomName, startServer,
  staticServer, tempDir, until, watchConsole, writeLines
} from './lib.mjs'
import {
  KINDS, addShape, answered, badges, deleteShape, dragShape, editorText, gotoDemo, levelHistory,
  screenshot, shapes, sourceStatuses, taskDone, typeText, waitBadges, yText
} from './page.mjs'

const SECRET = 'e2e-shared-secret'
const TOKEN_KEY = 'e2e-token-key'
const SAVE_FLAGS = ['--save-debounce-ms', '500', '--save-interval-ms', '2000']

async function startStore (dataDir, port = 0, note = () => {}) {
  const args = ['--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--secret', SECRET,
    '--token-key', TOKEN_KEY, '--auto-create']
  try {
    return await startServer('store', RELAY_BIN, ['store', ...args])
  } catch (e) {
    // `ykeep-relay store` is the contract; the store crate's own binary is the same server.
    const alone = join(dirname(RELAY_BIN), 'ykeep-store')
    if (!existsSync(alone)) throw e
    note(`ykeep-relay store did not start (${e.message.split(';')[0]}); using ${alone}`)
    return startServer('store', alone, args)
  }
}

function startRelay (dataDir, storeUrl, port = 0) {
  // --dev-allow-all: the relay must accept the tab while the store (which verifies user
  // tokens) is down. The page still sends its token; the store checks it on direct loads.
  return startServer('relay', RELAY_BIN, ['relay', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir,
    '--store-url', storeUrl, '--secret', SECRET, '--dev-allow-all', ...SAVE_FLAGS])
}

async function storeDoc (storeUrl, kind, id) {
  const res = await fetch(`${storeUrl}/snapshots/${kind}/${id}`, { headers: { Authorization: `Bearer ${SECRET}` } })
  if (res.status !== 200) return null
  const doc = new Y.Doc()
  Y.applyUpdate(doc, new Uint8Array(await res.arrayBuffer()))
  return doc
}

async function relayDoc (relayUrl, kind, id) {
  const res = await fetch(`${relayUrl}/rooms/${kind}/${id}/state`)
  if (res.status !== 200) return null
  const doc = new Y.Doc()
  Y.applyUpdate(doc, new Uint8Array(await res.arrayBuffer()))
  return doc
}

function shapeIds (doc) {
  return [...doc.getMap('shapes').keys()].sort()
}

/** The step running now (requests are filed under it). */
let currentStep = ''

function step (t, name) {
  currentStep = name
  const start = Date.now()
  return {
    done: () => t.diagnostic(`${name}: ${Date.now() - start} ms`),
    wrap: (e) => { e.message = `[${name}] ${e.message}`; return e }
  }
}

test('demo: two users, relay restart from the store, offline edits from IndexedDB', { skip: missing(), timeout: 600_000 }, async (t) => {
  buildPage()
  const dir = tempDir('journey')
  const storeData = join(dir, 'store-data')
  const set = randomName('e2e')
  const token = mintToken(TOKEN_KEY)
  const cleanup = []
  const policy = { offline: false, offlineHosts: [] }
  const watchers = []
  const check = (what) => {
    const errors = watchers.flatMap((w) => w.errors)
    assert.deepEqual(errors, [], `console errors ${what}`)
  }
  let browser
  // Every request to the relay's /durable, with the step it came in (the page polls nothing
  // with the client; the client itself asks /durable only while no socket acknowledges).
  const durableAsks = []
  const watchRequests = (ctx, label) => ctx.on('request', (req) => {
    if (/\/durable(\?|$)/.test(new URL(req.url()).pathname)) durableAsks.push({ step: currentStep, label, url: req.url() })
  })
  const asksIn = (...steps) => durableAsks.filter((r) => steps.includes(r.step))
  try {
    const web = await staticServer(DIST)
    cleanup.push(() => web.close())
    let store = await startStore(storeData, 0, (m) => t.diagnostic(m))
    let relay = await startRelay(join(dir, 'relay-1'), store.url)
    cleanup.push(() => relay.stop('SIGKILL'), () => store.stop('SIGKILL'))
    policy.offlineHosts = [relay.host, store.host]
    const url = `${web.url}/?relay=${encodeURIComponent(relay.url)}&store=${encodeURIComponent(store.url)}&token=${encodeURIComponent(token)}#${set}`
    browser = await launchBrowser()

    // ---- 1. two users edit the same document, diagram and task --------------------------------
    let s = step(t, '1 two users')
    const ctxA = await browser.newContext({ viewport: { width: 1300, height: 900 } })
    const ctxB = await browser.newContext({ viewport: { width: 1300, height: 900 } })
    watchRequests(ctxA, 'A')
    watchRequests(ctxB, 'B')
    const a = await ctxA.newPage()
    const b = await ctxB.newPage()
    watchers.push(watchConsole(a, 'A', policy), watchConsole(b, 'B', policy))
    await gotoDemo(a, url)
    await gotoDemo(b, url)
    for (const k of KINDS) {
      assert.equal(await answered(a, k), 'none', `a fresh room has nothing stored (${k})`)
    }
    await typeText(a, 'document', 'Alice writes the first line. ')
    await typeText(b, 'document', 'Bob adds his. ')
    await typeText(b, 'task', 'Ship the durable demo')
    await a.check('#pane-task [data-role=done]')
    const box = await addShape(a, 'rect')
    const circle = await addShape(b, 'ellipse')
    const doomed = await addShape(b, 'rect')
    await until('A sees B\'s shapes', async () => (await shapes(a)).length === 3)
    await deleteShape(a, doomed)
    const before = (await shapes(a)).find((x) => x.id === box)
    await dragShape(a, box, 120, 80)
    const wantText = (txt) => txt.includes('Alice writes the first line.') && txt.includes('Bob adds his.')
    for (const [p, other] of [[a, 'A'], [b, 'B']]) {
      await until(`${other} sees both users' text`, async () => wantText(await editorText(p, 'document')))
      await until(`${other} sees the task`, async () => (await editorText(p, 'task')).includes('Ship the durable demo'))
      await until(`${other} sees the task done`, () => taskDone(p))
      await until(`${other} sees the diagram (box moved, circle, no deleted box)`, async () => {
        const sh = await shapes(p)
        const moved = sh.find((x) => x.id === box)
        return sh.length === 2 && sh.some((x) => x.id === circle) && moved && moved.x > before.x + 30 && moved.y > before.y + 20
      })
    }
    assert.equal(await yText(a, 'document'), await yText(b, 'document'), 'A and B converge')
    const finalShapes = await shapes(a)
    assert.deepEqual(await shapes(b), finalShapes)
    // The relay saves every 2 s while users are connected: both tabs' badges reach the store.
    await waitBadges(a, 'store', 'A')
    await waitBadges(b, 'store', 'B')
    t.diagnostic(`step 1 badge history (A document): ${(await levelHistory(a, 'document')).join(' > ')}`)
    await screenshot(a, '1-two-users-A')
    await screenshot(b, '1-two-users-B')
    check('while two users edit')
    const docText = await yText(a, 'document')
    const taskText = await yText(a, 'task')
    s.done()

    // ---- 2. both leave; the store holds it; relay killed, restarted EMPTY; cold start --------
    s = step(t, '2 cold start')
    await ctxA.close()
    await ctxB.close()
    await until('the store holds all three rooms after the debounce', async () => {
      const d = await storeDoc(store.url, 'document', set)
      const g = await storeDoc(store.url, 'diagram', set)
      const k = await storeDoc(store.url, 'task', set)
      return d && g && k &&
        d.getText('content').toString() === docText &&
        JSON.stringify(shapeIds(g)) === JSON.stringify(finalShapes.map((x) => x.id)) &&
        k.getText('description').toString() === taskText && k.getMap('meta').get('done') === true
    })
    const relayPort = relay.port
    const killed = await relay.stop('SIGKILL')
    assert.equal(killed.signal, 'SIGKILL')
    const relay2Data = join(dir, 'relay-2')
    relay = await startRelay(relay2Data, store.url, relayPort)
    assert.equal(existsSync(join(dir, 'relay-1')), true)
    const ctxC = await browser.newContext({ viewport: { width: 1300, height: 900 } })
    watchRequests(ctxC, 'C')
    const c = await ctxC.newPage()
    watchers.push(watchConsole(c, 'C', policy))
    await gotoDemo(c, url)
    for (const k of KINDS) {
      assert.equal(await answered(c, k), 'store', `C's ${k} loads from the store (relay has no live room)`)
      const st = await sourceStatuses(c, k)
      assert.equal(st.relay, 'missing', `relay answered "not live" for ${k}: ${JSON.stringify(st)}`)
    }
    assert.equal(await yText(c, 'document'), docText)
    assert.equal(await yText(c, 'task'), taskText)
    assert.deepEqual(await shapes(c), finalShapes)
    assert.equal(await taskDone(c), true)
    assert.ok(wantText(await editorText(c, 'document')), 'C sees the text')
    // The relay itself cold-started the rooms from the store (its own data dir was empty).
    await until('the restarted relay serves the document', async () => {
      const d = await relayDoc(relay.url, 'document', set)
      return d && d.getText('content').toString() === docText
    })
    // C made no edit: its badges say how far what it loaded has got (its mark on Welcome is
    // answered Saved at once, the room having nothing unsaved).
    await waitBadges(c, 'store', 'C after cold start')
    await screenshot(c, '2-cold-start-from-store')
    check('after the cold start')
    s.done()

    // ---- 3. relay and store down; C reloads from IndexedDB and edits offline -----------------
    s = step(t, '3 offline')
    policy.offline = true
    await relay.stop('SIGTERM')
    const storePort = store.port
    await store.stop('SIGTERM')
    await c.reload()
    await c.waitForSelector('body[data-ready=true]', { timeout: 90_000 })
    for (const k of KINDS) {
      assert.equal(await answered(c, k), 'indexeddb', `C's ${k} reloads from IndexedDB`)
      const st = await sourceStatuses(c, k)
      assert.ok(st.relay === 'error' || st.relay === 'timeout', `relay down for ${k}: ${JSON.stringify(st)}`)
      assert.ok(st.store === 'error' || st.store === 'timeout', `store down for ${k}: ${JSON.stringify(st)}`)
    }
    assert.equal(await yText(c, 'document'), docText, 'the cached document')
    assert.deepEqual(await shapes(c), finalShapes, 'the cached diagram')
    assert.equal(await yText(c, 'task'), taskText, 'the cached task')
    await typeText(c, 'document', 'Written offline. ')
    await typeText(c, 'task', ' (offline note)')
    await c.uncheck('#pane-task [data-role=done]')
    const offlineShape = await addShape(c, 'ellipse')
    await waitBadges(c, 'browser', 'C offline')
    const offlineDoc = await yText(c, 'document')
    const offlineTask = await yText(c, 'task')
    assert.ok(offlineDoc.includes('Written offline.'))
    await screenshot(c, '3-offline-edits-in-browser')
    check('while offline')

    // ---- 4. relay back (store still down): the offline edits reach the relay ------------------
    s.done()
    s = step(t, '4 relay back')
    relay = await startRelay(relay2Data, `http://127.0.0.1:${storePort}`, relayPort)
    await until('the relay has the offline edits', async () => {
      const d = await relayDoc(relay.url, 'document', set)
      return d && d.getText('content').toString() === offlineDoc
    })
    policy.offline = false
    await waitBadges(c, 'relay', 'C with the relay back and the store down')
    await screenshot(c, '4-relay-back-store-down')
    check('with the relay back')

    // ---- 5. store back: the relay saves, the badges reach the store ---------------------------
    s.done()
    s = step(t, '5 store back')
    store = await startStore(storeData, storePort, (m) => t.diagnostic(m))
    await until('the store has the offline edits', async () => {
      const d = await storeDoc(store.url, 'document', set)
      const g = await storeDoc(store.url, 'diagram', set)
      const k = await storeDoc(store.url, 'task', set)
      return d && g && k &&
        d.getText('content').toString() === offlineDoc &&
        shapeIds(g).includes(offlineShape) &&
        k.getText('description').toString() === offlineTask && k.getMap('meta').get('done') === false
    })
    await waitBadges(c, 'store', 'C with relay and store back')
    for (const k of KINDS) {
      const h = await levelHistory(c, k)
      const iBrowser = h.indexOf('browser')
      const iRelay = h.indexOf('relay', iBrowser)
      const iStore = h.indexOf('store', iRelay)
      assert.ok(iBrowser >= 0 && iRelay > iBrowser && iStore > iRelay, `${k} badge went browser > relay > store: ${h.join(' > ')}`)
    }
    await screenshot(c, '5-offline-edits-in-store')
    check('with relay and store back')

    // ---- 6. one edit per pane, all up: its badge goes browser > relay > store, pushed ---------
    s.done()
    s = step(t, '6 one edit')
    const edits = {
      document: () => typeText(c, 'document', '!'),
      task: () => c.check('#pane-task [data-role=done]'),
      diagram: () => addShape(c, 'rect')
    }
    for (const k of KINDS) {
      await until(`C's ${k} badge at "store" before the edit`, async () => (await badges(c))[k] === 'store')
      const from = (await levelHistory(c, k)).length
      await edits[k]()
      await until(`C's ${k} badge at "store" after one edit`, async () => (await badges(c))[k] === 'store')
      const seen = (await levelHistory(c, k)).slice(from)
      assert.deepEqual(seen, ['none', 'browser', 'relay', 'store'], `${k}: the badge after one edit went ${seen.join(' > ')}`)
    }
    check('at the end')
    const online = asksIn('1 two users', '2 cold start', '6 one edit')
    assert.deepEqual(online, [], 'requests to /durable while the relay acknowledges on the pages\' sockets')
    t.diagnostic(`/durable requests while the relay or the store was down (the client's own fallback while no socket acknowledges): ${durableAsks.length}${durableAsks.length ? ` (${[...new Set(durableAsks.map((r) => r.step))].join(', ')})` : ''}`)
    const tolerated = watchers.flatMap((w) => w.tolerated)
    t.diagnostic(`tolerated network log lines (documented 404s, refused connections while down): ${tolerated.length}, listed in ${writeLines('journey-tolerated-console.txt', tolerated)}`)
    await ctxC.close()
    s.done()
  } finally {
    if (browser) await browser.close().catch(() => {})
    for (const f of cleanup.reverse()) await f()
    if (process.env.YKEEP_E2E_KEEP !== '1') rmSync(dir, { recursive: true, force: true })
  }
})
