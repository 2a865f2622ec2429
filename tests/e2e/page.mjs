// Driving the demo page (www/) the way a user does, and reading what it shows.
import { join } from 'node:path'
import { mkdirSync } from 'node:fs'
import { OUT, until } from './lib.mjs'

export const KINDS = ['document', 'diagram', 'task']

export async function openDemo (context, url) {
  const page = await context.newPage()
  return page
}

export async function gotoDemo (page, url) {
  await page.goto(url)
  await waitReady(page)
}

export async function waitReady (page) {
  await page.waitForSelector('body[data-ready=true]', { timeout: 90_000 })
}

export async function screenshot (page, name) {
  mkdirSync(OUT, { recursive: true })
  const path = join(OUT, `${name}.png`)
  await page.screenshot({ path, fullPage: true })
  return path
}

/** Types at the end of the document pane's or task pane's CodeMirror editor. */
export async function typeText (page, kind, text) {
  const content = page.locator(`#pane-${kind} .cm-content`)
  await content.click()
  await page.keyboard.press('Control+End')
  await page.keyboard.type(text)
}

/** What the editor shows (CodeMirror's DOM) in the document or task pane. */
export function editorText (page, kind) {
  return page.locator(`#pane-${kind} .cm-content`).innerText()
}

/** The Y.Text behind the editor, read from the page's Y.Doc. */
export function yText (page, kind) {
  return page.evaluate((kind) => {
    const room = window.ykeepDemo.rooms[kind]
    return room.ydoc.getText(kind === 'task' ? 'description' : 'content').toString()
  }, kind)
}

/** The shapes the diagram SVG draws: [{id, type, x, y}] sorted by id. */
export function shapes (page) {
  return page.$$eval('#pane-diagram svg .shape', (els) => els
    .map((el) => ({ id: el.dataset.id, type: el.dataset.type, x: Number(el.dataset.x), y: Number(el.dataset.y) }))
    .sort((a, b) => (a.id < b.id ? -1 : 1)))
}

export async function addShape (page, type) {
  const before = (await shapes(page)).map((s) => s.id)
  await page.click(`#pane-diagram [data-action=${type === 'ellipse' ? 'add-ellipse' : 'add-rect'}]`)
  const after = await until('the new shape drawn', async () => {
    const now = await shapes(page)
    return now.length > before.length ? now : null
  }, 10_000)
  return after.find((s) => !before.includes(s.id)).id
}

/** Drags a shape by (dx, dy) screen pixels with the mouse. */
export async function dragShape (page, id, dx, dy) {
  const box = await page.locator(`#pane-diagram svg .shape[data-id="${id}"]`).boundingBox()
  const x = box.x + box.width / 2
  const y = box.y + box.height / 2
  await page.mouse.move(x, y)
  await page.mouse.down()
  for (let i = 1; i <= 5; i++) await page.mouse.move(x + (dx * i) / 5, y + (dy * i) / 5)
  await page.mouse.up()
}

export async function deleteShape (page, id) {
  await page.click(`#pane-diagram svg .shape[data-id="${id}"]`)
  await page.click('#pane-diagram [data-action=delete]')
}

export function taskDone (page) {
  return page.isChecked('#pane-task [data-role=done]')
}

export function badge (page, kind) {
  return page.getAttribute(`#pane-${kind} [data-role=badge]`, 'data-level')
}

export async function badges (page) {
  const out = {}
  for (const k of KINDS) out[k] = await badge(page, k)
  return out
}

/** Waits until every pane's badge shows `level`. */
export function waitBadges (page, level, what = '', timeoutMs = 60_000) {
  return until(`${what} badges at "${level}"`, async () => {
    const b = await badges(page)
    return KINDS.every((k) => b[k] === level) ? b : null
  }, timeoutMs)
}

/** Which source the load report says answered ('relay', 'store', 'indexeddb' or 'none'). */
export function answered (page, kind) {
  return page.getAttribute(`#pane-${kind} [data-role=load-report]`, 'data-answered')
}

/** The load report's per-source statuses, e.g. {relay: 'missing', store: 'ok', indexeddb: 'ok'}. */
export function sourceStatuses (page, kind) {
  return page.$$eval(`#pane-${kind} [data-role=load-report] [data-source]`, (els) =>
    Object.fromEntries(els.map((el) => [el.dataset.source, el.dataset.status])))
}

/** The badge levels a pane went through since the page loaded. */
export function levelHistory (page, kind) {
  return page.evaluate((kind) => window.ykeepDemo.rooms[kind].state.history.map((h) => h.level), kind)
}
