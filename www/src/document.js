// The document pane: CodeMirror 6 bound to the room's Y.Text 'content' with y-codemirror.next
// (shared text, remote cursors, per-user undo).
import { EditorView, basicSetup } from 'codemirror'
import { EditorState } from '@codemirror/state'
import { yCollab } from 'y-codemirror.next'
import * as Y from 'yjs'

export function mountText (room, el, { field = 'content', placeholderLines = 12 } = {}) {
  const ytext = room.ydoc.getText(field)
  const undoManager = new Y.UndoManager(ytext)
  const view = new EditorView({
    parent: el,
    state: EditorState.create({
      doc: ytext.toString(),
      extensions: [
        basicSetup,
        EditorView.lineWrapping,
        EditorView.theme({ '.cm-content': { minHeight: `${placeholderLines * 1.4}em` } }),
        yCollab(ytext, room.provider.awareness, { undoManager })
      ]
    })
  })
  return view
}
