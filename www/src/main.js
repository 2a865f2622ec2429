// The ykeep demo: three rooms (document, diagram, task) of one room set, each loaded through
// the ykeep client and kept live by y-websocket against the relay.
import { readConfig, randomSet, validSet, withDemoToken } from './config.js'
import { openRoom } from './room.js'
import { mountText } from './document.js'
import { mountDiagram } from './diagram.js'
import { mountTask } from './task.js'

const config = await withDemoToken(readConfig())
if (!config.set) {
  // A room set must be visible in the URL so a second window can open the same rooms.
  window.location.replace(`${window.location.pathname}${window.location.search}#welcome`)
  config.set = 'welcome'
}

const picker = document.getElementById('room-picker')
const input = document.getElementById('room-set')
input.value = config.set
picker.addEventListener('submit', (evt) => {
  evt.preventDefault()
  if (validSet(input.value)) window.location.hash = input.value
})
document.getElementById('new-room-set').addEventListener('click', () => {
  window.location.hash = randomSet()
})
// Rooms are bound to the set at load; a new set is a fresh page.
window.addEventListener('hashchange', () => window.location.reload())

document.getElementById('endpoints').textContent =
  `relay ${config.relayUrl}` +
  (config.storeUrl ? ` · store ${config.storeUrl}` : ' · store: through the relay (no user token for direct loads)') +
  ` · rooms document/${config.set}, diagram/${config.set}, task/${config.set}`

const mounts = {
  document: (room, pane) => mountText(room, pane.querySelector('[data-role=editor]')),
  diagram: mountDiagram,
  task: mountTask
}

const rooms = {}
window.ykeepDemo = { config, rooms }

await Promise.all(Object.keys(mounts).map(async (kind) => {
  const pane = document.getElementById(`pane-${kind}`)
  const room = await openRoom({ kind, config, pane })
  mounts[kind](room, pane)
  rooms[kind] = room
}))
document.body.dataset.ready = 'true'
