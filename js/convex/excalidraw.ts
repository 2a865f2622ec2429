// Excalidraw scenes (legacy JSON) to the Yjs layout of y-excalidraw, the Excalidraw–Yjs binding
// published on npm as `y-excalidraw` (github.com/RahulBadenkal/y-excalidraw, version 2.0.12,
// commit bfd944782f67eb19b7f20d9ca80b75ec6c8e168c). The layout is reproduced from its sources
// src/diff.ts (`applyElementOperations`, `applyAssetOperations`, `getDeltaOperationsForElements`),
// src/helpers.ts (`yjsToExcalidraw`) and README.md (the root names); no code is taken from it.
//
// The layout:
//   doc.getArray("elements"): one Y.Map per element, { pos: <fractional index>, el: <the element
//     as one JSON value> }; the scene order is the order of `pos` (plain string comparison), not
//     the array order. A new scene's keys are fractional-indexing's keys after null: "a0".."az",
//     "b00".."bzz", "c000", …  Deleted elements are not stored (the binding syncs only
//     `getSceneElements()`, which leaves them out).
//   doc.getMap("assets"): file id → Excalidraw's BinaryFileData ({ id, mimeType, dataURL, … }).
import * as Y from "yjs";
import { ConversionError, isRecord, kindOf, parseLegacyJSON } from "./convert.js";
import type { Converter } from "./convert.js";

/** The root names y-excalidraw's README and demo bind. */
export const DEFAULT_EXCALIDRAW_ROOT = "elements";
export const DEFAULT_EXCALIDRAW_ASSETS = "assets";

export interface ExcalidrawConverterOptions {
  /** The root Y.Array of elements (the binding's `yElements`). */
  root?: string;
  /** The root Y.Map of files (the binding's `yAssets`), written when the scene has `files`. */
  assets?: string;
}

/** An Excalidraw element as the converter requires it: an object with a string `id` and `type`. */
export type ExcalidrawElementJSON = Record<string, unknown> & { id: string; type: string };

/**
 * A converter from Excalidraw content to y-excalidraw's layout. Accepts an array of elements, a
 * scene object (`{ type: "excalidraw", elements, appState, files }`; also Excalidraw's clipboard
 * `type: "excalidraw/clipboard"`, or no `type`), or the JSON text of either. Elements with
 * `isDeleted: true` are left out, as the binding leaves them out; `appState` is not part of the
 * binding's document and is dropped; `files` go to the assets map. Refuses (ConversionError)
 * anything else: no `elements` array, an element that is not an object with a non-empty string
 * `id` and a string `type`, two elements with the same id, `files` that is not an object of objects.
 */
export function excalidrawConverter({ root = DEFAULT_EXCALIDRAW_ROOT, assets = DEFAULT_EXCALIDRAW_ASSETS }: ExcalidrawConverterOptions = {}): Converter {
  if (root === assets) throw new Error(`excalidrawConverter: root and assets are the same root type "${root}"`);
  return {
    name: "excalidraw",
    toUpdate(content: unknown): Uint8Array {
      const { elements, files } = sceneOf(content);
      const doc = new Y.Doc();
      try {
        doc.transact(() => {
          const live = elements.filter((el) => el.isDeleted !== true);
          if (live.length > 0) {
            doc.getArray<Y.Map<unknown>>(root).push(
              live.map((el, i) => {
                const entry = new Y.Map<unknown>();
                entry.set("pos", fractionalKey(i));
                entry.set("el", el);
                return entry;
              }),
            );
          }
          const fileIds = Object.keys(files);
          if (fileIds.length > 0) {
            const yAssets = doc.getMap<unknown>(assets);
            for (const id of fileIds) yAssets.set(id, files[id]);
          }
        });
        return Y.encodeStateAsUpdate(doc);
      } finally {
        doc.destroy();
      }
    },
  };
}

