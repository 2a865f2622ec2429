// The task pane: a 'done' flag in Y.Map 'meta' and the description as Y.Text 'description'.
import { mountText } from './document.js'

export function mountTask (room, pane) {
  const meta = room.ydoc.getMap('meta')
  const box = pane.querySelector('[data-role=done]')
  const render = () => { box.checked = meta.get('done') === true }
  meta.observe(render)
  render()
  box.addEventListener('change', () => meta.set('done', box.checked))
  return mountText(room, pane.querySelector('[data-role=editor]'), { field: 'description', placeholderLines: 7 })
}
