// Compaction deletes log records: only those the save covered. A save replaces the records up to
// its sequence number by the saved state; an edit logged while the save was in flight stays, and
// so does a record the room cannot read (another format), which the saved state may lack.
// Read from the persisted SQLite files of the Durable Object (sqlite3).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import * as Y from 'yjs'
import { startProxiedStack, skipReason, sqliteSkipReason, readRoomTables, recordUpdates } from './lib.mjs'
import { createResource, waitFor } from '../reliability/lib/procs.mjs'
import { SyncClient } from '../reliability/lib/client.mjs'

const skip = skipReason() || sqliteSkipReason()
const KIND = 'document'
const ID = 'compaction'

function textOfRecords (log) {
  const d = new Y.Doc()
  for (const r of log) {
    if (r.format !== 1 && r.format !== 2) continue
    for (const u of recordUpdates(r.format, r.data)) Y.applyUpdate(d, u)
  }
  return d.getText('t').toString()
}

function edit (client, text) {
  const d = new Y.Doc()
  Y.applyUpdate(d, Y.encodeStateAsUpdate(client.doc))
  const sv = Y.encodeStateVector(d)
  d.getText('t').insert(d.getText('t').length, text)
  client.sendUpdate(Y.encodeStateAsUpdate(d, sv))
}

const room = (persist) => readRoomTables(persist).find((t) => textOfRecords(t.log).includes('one'))

test('a save compacts only what it covered: a later edit and an unreadable record stay', { skip, timeout: 120_000 }, async () => {
  const stack = await startProxiedStack({ vars: { YKEEP_SAVE_INTERVAL_MS: '800', YKEEP_SAVE_DEBOUNCE_MS: '60000' } })
  try {
    await createResource(stack.store.url, KIND, ID)
    const url = () => `${stack.party.wsUrl}/rooms/${KIND}/${ID}`
    let a = new SyncClient(url(), { name: 'a', reconnect: false })
    await waitFor('a synced', () => a.synced)

    // 1. A save held in flight while another edit is logged.
    stack.proxy.setMode('hold')
    edit(a, 'one ')
    await waitFor('the save is in flight', () => stack.proxy.requests.some((r) => r.method === 'POST' && r.status === null))
    edit(a, 'two ')
    await waitFor('the second edit is logged', () => textOfRecords(room(stack.persist)?.log ?? []) === 'one two ')
    stack.proxy.setMode('pass')
    await waitFor('the held save answered', () => stack.proxy.saves(KIND, ID) >= 1)
    const afterFirst = await waitFor('the log compacted up to the saved sequence', () => {
      const t = room(stack.persist)
      return t?.saved && t.log.some((r) => r.format === 2) && t
    })
    const covered = afterFirst.log.filter((r) => r.seq <= afterFirst.saved.saved_seq)
    const later = afterFirst.log.filter((r) => r.seq > afterFirst.saved.saved_seq)
    assert.equal(covered.length, 1, 'the covered records became one')
    assert.ok(later.length >= 1, 'the edit logged during the save was compacted away')
    assert.equal(textOfRecords(afterFirst.log), 'one two ', 'the log lost an edit')

    // 2. A record of a format this host cannot read, covered by the next save's sequence.
    a.close()
    await stack.party.kill9()
    execFileSync('sqlite3', [afterFirst.file,
      `INSERT INTO ykeep_log (id, part, seq, format, data) VALUES (9999, 0, 1, 77, x'c0ffee')`])
    await stack.restart({ crash: false })
    a = new SyncClient(url(), { name: 'a2', reconnect: false })
    await waitFor('a synced again', () => a.synced && a.text() === 'one two ')
    const saved = stack.proxy.saves(KIND, ID)
    edit(a, 'three')
    await waitFor('the next save', () => stack.proxy.saves(KIND, ID) > saved)
    const end = await waitFor('the log compacted again', () => {
      const t = readRoomTables(stack.persist).find((x) => x.file === afterFirst.file)
      return t?.saved && t.saved.saved_seq > afterFirst.saved.saved_seq && t
    })
    const unknown = end.log.filter((r) => r.format === 77)
    assert.equal(unknown.length, 1, 'a record the room cannot read was compacted away')
    assert.equal(Buffer.from(unknown[0].data).toString('hex'), 'c0ffee')
    assert.equal(textOfRecords(end.log), 'one two three')
    a.close()
  } finally {
    await stack.stop()
  }
})
