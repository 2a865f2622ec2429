// What a new user gets from the README's main command: `ykeep-relay serve --demo` with the demo
// page as its static dir (relay + embedded store + page on one port). The page opens on the
// default room set, loads with no console error, two windows edit together, and the badges
// reach "in the snapshot store". The screenshot is test-output/e2e/new-user.png.
// The badges come from the client's pushed reports; a pane where the window made no edit says
// how far what it loaded (or received) has got.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { DIST, RELAY_BIN, buildPage, launchBrowser, missing, randomName, startServer, tempDir, until, watchConsole } from './lib.mjs'
import { KINDS, addShape, answered, badges, editorText, gotoDemo, screenshot, shapes, sourceStatuses, typeText, waitBadges } from './page.mjs'

test('serve --demo: the page a new user opens', { skip: missing(), timeout: 300_000 }, async (t) => {
  buildPage()
  const dir = tempDir('serve')
  let server
  let browser
  try {
    server = await startServer('serve-demo', RELAY_BIN, ['serve', '--demo', '--listen', '127.0.0.1:0',
      '--data-dir', join(dir, 'data'), '--static-dir', DIST, '--save-debounce-ms', '500', '--save-interval-ms', '2000'])
    browser = await launchBrowser()
    const ctx = await browser.newContext({ viewport: { width: 1300, height: 900 } })
    const page = await ctx.newPage()
    const watch = watchConsole(page, 'new user')
    // The bare URL a new user opens picks the shared default room set and shows it in the URL.
    await page.goto(`${server.url}/`)
    await page.waitForSelector('body[data-ready=true]', { timeout: 90_000 })
    assert.equal(new URL(page.url()).hash, '#welcome')
    assert.equal(await page.inputValue('#room-set'), 'welcome')
    // A room set of its own for the rest, so reruns on one data dir never see old content.
    const set = randomName('new-user')
    await page.fill('#room-set', set)
    await page.click('#room-picker button[type=submit]')
    await until('the page reopened on the new room set', async () =>
      new URL(page.url()).hash === `#${set}` && (await page.getAttribute('body', 'data-ready')) === 'true' &&
      (await page.evaluate(() => window.ykeepDemo.config.set)) === set)
    for (const k of KINDS) assert.equal(await answered(page, k), 'none', `${k}: a new room has nothing stored`)

    await typeText(page, 'document', 'Hello from a new user. ')
    await typeText(page, 'task', 'Try the demo')
    await addShape(page, 'rect')
    await waitBadges(page, 'store', 'new user')

    const other = await (await browser.newContext({ viewport: { width: 1300, height: 900 } })).newPage()
    const watch2 = watchConsole(other, 'second window')
    await gotoDemo(other, `${server.url}/#${set}`)
    await until('the second window sees the text', async () => (await editorText(other, 'document')).includes('Hello from a new user.'))
    await until('the second window sees the shape', async () => (await shapes(other)).length === 1)
    await waitBadges(other, 'store', 'second window, before its edit')
    await typeText(other, 'document', 'And a second window. ')
    await until('the first window sees the second window\'s text', async () => (await editorText(page, 'document')).includes('And a second window.'))
    await until('the second window\'s document badge at "store"', async () => (await badges(other)).document === 'store')
    await waitBadges(other, 'store', 'second window')
    await page.reload()
    await page.waitForSelector('body[data-ready=true]', { timeout: 90_000 })
    // The second window keeps the rooms live, so the reload is answered by the relay: with the
    // state the cache lacks, or a 304 when the cache already holds the room's state (issue 16).
    for (const k of KINDS) {
      const st = await sourceStatuses(page, k)
      const from = await answered(page, k)
      assert.ok(st.relay === 'ok' || st.relay === 'unchanged', `${k} reloads from the live relay room: ${JSON.stringify(st)}`)
      // The first source with data answers (relay, store, IndexedDB): after a 304 from the relay
      // the store still sends its snapshot when it saved one the cache does not hold yet.
      const first = st.relay === 'ok' ? 'relay' : st.store === 'ok' ? 'store' : 'indexeddb'
      assert.equal(from, first, `${k}: ${JSON.stringify(st)}`)
    }
    await until('the first window, reloaded, shows the text', async () => (await editorText(page, 'document')).includes('Hello from a new user.'))
    await until('the first window, reloaded, shows the second window\'s text', async () => (await editorText(page, 'document')).includes('And a second window.'))
    await waitBadges(page, 'store', 'new user after reload')
    const shot = await screenshot(page, 'new-user')
    t.diagnostic(`screenshot: ${shot}`)
    assert.deepEqual([...watch.errors, ...watch2.errors], [], 'console errors')
  } finally {
    if (browser) await browser.close().catch(() => {})
    if (server) await server.stop('SIGTERM')
    if (process.env.YKEEP_E2E_KEEP !== '1') rmSync(dir, { recursive: true, force: true })
  }
})
