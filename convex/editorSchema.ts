// The example app's ProseMirror schema: what its editor wrote into `documents.content` before
// ykeep, and what the migration's converter validates that content against.
import { Schema } from "prosemirror-model";
import { marks, nodes } from "prosemirror-schema-basic";

export const editorSchema = new Schema({
  nodes: {
    ...nodes,
    bullet_list: { content: "list_item+", group: "block", toDOM: () => ["ul", 0] },
    ordered_list: {
      content: "list_item+",
      group: "block",
      attrs: { order: { default: 1 } },
      toDOM: (node) => ["ol", { start: node.attrs.order }, 0],
    },
    list_item: { content: "paragraph block*", defining: true, toDOM: () => ["li", 0] },
  },
  marks,
});
