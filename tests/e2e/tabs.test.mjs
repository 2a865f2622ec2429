// Two tabs of one origin on one room, each with its own YKeep over the same IndexedDB database
// (headless Chromium, one browser context, the built pkg/ client; no relay, no store). What the
// client coordinates between tabs, and why:
//
// - No Web Lock around compaction. `idb::compact` (src/idb.rs) is ONE read-write transaction
//   over `rooms` and `log`: it reads the record and the room's log, writes the folded record and
//   deletes exactly the log keys it read. `idb::append` is a read-write transaction over `log`.
//   IndexedDB runs read-write transactions whose scopes overlap one at a time, in the order they
//   were created, across every connection of the origin: an append lands either before a
//   compaction (it is read and folded) or after it (it stays in the log), never between its read
//   and its deletes; two compactions run one after the other, the second over the first's
//   record. A Web Lock around the transaction added nothing, and was removed. The first test
//   has both tabs append and compact concurrently (explicit `compact()` calls plus the writer's
//   own compactions under a tiny floor), then a third tab loads the room from IndexedDB alone
//   and must hold every edit of both. It has teeth: with `idb::compact` split into a read-only
//   transaction, then (after a random 0-20 ms) a read-write one writing the fold and deleting
//   the keys read, the design a lock would have had to guard, it lost edits in 6 runs of 6.
// - A BroadcastChannel notice after each compaction ("compacted", `listen_to_other_tabs` in
//   src/engine.rs). A compaction folds every tab's log entries, but each tab counts the log
//   bytes it appended to decide when to compact (`CompactionPolicy`: log > max(state, floor)).
//   The notice resets that count in the other tabs; without it a tab keeps counting entries that
//   are gone and rewrites the full state long before its log is due. The second test shows it:
//   it fails when `note_other_tabs` posts nothing.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { clientPageServer, clientUnavailable, launchBrowser, randomName, until, watchConsole } from './lib.mjs'

const unavailable = clientUnavailable

let server
let browser

before(async () => {
  if (unavailable()) return
  server = await clientPageServer('tabs')
  browser = await launchBrowser()
})

after(async () => {
  if (browser) await browser.close().catch(() => {})
  if (server) await server.close()
})

/**
 * A tab of `context` with a YKeep on `options.id` (kind document, IndexedDB on) as `window.keep`;
 * its own compactions and other tabs' notices are counted in `window.own` / `window.others`.
 */
async function openTab (context, label, options) {
  const page = await context.newPage()
  const watch = watchConsole(page, label)
  await page.goto(`${server.url}/`)
  await page.waitForFunction(() => window.tabReady === true)
  const report = await page.evaluate(async (options) => {
    window.doc = new window.Y.Doc()
    window.keep = new window.YKeep(window.doc, { kind: 'document', ...options })
    window.own = []
    window.others = []
    window.keep.on('compacted', (e) => (e.byOtherTab ? window.others : window.own).push(e))
    return window.keep.whenSynced
  }, options)
  return { page, watch, report }
}

const counts = (page) => page.evaluate(() => ({ own: window.own.length, others: window.others.length }))

test('two tabs appending and compacting at once lose no edit (no lock needed)', { skip: unavailable(), timeout: 60_000 }, async () => {
  const context = await browser.newContext()
  try {
    const options = { id: randomName('tabs'), dbName: randomName('ykeep-tabs'), compactionFloorBytes: 256 }
    const tabs = [await openTab(context, 'tab a', options), await openTab(context, 'tab b', options)]
    const N = 1000
    // Both tabs at once: one edit per task (so the two tabs' transactions interleave), an
    // explicit compact() every 5 edits, not awaited (several are in flight together), on top of
    // the writer's own compactions past the 256-byte floor.
    const runs = await Promise.all(tabs.map(({ page }, k) => page.evaluate(async ({ tag, n }) => {
      const text = window.doc.getText('t')
      const compactions = []
      for (let i = 0; i < n; i++) {
        text.insert(text.length, `[${tag}:${i}]`)
        if (i % 5 === 0) compactions.push(window.keep.compact())
        await new Promise((resolve) => setTimeout(resolve, 0))
      }
      const results = await Promise.all(compactions)
      await window.keep.flush()
      return { explicit: results.filter((r) => r && r.logBytesBefore > 0).length, ...(await window.keep.storedBytes()) }
    }, { tag: 'ab'[k], n: N })))
    for (const [k, { page }] of tabs.entries()) {
      const c = await counts(page)
      // Each tab compacted many times, both ways (whether notices arrive is the next test's).
      assert.ok(c.own >= 10, `tab ${'ab'[k]} compacted ${c.own} times`)
      assert.ok(runs[k].explicit >= 5, `tab ${'ab'[k]}: ${runs[k].explicit} explicit compactions folded something`)
    }
    // A third tab, from IndexedDB alone.
    const fresh = await openTab(context, 'tab c', options)
    const cache = fresh.report.sources.find((s) => s.source === 'indexeddb')
    assert.equal(cache?.status, 'ok', `the cache answered: ${JSON.stringify(fresh.report.sources)}`)
    const text = await fresh.page.evaluate(() => window.doc.getText('t').toString())
    const seen = new Set(text.match(/\[[ab]:\d+\]/g))
    const lost = ['a', 'b'].flatMap((tag) => Array.from({ length: N }, (_, i) => `[${tag}:${i}]`)).filter((e) => !seen.has(e))
    assert.deepEqual(lost, [], `edits missing from the room after concurrent compactions (${seen.size} of ${2 * N} there)`)
    assert.equal(text.match(/\[[ab]:\d+\]/g).join(''), text, 'nothing but the edits')
    assert.deepEqual([...tabs, fresh].flatMap((t) => t.watch.errors), [], 'console errors')
  } finally {
    await context.close()
  }
})