/** The elements and files of a legacy value; throws ConversionError for anything else. */
function sceneOf(content: unknown): { elements: ExcalidrawElementJSON[]; files: Record<string, Record<string, unknown>> } {
  const json = parseLegacyJSON(content, "Excalidraw elements or scene JSON");
  let elements: unknown;
  let files: unknown;
  if (Array.isArray(json)) {
    elements = json;
  } else if (isRecord(json)) {
    if (json.type !== undefined && json.type !== "excalidraw" && json.type !== "excalidraw/clipboard") {
      throw new ConversionError(`not an Excalidraw scene: type ${JSON.stringify(json.type)}`);
    }
    if (!Array.isArray(json.elements)) {
      throw new ConversionError(`not an Excalidraw scene: \`elements\` is ${json.elements === undefined ? "missing" : kindOf(json.elements)}, not an array`);
    }
    elements = json.elements;
    files = json.files;
  } else {
    throw new ConversionError(`expected Excalidraw elements or a scene, got ${kindOf(json)}`);
  }
  const checked = (elements as unknown[]).map((el, i) => checkElement(el, i));
  const ids = new Set<string>();
  for (const el of checked) {
    if (el.isDeleted === true) continue;
    if (ids.has(el.id)) throw new ConversionError(`two elements have the id ${JSON.stringify(el.id)}`);
    ids.add(el.id);
  }
  return { elements: checked, files: checkFiles(files) };
}

function checkElement(el: unknown, i: number): ExcalidrawElementJSON {
  if (!isRecord(el)) throw new ConversionError(`element ${i} is ${kindOf(el)}, not an Excalidraw element`);
  if (typeof el.id !== "string" || el.id === "") throw new ConversionError(`element ${i} has no string \`id\``);
  if (typeof el.type !== "string" || el.type === "") throw new ConversionError(`element ${i} (${JSON.stringify(el.id)}) has no string \`type\``);
  return el as ExcalidrawElementJSON;
}

function checkFiles(files: unknown): Record<string, Record<string, unknown>> {
  if (files === undefined || files === null) return {};
  if (!isRecord(files)) throw new ConversionError(`\`files\` is ${kindOf(files)}, not an object of files`);
  for (const [id, file] of Object.entries(files)) {
    if (!isRecord(file)) throw new ConversionError(`file ${JSON.stringify(id)} is ${kindOf(file)}, not an object`);
  }
  return files as Record<string, Record<string, unknown>>;
}

const DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/**
 * The i-th key of a fresh list in fractional-indexing's base-62 scheme (the keys y-excalidraw
 * gives the elements of a scene it syncs first): an integer part whose head letter "a".."z"
 * says it has 1..26 digits, so "a0".."az" (62 keys), then "b00".."bzz" (62²), "c000", …
 */
export function fractionalKey(i: number): string {
  if (!Number.isSafeInteger(i) || i < 0) throw new RangeError(`fractionalKey: ${i} is not an index`);
  let rest = i;
  let width = 1;
  let size = DIGITS.length;
  while (rest >= size) {
    rest -= size;
    width += 1;
    size *= DIGITS.length;
    if (width > 26) throw new RangeError(`fractionalKey: ${i} is past the last key`);
  }
  let digits = "";
  for (let d = 0; d < width; d++) {
    digits = DIGITS[rest % DIGITS.length] + digits;
    rest = Math.floor(rest / DIGITS.length);
  }
  return String.fromCharCode("a".charCodeAt(0) + width - 1) + digits;
}

/**
 * The elements of an update in the order y-excalidraw gives them to Excalidraw
 * (`yjsToExcalidraw`): the root array's entries sorted by `pos`, each entry's `el`.
 * Throws when an entry is not a Y.Map (not the binding's layout).
 */
export function excalidrawElementsOf(update: Uint8Array, root: string = DEFAULT_EXCALIDRAW_ROOT): ExcalidrawElementJSON[] {
  const doc = new Y.Doc();
  try {
    Y.applyUpdate(doc, update);
    const entries = doc.getArray<unknown>(root).toArray().map((entry, i) => {
      if (!(entry instanceof Y.Map)) throw new Error(`excalidrawElementsOf: entry ${i} of "${root}" is not a Y.Map`);
      return entry as Y.Map<unknown>;
    });
    // Array.prototype.sort is stable: entries with equal keys keep their array order, as in the binding.
    return entries
      .map((entry) => ({ pos: entry.get("pos") as string, el: entry.get("el") as ExcalidrawElementJSON }))
      .sort((a, b) => (a.pos > b.pos ? 1 : a.pos < b.pos ? -1 : 0))
      .map((e) => e.el);
  } finally {
    doc.destroy();
  }
}

/** The files of an update as the binding hands them to Excalidraw (`addFiles`): file id → BinaryFileData. */
export function excalidrawFilesOf(update: Uint8Array, assets: string = DEFAULT_EXCALIDRAW_ASSETS): Record<string, unknown> {
  const doc = new Y.Doc();
  try {
    Y.applyUpdate(doc, update);
    return doc.getMap<unknown>(assets).toJSON();
  } finally {
    doc.destroy();
  }
}
