// ProseMirror documents (legacy JSON) to the Y.XmlFragment that y-prosemirror's `ySyncPlugin`
// binds, written and read with y-prosemirror's own functions (y-prosemirror 1.3.x,
// src/lib.js: `prosemirrorToYXmlFragment`, `yXmlFragmentToProseMirrorRootNode`).
//
// Runs without a DOM (inside a Convex action): y-prosemirror's package entry (the only one its
// `exports` map allows) loads its cursor and sync plugins and prosemirror-view, but none of them
// touches `document` or `window` at import time (prosemirror-view guards `typeof document`, lib0
// guards its environment probes); the DOM is used only inside plugin views and the cursor
// builder, which a conversion never calls.
import { Node } from "prosemirror-model";
import type { Schema } from "prosemirror-model";
import { prosemirrorToYXmlFragment, yXmlFragmentToProseMirrorRootNode } from "y-prosemirror";
import * as Y from "yjs";
import { ConversionError, isRecord, kindOf, parseLegacyJSON } from "./convert.js";
import type { Converter } from "./convert.js";

/** The fragment name y-prosemirror uses when none is given (`prosemirrorJSONToYDoc`, `yDocToProsemirrorJSON`). */
export const DEFAULT_PROSEMIRROR_FRAGMENT = "prosemirror";

export interface ProsemirrorConverterOptions {
  /** The editor's schema; content is validated against it. */
  schema: Schema;
  /** The name of the root Y.XmlFragment the editor binds with `ySyncPlugin(doc.getXmlFragment(name))`. */
  fragment?: string;
}

/**
 * A converter from ProseMirror document JSON (`EditorState.doc.toJSON()`), as an object or as
 * its JSON text, to a Yjs update whose `fragment` holds that document as y-prosemirror lays it
 * out. Also accepts `EditorState.toJSON()` (`{ doc, selection }`; the selection is dropped).
 * Refuses (ConversionError) anything that is not a document of `schema`: unknown node or mark
 * types, invalid attributes, content the schema does not allow, a root that is not the schema's
 * top node type. A document with no content converts to an empty update.
 */
export function prosemirrorConverter({ schema, fragment = DEFAULT_PROSEMIRROR_FRAGMENT }: ProsemirrorConverterOptions): Converter {
  return {
    name: "prosemirror",
    toUpdate(content: unknown): Uint8Array {
      const node = prosemirrorNodeOf(content, schema);
      const doc = new Y.Doc();
      try {
        if (node.childCount > 0) prosemirrorToYXmlFragment(node, doc.getXmlFragment(fragment));
        return Y.encodeStateAsUpdate(doc);
      } finally {
        doc.destroy();
      }
    },
  };
}

/** The legacy value as a checked document node of `schema`; throws ConversionError otherwise. */
function prosemirrorNodeOf(content: unknown, schema: Schema): Node {
  let json = parseLegacyJSON(content, "ProseMirror document JSON");
  // EditorState.toJSON(): { doc, selection, ...plugin fields }
  if (isRecord(json) && !("type" in json) && isRecord(json.doc)) json = json.doc;
  if (!isRecord(json)) throw new ConversionError(`expected ProseMirror document JSON, got ${kindOf(json)}`);
  if (typeof json.type !== "string") throw new ConversionError("not ProseMirror document JSON: no node `type`");
  const top = schema.topNodeType.name;
  if (json.type !== top) throw new ConversionError(`the root node is "${json.type}", not the schema's top node "${top}"`);
  let node: Node;
  try {
    node = Node.fromJSON(schema, json);
  } catch (e) {
    throw new ConversionError(`not a document of the schema: ${messageOf(e)}`, { cause: e });
  }
  if (node.childCount === 0) return node; // nothing to convert; an empty fragment
  try {
    node.check();
  } catch (e) {
    throw new ConversionError(`the document does not fit the schema: ${messageOf(e)}`, { cause: e });
  }
  return node;
}

/**
 * The ProseMirror document JSON an editor bound to `fragment` of this update shows: the update
 * is applied to a fresh Y.Doc and the fragment read with y-prosemirror's
 * `yXmlFragmentToProseMirrorRootNode` (the function its sync plugin builds the editor's document
 * with), then `toJSON()`. Comparable with `Node.fromJSON(schema, json).toJSON()`.
 */
export function prosemirrorJSONOf(update: Uint8Array, schema: Schema, fragment: string = DEFAULT_PROSEMIRROR_FRAGMENT): Record<string, unknown> {
  const doc = new Y.Doc();
  try {
    Y.applyUpdate(doc, update);
    return yXmlFragmentToProseMirrorRootNode(doc.getXmlFragment(fragment), schema).toJSON() as Record<string, unknown>;
  } finally {
    doc.destroy();
  }
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