test('a compaction in one tab resets the other tab\'s log count (no needless compaction)', { skip: unavailable(), timeout: 60_000 }, async () => {
  const context = await browser.newContext()
  try {
    // Floor 10,000 bytes: a tab compacts once the log it counts passes 10,000 bytes (the state
    // stays under that here). B appends 6 × ~1,000 bytes, A compacts (folding B's entries), B
    // appends 5 × ~1,000 more: B's log holds ~5,000 bytes, but a B that missed the notice counts
    // ~11,000 and rewrites the whole state.
    const options = { id: randomName('tabs'), dbName: randomName('ykeep-tabs'), compactionFloorBytes: 10_000 }
    const a = await openTab(context, 'tab a', options)
    const b = await openTab(context, 'tab b', options)
    const append = (page, from, chunks) => page.evaluate(async ({ from, chunks }) => {
      const text = window.doc.getText('t')
      for (let i = from; i < from + chunks; i++) {
        text.insert(text.length, String(i % 10).repeat(1000))
        await window.keep.flush()
      }
      return window.keep.storedBytes()
    }, { from, chunks })
    const first = await append(b.page, 0, 6)
    assert.ok(first.logBytes > 6000 && first.logBytes < 10_000, `B's log before A compacts: ${JSON.stringify(first)}`)
    assert.deepEqual(await counts(b.page), { own: 0, others: 0 }, 'B has not compacted yet')

    const folded = await a.page.evaluate(() => window.keep.compact())
    assert.ok(folded.logBytesBefore >= 6000, `A's compaction folded B's entries: ${JSON.stringify(folded)}`)
    // The notice reaches B in another task; wait for it (bounded: without a notice the test
    // goes on, and B's own compaction below is what fails).
    const noticed = await until('B hears of A\'s compaction', async () => (await counts(b.page)).others >= 1, 5_000).catch(() => false)

    const second = await append(b.page, 6, 5)
    const { own } = await counts(b.page)
    assert.equal(own, 0, `B compacted ${own} time(s) under a 10,000-byte floor with ~5,000 bytes appended since A's compaction: it still counted the entries A folded`)
    assert.ok(second.logBytes > 5000 && second.logBytes < 10_000, `B's log after A's compaction: ${JSON.stringify(second)}`)
    assert.ok(noticed, 'B got the "compacted" notice from A')
    const [ca, cb] = [await counts(a.page), await counts(b.page)]
    assert.deepEqual({ a: ca, b: cb }, { a: { own: 1, others: 0 }, b: { own: 0, others: 1 } })
    assert.deepEqual([...a.watch.errors, ...b.watch.errors], [], 'console errors')
  } finally {
    await context.close()
  }
})

/** Every key of `dbName`'s `rooms` and `log` stores, read on a connection of its own, closed after. */
const keysOf = (page, dbName) => page.evaluate((dbName) => new Promise((resolve, reject) => {
  const open = indexedDB.open(dbName)
  open.onerror = () => reject(open.error)
  open.onsuccess = () => {
    const db = open.result
    const tx = db.transaction(['rooms', 'log'], 'readonly')
    const rooms = tx.objectStore('rooms').getAllKeys()
    const log = tx.objectStore('log').getAllKeys()
    tx.oncomplete = () => { db.close(); resolve({ rooms: rooms.result.map(String), log: log.result.map(String) }) }
    tx.onerror = () => reject(tx.error)
  }
}), dbName)

