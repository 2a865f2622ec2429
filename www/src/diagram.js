// The diagram pane: shapes in Y.Map 'shapes' (id → Y.Map {type, x, y, w, h, fill, z}) drawn as
// SVG. Add a box or a circle, drag to move (every move is a Yjs transaction, so peers see it
// live), select and press Delete (or the button) to remove.
import * as Y from 'yjs'

const SVG = 'http://www.w3.org/2000/svg'
const W = 400
const H = 300
const FILLS = ['#ffd166', '#8ecae6', '#b5e48c', '#f4a3a8', '#cdb4db']

function shapeId () {
  const b = crypto.getRandomValues(new Uint8Array(6))
  return 's' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')
}

export function mountDiagram (room, pane) {
  const ydoc = room.ydoc
  const shapes = ydoc.getMap('shapes')
  const svg = pane.querySelector('[data-role=diagram]')
  const delButton = pane.querySelector('[data-action=delete]')
  const count = pane.querySelector('[data-role=shape-count]')
  let selected = null
  let drag = null

  const toSvg = (evt) => {
    const pt = svg.createSVGPoint()
    pt.x = evt.clientX
    pt.y = evt.clientY
    return pt.matrixTransform(svg.getScreenCTM().inverse())
  }

  const render = () => {
    svg.replaceChildren()
    const list = [...shapes.entries()]
      .filter(([, m]) => m instanceof Y.Map)
      .sort((a, b) => (a[1].get('z') || 0) - (b[1].get('z') || 0) || (a[0] < b[0] ? -1 : 1))
    for (const [id, m] of list) {
      const type = m.get('type')
      const x = m.get('x'); const y = m.get('y'); const w = m.get('w'); const h = m.get('h')
      let el
      if (type === 'ellipse') {
        el = document.createElementNS(SVG, 'ellipse')
        el.setAttribute('cx', x + w / 2)
        el.setAttribute('cy', y + h / 2)
        el.setAttribute('rx', w / 2)
        el.setAttribute('ry', h / 2)
      } else {
        el = document.createElementNS(SVG, 'rect')
        el.setAttribute('x', x)
        el.setAttribute('y', y)
        el.setAttribute('width', w)
        el.setAttribute('height', h)
        el.setAttribute('rx', 4)
      }
      el.setAttribute('fill', m.get('fill') || FILLS[0])
      el.setAttribute('class', 'shape' + (id === selected ? ' selected' : ''))
      el.dataset.id = id
      el.dataset.type = type
      el.dataset.x = String(Math.round(x))
      el.dataset.y = String(Math.round(y))
      el.addEventListener('pointerdown', (evt) => startDrag(evt, id))
      svg.append(el)
      const label = document.createElementNS(SVG, 'text')
      label.setAttribute('x', x + 4)
      label.setAttribute('y', y + 14)
      label.textContent = type === 'ellipse' ? 'circle' : 'box'
      svg.append(label)
    }
    if (selected && !shapes.has(selected)) selected = null
    delButton.disabled = !selected
    count.textContent = `${list.length} shape${list.length === 1 ? '' : 's'}`
    svg.dataset.count = String(list.length)
  }

  const add = (type) => {
    const n = shapes.size
    const id = shapeId()
    const m = new Y.Map()
    ydoc.transact(() => {
      m.set('type', type)
      m.set('x', 20 + ((n * 47) % (W - 120)))
      m.set('y', 20 + ((n * 61) % (H - 100)))
      m.set('w', type === 'ellipse' ? 70 : 90)
      m.set('h', type === 'ellipse' ? 70 : 56)
      m.set('fill', FILLS[n % FILLS.length])
      m.set('z', Date.now())
      shapes.set(id, m)
    })
    selected = id
    render()
  }

  const remove = () => {
    if (!selected) return
    shapes.delete(selected)
    selected = null
    render()
  }

  function startDrag (evt, id) {
    evt.preventDefault()
    svg.focus()
    selected = id
    const m = shapes.get(id)
    const p = toSvg(evt)
    drag = { id, m, dx: p.x - m.get('x'), dy: p.y - m.get('y'), pointer: evt.pointerId }
    svg.setPointerCapture(evt.pointerId)
    render()
  }

  svg.addEventListener('pointermove', (evt) => {
    if (!drag || evt.pointerId !== drag.pointer) return
    const p = toSvg(evt)
    const w = drag.m.get('w'); const h = drag.m.get('h')
    const x = Math.max(0, Math.min(W - w, p.x - drag.dx))
    const y = Math.max(0, Math.min(H - h, p.y - drag.dy))
    ydoc.transact(() => { drag.m.set('x', x); drag.m.set('y', y) })
  })
  const endDrag = (evt) => {
    if (!drag || evt.pointerId !== drag.pointer) return
    if (svg.hasPointerCapture(evt.pointerId)) svg.releasePointerCapture(evt.pointerId)
    drag = null
  }
  svg.addEventListener('pointerup', endDrag)
  svg.addEventListener('pointercancel', endDrag)
  svg.addEventListener('pointerdown', (evt) => {
    if (evt.target === svg) { selected = null; render() }
  })
  svg.addEventListener('keydown', (evt) => {
    if (evt.key === 'Delete' || evt.key === 'Backspace') { evt.preventDefault(); remove() }
  })
  pane.querySelector('[data-action=add-rect]').addEventListener('click', () => add('rect'))
  pane.querySelector('[data-action=add-ellipse]').addEventListener('click', () => add('ellipse'))
  delButton.addEventListener('click', remove)

  shapes.observeDeep(render)
  render()
}
