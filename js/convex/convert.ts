// Converters from legacy `content` values (what an app stored before ykeep) to Yjs updates, and
// the emptiness test the migration uses to decide whether converted content may be merged into
// an existing snapshot. The converters themselves are in ./prosemirror and ./excalidraw.
import * as Y from "yjs";

/** Turns one legacy `content` value into a Yjs v1 update (a full state). Throws on content it cannot convert. */
export interface Converter {
  /** Shown in migration reports, e.g. "prosemirror" or "excalidraw". */
  readonly name: string;
  toUpdate(content: unknown): Uint8Array;
}

/** Thrown for content a converter refuses; the message names why. */
export class ConversionError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ConversionError";
  }
}

/**
 * A legacy value as JSON: a string is parsed (legacy rows hold either the value or its JSON
 * text), anything else is returned as it is. `what` names the expected content in the error.
 */
export function parseLegacyJSON(content: unknown, what: string): unknown {
  if (typeof content !== "string") return content;
  try {
    return JSON.parse(content);
  } catch (e) {
    throw new ConversionError(`a string that is not JSON (expected ${what})`, { cause: e });
  }
}

/** True when `value` is a plain object (not null, not an array). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A short description of a value's kind for error messages. */
export function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

/**
 * True when the Yjs update holds no visible content in any root type (nothing, or only deleted
 * items). Generic over root types: the update is decoded into a fresh Y.Doc, whose roots are
 * untyped there, and each root's list items and map entries are searched for one that is not
 * deleted and counts as content (formatting marks alone do not). Root names are not consulted.
 * An update whose structs cannot all be integrated (missing dependencies) counts as not empty:
 * it holds content this test cannot see. Throws on bytes that are not a Yjs v1 update.
 */
export function isEmptyDocument(update: Uint8Array): boolean {
  const doc = new Y.Doc();
  try {
    Y.applyUpdate(doc, update);
    if (doc.store.pendingStructs !== null) return false;
    for (const root of doc.share.values()) {
      for (let item = root._start; item !== null; item = item.right) {
        if (!item.deleted && item.countable) return false;
      }
      for (const item of root._map.values()) {
        if (!item.deleted) return false;
      }
    }
    return true;
  } finally {
    doc.destroy();
  }
}