test('a tab with a newer cache format: the older tab closes the database, writes nothing more, reports the browser tier unavailable', { skip: unavailable(), timeout: 60_000 }, async () => {
  const context = await browser.newContext()
  try {
    const options = { id: randomName('tabs'), dbName: randomName('ykeep-tabs') }
    const a = await openTab(context, 'tab a', options)
    await a.page.evaluate(async () => {
      window.reports = []
      window.warnings = []
      window.keep.on('durability', (r) => window.reports.push(r))
      window.keep.on('warning', (e) => window.warnings.push(e.message))
      const text = window.doc.getText('t')
      for (let i = 0; i < 20; i++) text.insert(text.length, `[before:${i}]`)
      await window.keep.whenSaved('browser')
    })
    const before = await keysOf(a.page, options.dbName)
    assert.ok(before.log.length > 0, 'tab A wrote its edits to the log')

    // Tab B: a later client, whose cache format is version 2. Its upgrade writes a record of that
    // format; its open waits until every connection of tab A is closed.
    const b = await context.newPage()
    await b.goto(`${server.url}/`)
    const upgrade = await b.evaluate(({ dbName, room }) => new Promise((resolve) => {
      const started = performance.now()
      let blocked = false
      const open = indexedDB.open(dbName, 2)
      open.onblocked = () => { blocked = true }
      open.onupgradeneeded = () => {
        open.transaction.objectStore('rooms').put({ v: 2, format: 'newer' }, `${room}#v2`)
      }
      open.onsuccess = () => { open.result.close(); resolve({ ok: true, blocked, ms: performance.now() - started }) }
      open.onerror = () => resolve({ ok: false, error: String(open.error) })
      setTimeout(() => resolve({ ok: false, error: `still waiting after 10 s (blocked: ${blocked})` }), 10_000)
    }), { dbName: options.dbName, room: `document/${options.id}` })
    assert.ok(upgrade.ok, `tab B's upgrade to version 2 went through: ${JSON.stringify(upgrade)}`)

    // Tab A hears of it at once, not at its next write: its browser tier is unavailable, and
    // says why (a page learning it from a failed write would say so only after its next edit).
    const told = await until('tab A reports its browser tier unavailable', () => a.page.evaluate(() => window.reports.at(-1)?.browser), 5_000).catch(() => null)
    assert.match(told ?? '', /another tab opened this cache at version 2/, `reports: ${JSON.stringify(await a.page.evaluate(() => window.reports))}`)
    // Its later edits stay in memory (and go to a relay, when there is one) and are not written.
    const seen = await a.page.evaluate(async () => {
      const text = window.doc.getText('t')
      for (let i = 0; i < 20; i++) text.insert(text.length, `[after:${i}]`)
      await window.keep.flush()
      const browser = await window.keep.whenSaved('browser').then(() => 'resolved', (e) => e.message)
      return { last: window.reports.at(-1), unsaved: window.keep.unsaved(), browser, text: text.toString(), warnings: window.warnings }
    })
    assert.match(seen.last?.browser ?? '', /another tab opened this cache at version 2/, JSON.stringify(seen.last))
    assert.ok(seen.unsaved.includes('browser'), `unsaved: ${seen.unsaved}`)
    assert.match(seen.browser, /browser tier is unavailable/)
    assert.equal(seen.text.match(/\[after:\d+\]/g)?.length, 20, 'the edits after the upgrade are in the doc')
    assert.ok(seen.warnings.some((w) => /another tab opened this cache at version 2/.test(w)), `a warning says why: ${seen.warnings}`)

    // Nothing deleted or overwritten, nothing written after the upgrade: the stores hold A's
    // keys from before, plus B's record.
    const now = await keysOf(b, options.dbName)
    assert.deepEqual(now.log, before.log, 'the log holds exactly what tab A wrote before the upgrade')
    assert.deepEqual(now.rooms.filter((k) => !k.endsWith('#v2')), before.rooms)
    const record = await b.evaluate(({ dbName, room }) => new Promise((resolve) => {
      const open = indexedDB.open(dbName)
      open.onsuccess = () => {
        const get = open.result.transaction('rooms').objectStore('rooms').get(`${room}#v2`)
        get.onsuccess = () => { open.result.close(); resolve(get.result) }
      }
    }), { dbName: options.dbName, room: `document/${options.id}` })
    assert.deepEqual(record, { v: 2, format: 'newer' }, 'the newer record is as tab B wrote it')
    assert.deepEqual(a.watch.errors, [], 'console errors')
  } finally {
    await context.close()
  }
})
