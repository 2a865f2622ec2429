// Issue 7, items 2 and 3: store outages (down, 500s, stalls) and two relays saving one room.
// Relay and store run as separate processes (`ykeep-relay relay --store-url`, `ykeep-relay store`).
// Seeds are printed; rerun one with YKEEP_SEED=<seed>.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { runOutage } from '../reliability/outage.mjs'
import { runTwoRelays } from '../reliability/two-relays.mjs'
import { relayBin } from '../reliability/lib/procs.mjs'

const skip = relayBin() ? false : 'relay binary not built (cargo build -p ykeep-relay --bins, or set YKEEP_RELAY_BIN)'
const log = (m) => console.log(m)

// after_*: issue 7 item 4 end to end: the store aborts inside the relay's save (the store's own
// crash test is crates/store/tests/durability.rs); the relay's next save after the restart wins.
for (const mode of ['down', '500', 'stall', 'after_blob_write', 'after_row_switch']) {
  test(`store outage (${mode}): saves fail and are counted, edits go on, the next save catches up`, { skip, timeout: 240_000 }, async () => {
    const r = await runOutage({ mode, log })
    assert.ok(r.failedSaves > 0, JSON.stringify(r))
    assert.ok(r.editsDuringOutage > 0, JSON.stringify(r))
  })
}

test('two relays, one room, one store: the snapshot keeps every edit from both', { skip, timeout: 240_000 }, async () => {
  const r = await runTwoRelays({ log })
  assert.ok(r.updates > 0)
})
