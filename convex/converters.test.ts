// The legacy-content converters (js/convex/prosemirror.ts, js/convex/excalidraw.ts) and
// isEmptyDocument (js/convex/convert.ts). Each converted update is read back through the real
// binding's code: y-prosemirror's functions for ProseMirror, y-excalidraw's ExcalidrawBinding
// (driven with a stand-in for Excalidraw's API) for Excalidraw. Runs in edge-runtime: no DOM.
import { describe, expect, test } from "vitest";
import * as Y from "yjs";
import { Awareness } from "y-protocols/awareness";
import { Node, Schema } from "prosemirror-model";
import { EditorState } from "prosemirror-state";
import { marks, nodes } from "prosemirror-schema-basic";
import { initProseMirrorDoc, prosemirrorJSONToYDoc, yXmlFragmentToProsemirrorJSON } from "y-prosemirror";
import { ExcalidrawBinding, yjsToExcalidraw } from "y-excalidraw";
import { ConversionError, isEmptyDocument } from "../js/convex/convert";
import { prosemirrorConverter, prosemirrorJSONOf } from "../js/convex/prosemirror";
import { excalidrawConverter, excalidrawElementsOf, excalidrawFilesOf, fractionalKey } from "../js/convex/excalidraw";

const docOf = (update: Uint8Array): Y.Doc => {
  const doc = new Y.Doc();
  Y.applyUpdate(doc, update);
  return doc;
};

test("no DOM here: the converters load and run without a document", () => {
  // (edge-runtime defines `window` as the global object, as workers have `self`; there is no DOM.)
  expect(typeof (globalThis as { document?: unknown }).document).toBe("undefined");
  expect(typeof (globalThis as { HTMLElement?: unknown }).HTMLElement).toBe("undefined");
});

// ─── ProseMirror ────────────────────────────────────────────────────────────────────────────

const schema = new Schema({
  nodes: {
    ...nodes,
    bullet_list: { content: "list_item+", group: "block", toDOM: () => ["ul", 0] },
    ordered_list: { content: "list_item+", group: "block", attrs: { order: { default: 1 } }, toDOM: (n) => ["ol", { start: n.attrs.order }, 0] },
    list_item: { content: "paragraph block*", defining: true, toDOM: () => ["li", 0] },
  },
  marks,
});

const t = (text: string, ...markTypes: (string | { type: string; attrs: Record<string, unknown> })[]) =>
  markTypes.length === 0 ? { type: "text", text } : { type: "text", text, marks: markTypes.map((m) => (typeof m === "string" ? { type: m } : m)) };
const p = (...content: unknown[]) => (content.length === 0 ? { type: "paragraph" } : { type: "paragraph", content });
const li = (...content: unknown[]) => ({ type: "list_item", content });

const richDoc = {
  type: "doc",
  content: [
    { type: "heading", attrs: { level: 1 }, content: [t("Quarterly plan 📈")] },
    { type: "heading", attrs: { level: 3 }, content: [t("目標 and "), t("scope", "em")] },
    p(
      t("Ship the "),
      t("migration", "strong"),
      t(" with "),
      t("bold italic", "em", "strong"),
      t(", a "),
      t("link", { type: "link", attrs: { href: "https://example.com/a?b=c", title: "Example" } }),
      t(" and "),
      t("inline code", "code"),
      t(" — without losing 文書, 한국어 or 🎉👩‍👩‍👧."),
    ),
    p(t("line one"), { type: "hard_break" }, t("line two")),
    p(),
    {
      type: "bullet_list",
      content: [
        li(p(t("archive first"))),
        li(
          p(t("then "), t("clear", "strong")),
          { type: "ordered_list", attrs: { order: 3 }, content: [li(p(t("nested three"))), li(p(t("nested four")), { type: "bullet_list", content: [li(p(t("deepest 🌱")))] })] },
        ),
      ],
    },
    { type: "blockquote", content: [p(t("A quote, ")), p(t("two paragraphs", "em"))] },
    { type: "code_block", content: [t("const x = 1;\n\tconsole.log(x < 2 && \"ok\");")] },
    { type: "horizontal_rule" },
    p(t("An image: "), { type: "image", attrs: { src: "https://example.com/i.png", alt: "a chart", title: null } }, t(" after.")),
  ],
};

const smallDoc = { type: "doc", content: [p(t("Hello, "), t("world", "strong"), t(" 🌍"))] };

describe("prosemirror", () => {
  const converter = prosemirrorConverter({ schema });

  test("is named for migration reports", () => {
    expect(converter.name).toBe("prosemirror");
  });

  test.each([
    ["a rich document", richDoc],
    ["a small document", smallDoc],
  ])("%s: the update read back by y-prosemirror is the document", (_, json) => {
    const update = converter.toUpdate(json);
    const expected = Node.fromJSON(schema, json);
    expect(prosemirrorJSONOf(update, schema)).toEqual(expected.toJSON());
    // The sync plugin's own initialisation builds the same document from the fragment.
    const doc = docOf(update);
    const { doc: shown } = initProseMirrorDoc(doc.getXmlFragment("prosemirror"), schema);
    expect(shown.eq(expected)).toBe(true);
    expect(shown.textContent).toBe(expected.textContent);
    // y-prosemirror's JSON reader agrees once the JSON is normalised by the schema.
    expect(Node.fromJSON(schema, yXmlFragmentToProsemirrorJSON(doc.getXmlFragment("prosemirror"))).toJSON()).toEqual(expected.toJSON());
  });

  test("the text survives: emoji, CJK, Hangul, a ZWJ sequence, tabs and newlines", () => {
    const text = Node.fromJSON(schema, richDoc).textContent;
    expect(text).toContain("🎉👩‍👩‍👧");
    expect(text).toContain("文書, 한국어");
    const shown = Node.fromJSON(schema, prosemirrorJSONOf(converter.toUpdate(richDoc), schema));
    expect(shown.textContent).toBe(text);
  });

  test("the layout is y-prosemirror's: elements named by node type, attributes, formatted text", () => {
    const fragment = docOf(converter.toUpdate(richDoc)).getXmlFragment("prosemirror");
    expect(fragment.length).toBe(richDoc.content.length);
    const heading = fragment.get(0) as Y.XmlElement;
    expect(heading).toBeInstanceOf(Y.XmlElement);
    expect(heading.nodeName).toBe("heading");
    expect(heading.getAttribute("level")).toBe(1);
    expect((heading.get(0) as Y.XmlText).toString()).toBe("Quarterly plan 📈");
    const list = fragment.get(5) as Y.XmlElement;
    expect(list.nodeName).toBe("bullet_list");
    expect((list.get(1) as Y.XmlElement).nodeName).toBe("list_item");
    expect(((list.get(1) as Y.XmlElement).get(1) as Y.XmlElement).getAttribute("order")).toBe(3);
    // Same layout as y-prosemirror's own JSON-to-Y.Doc utility writes.
    const theirs = prosemirrorJSONToYDoc(schema, richDoc).getXmlFragment("prosemirror");
    expect(fragment.toJSON()).toBe(theirs.toJSON());
  });

  test("a JSON string, an object and EditorState JSON convert to the same document", () => {
    const fromObject = prosemirrorJSONOf(converter.toUpdate(richDoc), schema);
    const fromString = prosemirrorJSONOf(converter.toUpdate(JSON.stringify(richDoc)), schema);
    const state = EditorState.create({ doc: Node.fromJSON(schema, richDoc) }).toJSON();
    expect(state).toHaveProperty("selection");
    const fromState = prosemirrorJSONOf(converter.toUpdate(state), schema);
    expect(fromString).toEqual(fromObject);
    expect(fromState).toEqual(fromObject);
    expect(prosemirrorJSONOf(converter.toUpdate(JSON.stringify(state)), schema)).toEqual(fromObject);
  });

  test("a custom fragment name: the content is there and only there", () => {
    const update = prosemirrorConverter({ schema, fragment: "default" }).toUpdate(smallDoc);
    const doc = docOf(update);
    expect(doc.getXmlFragment("default").length).toBe(1);
    expect(doc.getXmlFragment("prosemirror").length).toBe(0);
    expect(prosemirrorJSONOf(update, schema, "default")).toEqual(Node.fromJSON(schema, smallDoc).toJSON());
    expect(prosemirrorJSONOf(update, schema)).toEqual({ type: "doc" });
  });

  test("a document with no content converts to an empty update", () => {
    for (const empty of [{ type: "doc" }, { type: "doc", content: [] }, '{"type":"doc"}']) {
      const update = converter.toUpdate(empty);
      expect(isEmptyDocument(update)).toBe(true);
      expect(docOf(update).getXmlFragment("prosemirror").length).toBe(0);
    }
  });

  test.each([
    ["an unknown node type", { type: "doc", content: [{ type: "video", attrs: { src: "x" } }] }, /video/],
    ["an unknown mark type", { type: "doc", content: [p({ type: "text", text: "x", marks: [{ type: "underline" }] })] }, /underline/],
    ["content the schema does not allow", { type: "doc", content: [li(p(t("x")))] }, /fit the schema/],
    ["a block inside a paragraph", { type: "doc", content: [{ type: "paragraph", content: [p(t("x"))] }] }, /fit the schema/],
    ["an empty text node", { type: "doc", content: [p({ type: "text", text: "" })] }, /schema/],
    ["a root that is not the top node", p(t("x")), /root node is "paragraph"/],
    ["an object with no type", { content: [] }, /no node `type`/],
    ["a string that is not JSON", "Hello, world", /not JSON/],
    ["a JSON number", "42", /got a number/],
    ["a number", 42, /got a number/],
    ["null", null, /got null/],
    ["an array", [richDoc], /got an array/],
    ["undefined", undefined, /got a undefined/],
  ])("refuses %s with a ConversionError", (_, content, message) => {
    let thrown: unknown;
    try {
      converter.toUpdate(content);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(ConversionError);
    expect((thrown as Error).message).toMatch(message);
  });
});

// ─── Excalidraw ─────────────────────────────────────────────────────────────────────────────

const base = {
  angle: 0,
  strokeColor: "#1e1e1e",
  backgroundColor: "transparent",
  fillStyle: "solid",
  strokeWidth: 2,
  strokeStyle: "solid",
  roughness: 1,
  opacity: 100,
  groupIds: [] as string[],
  frameId: null,
  roundness: null,
  seed: 1,
  updated: 1717000000000,
  link: null,
  locked: false,
  isDeleted: false,
};

const elements = [
  {
    ...base,
    id: "rect-1",
    type: "rectangle",
    x: 100,
    y: 120,
    width: 240,
    height: 120,
    backgroundColor: "#a5d8ff",
    roundness: { type: 3 },
    version: 12,
    versionNonce: 1840273641,
    boundElements: [
      { id: "arrow-1", type: "arrow" },
      { id: "text-1", type: "text" },
    ],
  },
  {
    ...base,
    id: "text-1",
    type: "text",
    x: 130,
    y: 165,
    width: 180,
    height: 25,
    version: 4,
    versionNonce: 99,
    boundElements: null,
    text: "Services 服务 🚀",
    originalText: "Services 服务 🚀",
    fontSize: 20,
    fontFamily: 1,
    textAlign: "center",
    verticalAlign: "middle",
    containerId: "rect-1",
    lineHeight: 1.25,
    baseline: 18,
  },
  {
    ...base,
    id: "ellipse-1",
    type: "ellipse",
    x: 520,
    y: 110,
    width: 140,
    height: 140,
    version: 3,
    versionNonce: 7,
    boundElements: [{ id: "arrow-1", type: "arrow" }],
    groupIds: ["g1"],
  },
  {
    ...base,
    id: "arrow-1",
    type: "arrow",
    x: 341,
    y: 180,
    width: 178,
    height: 0.5,
    version: 30,
    versionNonce: 555,
    boundElements: null,
    points: [
      [0, 0],
      [90, -20.25],
      [178, 0.5],
    ],
    lastCommittedPoint: null,
    startBinding: { elementId: "rect-1", focus: 0.02, gap: 1 },
    endBinding: { elementId: "ellipse-1", focus: -0.1, gap: 4.5 },
    startArrowhead: null,
    endArrowhead: "arrow",
    elbowed: false,
  },
  {
    ...base,
    id: "free-1",
    type: "freedraw",
    x: 80,
    y: 320,
    width: 60.5,
    height: 22,
    version: 9,
    versionNonce: 31337,
    boundElements: null,
    points: [
      [0, 0],
      [10.5, 4],
      [25, 12.25],
      [60.5, 22],
    ],
    pressures: [0.5, 0.62, 0.7, 0.4],
    simulatePressure: false,
    lastCommittedPoint: [60.5, 22],
  },
  {
    ...base,
    id: "image-1",
    type: "image",
    x: 700,
    y: 300,
    width: 64,
    height: 64,
    version: 2,
    versionNonce: 8,
    boundElements: null,
    fileId: "file-abc",
    status: "saved",
    scale: [1, 1],
  },
];
const deletedElement = { ...base, id: "gone-1", type: "diamond", x: 0, y: 0, width: 10, height: 10, version: 5, versionNonce: 5, boundElements: null, isDeleted: true };
const files = {
  "file-abc": { id: "file-abc", mimeType: "image/png", dataURL: "data:image/png;base64,iVBORw0KGgo=", created: 1717000000000, lastRetrieved: 1717000000001 },
};
const scene = { type: "excalidraw", version: 2, source: "https://excalidraw.com", elements, appState: { viewBackgroundColor: "#ffffff", gridSize: null }, files };

type El = { id: string; version: number; isDeleted?: boolean };

/** A stand-in for Excalidraw's imperative API, enough for ExcalidrawBinding. */
function fakeExcalidraw() {
  let sceneElements: readonly El[] = [];
  const shownFiles: Record<string, unknown> = {};
  const listeners: ((elements: readonly El[], state: unknown, files: Record<string, unknown>) => void)[] = [];
  const api = {
    onChange(cb: (typeof listeners)[number]) {
      listeners.push(cb);
      return () => listeners.splice(listeners.indexOf(cb), 1);
    },
    getSceneElements: () => sceneElements.filter((el) => !el.isDeleted),
    updateScene(data: { elements?: readonly El[] }) {
      if (data.elements !== undefined) sceneElements = data.elements;
    },
    addFiles(added: { id: string }[]) {
      for (const f of added) shownFiles[f.id] = f;
    },
  };
  return {
    api,
    /** What the user did on the canvas: the scene and files Excalidraw reports in onChange. */
    draw(elements: readonly El[], files: Record<string, unknown> = {}) {
      sceneElements = elements;
      for (const cb of listeners) cb(elements, { selectedElementIds: {} }, files);
    },
    shown: () => sceneElements,
    shownFiles,
  };
}

/** Opens `doc` with the real binding, as a client would, and returns what Excalidraw is shown. */
function openWithBinding(doc: Y.Doc, root = "elements", assets = "assets") {
  const fake = fakeExcalidraw();
  const awareness = new Awareness(doc);
  const binding = new ExcalidrawBinding(doc.getArray<Y.Map<unknown>>(root), doc.getMap(assets), fake.api as never, awareness);
  const shown = { elements: fake.shown(), files: { ...fake.shownFiles } };
  binding.destroy();
  awareness.destroy();
  return shown;
}

/** The Y layout of a doc's elements array, entry by entry, in array order. */
const layoutOf = (doc: Y.Doc, root = "elements") =>
  doc.getArray<Y.Map<unknown>>(root).toArray().map((m) => ({ keys: [...m.keys()].sort(), pos: m.get("pos"), el: m.get("el") }));

describe("excalidraw", () => {
  const converter = excalidrawConverter();

  test("is named for migration reports", () => {
    expect(converter.name).toBe("excalidraw");
  });

  test("elements read back equal the input, in order, and the files are there", () => {
    const update = converter.toUpdate(scene);
    expect(excalidrawElementsOf(update)).toEqual(elements);
    expect(excalidrawElementsOf(update).map((e) => e.id)).toEqual(["rect-1", "text-1", "ellipse-1", "arrow-1", "free-1", "image-1"]);
    expect(excalidrawFilesOf(update)).toEqual(files);
  });

  test("the real binding opening the converted doc shows the elements and files", () => {
    const shown = openWithBinding(docOf(converter.toUpdate(scene)));
    expect(shown.elements).toEqual(elements);
    expect(shown.files).toEqual(files);
    expect(yjsToExcalidraw(docOf(converter.toUpdate(scene)).getArray("elements"))).toEqual(elements);
  });

  test("the layout is the one the real binding writes when the same scene is drawn", () => {
    const drawn = new Y.Doc();
    const fake = fakeExcalidraw();
    const awareness = new Awareness(drawn);
    const binding = new ExcalidrawBinding(drawn.getArray<Y.Map<unknown>>("elements"), drawn.getMap("assets"), fake.api as never, awareness);
    fake.draw([...elements, deletedElement], files);
    binding.destroy();
    awareness.destroy();
    const converted = docOf(converter.toUpdate({ ...scene, elements: [...elements, deletedElement] }));
    expect(layoutOf(converted)).toEqual(layoutOf(drawn));
    expect(layoutOf(converted).map((e) => e.keys)).toEqual(elements.map(() => ["el", "pos"]));
    expect(layoutOf(converted).map((e) => e.pos)).toEqual(["a0", "a1", "a2", "a3", "a4", "a5"]);
    expect(converted.getMap("assets").toJSON()).toEqual(drawn.getMap("assets").toJSON());
    expect([...converted.share.keys()].sort()).toEqual(["assets", "elements"]);
  });

  test("the ordering keys match the binding's past the one- and two-digit keys (4000 elements)", () => {
    const many = Array.from({ length: 4000 }, (_, i) => ({ id: `e${i}`, type: "rectangle", version: 1, x: i, y: 0 }));
    const drawn = new Y.Doc();
    const fake = fakeExcalidraw();
    const awareness = new Awareness(drawn);
    const binding = new ExcalidrawBinding(drawn.getArray<Y.Map<unknown>>("elements"), drawn.getMap("assets"), fake.api as never, awareness);
    fake.draw(many);
    binding.destroy();
    awareness.destroy();
    const theirs = layoutOf(drawn).map((e) => e.pos);
    expect(theirs[61]).toBe("az");
    expect(theirs[62]).toBe("b00");
    expect(theirs[3906]).toBe("c000");
    expect(many.map((_, i) => fractionalKey(i))).toEqual(theirs);
    const update = converter.toUpdate(many);
    expect(layoutOf(docOf(update)).map((e) => e.pos)).toEqual(theirs);
    expect(excalidrawElementsOf(update)).toEqual(many);
  });

  test("the order is the order of the keys, not of the array, as in the binding", () => {
    const doc = new Y.Doc();
    const entry = (pos: string, el: El) => new Y.Map<unknown>([["pos", pos], ["el", el]]);
    const a = { id: "a", type: "rectangle", version: 1 };
    const b = { id: "b", type: "rectangle", version: 1 };
    const c = { id: "c", type: "rectangle", version: 1 };
    doc.getArray("elements").push([entry("a1", b), entry("a0V", c), entry("a0", a)]);
    const update = Y.encodeStateAsUpdate(doc);
    expect(excalidrawElementsOf(update).map((e) => e.id)).toEqual(["a", "c", "b"]);
    expect(openWithBinding(docOf(update)).elements.map((e) => e.id)).toEqual(["a", "c", "b"]);
  });

  test("deleted elements are left out, as the binding leaves them out", () => {
    const update = converter.toUpdate([elements[0], deletedElement, elements[1]]);
    expect(excalidrawElementsOf(update)).toEqual([elements[0], elements[1]]);
    expect(docOf(update).getArray("elements").length).toBe(2);
    // A deleted element may share its id with a live one (Excalidraw keeps tombstones).
    expect(excalidrawElementsOf(converter.toUpdate([{ ...elements[0], isDeleted: true }, elements[0]]))).toEqual([elements[0]]);
  });

  test("a scene, an array and the JSON text of either give the same elements", () => {
    const expected = excalidrawElementsOf(converter.toUpdate(scene));
    for (const content of [elements, JSON.stringify(elements), JSON.stringify(scene), { elements }, { type: "excalidraw/clipboard", elements, files }]) {
      expect(excalidrawElementsOf(converter.toUpdate(content))).toEqual(expected);
    }
    expect(excalidrawFilesOf(converter.toUpdate(JSON.stringify(scene)))).toEqual(files);
    expect(excalidrawFilesOf(converter.toUpdate(elements))).toEqual({});
  });

  test("custom root names", () => {
    const update = excalidrawConverter({ root: "drawing", assets: "drawingFiles" }).toUpdate(scene);
    const doc = docOf(update);
    expect(doc.getArray("elements").length).toBe(0);
    expect(excalidrawElementsOf(update, "drawing")).toEqual(elements);
    expect(excalidrawFilesOf(update, "drawingFiles")).toEqual(files);
    expect(openWithBinding(doc, "drawing", "drawingFiles").elements).toEqual(elements);
    expect(() => excalidrawConverter({ root: "x", assets: "x" })).toThrow(/same root/);
  });

  test("an empty drawing converts to an empty update", () => {
    expect(isEmptyDocument(converter.toUpdate([]))).toBe(true);
    expect(isEmptyDocument(converter.toUpdate({ type: "excalidraw", elements: [deletedElement], appState: {}, files: {} }))).toBe(true);
  });

  test.each([
    ["`elements` that is not an array", { type: "excalidraw", elements: "nope" }, /`elements` is a string/],
    ["a scene without elements", { type: "excalidraw", appState: {} }, /`elements` is missing/],
    ["another app's scene", { type: "tldraw", elements: [] }, /type "tldraw"/],
    ["a single element, not a list", elements[0], /not an Excalidraw scene: type "rectangle"/],
    ["an element-like object without type", { id: "x", x: 0 }, /`elements` is missing/],
    ["an element without id", [{ type: "rectangle", x: 0 }], /element 0 has no string `id`/],
    ["an element without type", [{ id: "x" }], /no string `type`/],
    ["an element that is not an object", [elements[0], "rect"], /element 1 is a string/],
    ["null in the elements", [null], /element 0 is null/],
    ["nested arrays", [[elements[0]]], /element 0 is an array/],
    ["two live elements with one id", [elements[0], { ...elements[1], id: "rect-1" }], /two elements have the id "rect-1"/],
    ["files that are not an object", { elements, files: "x" }, /`files` is a string/],
    ["a file that is not an object", { elements, files: { f: 1 } }, /file "f" is a number/],
    ["a string that is not JSON", "<svg></svg>", /not JSON/],
    ["a number", 42, /got a number/],
    ["null", null, /got null/],
    ["undefined", undefined, /got a undefined/],
  ])("refuses %s with a ConversionError", (_, content, message) => {
    let thrown: unknown;
    try {
      converter.toUpdate(content);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(ConversionError);
    expect((thrown as Error).message).toMatch(message);
  });
});

// ─── isEmptyDocument ────────────────────────────────────────────────────────────────────────

describe("isEmptyDocument", () => {
  const stateOf = (fill: (doc: Y.Doc) => void): Uint8Array => {
    const doc = new Y.Doc();
    fill(doc);
    return Y.encodeStateAsUpdate(doc);
  };

  test("an update with nothing is empty", () => {
    expect(isEmptyDocument(new Uint8Array([0, 0]))).toBe(true);
    expect(isEmptyDocument(Y.encodeStateAsUpdate(new Y.Doc()))).toBe(true);
    expect(isEmptyDocument(stateOf((d) => d.getText("t")))).toBe(true); // a root that was only named
  });

  const filled: [string, (doc: Y.Doc) => void][] = [
    ["Y.Text", (d) => d.getText("any-name").insert(0, "x")],
    ["Y.XmlFragment (text)", (d) => d.getXmlFragment("frag").insert(0, [new Y.XmlText("hi")])],
    ["Y.XmlFragment (an empty element)", (d) => d.getXmlFragment("frag").insert(0, [new Y.XmlElement("paragraph")])],
    ["Y.Array", (d) => d.getArray("list").push([0])],
    ["Y.Array of Y.Map", (d) => d.getArray("elements").push([new Y.Map()])],
    ["Y.Map", (d) => d.getMap("m").set("k", null)],
    ["Y.Map of Y.Text", (d) => d.getMap("m").set("k", new Y.Text())],
  ];
  test.each(filled)("a doc with content in a %s is not empty", (_, fill) => {
    expect(isEmptyDocument(stateOf(fill))).toBe(false);
  });

  test.each<[string, (doc: Y.Doc) => void]>([
    ["Y.Text", (d) => { d.getText("t").insert(0, "gone"); d.getText("t").delete(0, 4); }],
    ["Y.Text with formatting", (d) => { d.getText("t").insert(0, "bold", { bold: true }); d.getText("t").insert(4, " plain"); d.getText("t").delete(0, 10); }],
    ["Y.XmlFragment", (d) => { const f = d.getXmlFragment("prosemirror"); f.insert(0, [new Y.XmlElement("paragraph")]); f.delete(0, 1); }],
    ["Y.Array", (d) => { d.getArray("a").push([1, 2, 3]); d.getArray("a").delete(0, 3); }],
    ["Y.Map", (d) => { d.getMap("m").set("k", "v"); d.getMap("m").set("k", "w"); d.getMap("m").delete("k"); }],
    ["every root type at once", (d) => {
      d.getText("t").insert(0, "x"); d.getText("t").delete(0, 1);
      d.getArray("a").push([1]); d.getArray("a").delete(0, 1);
      d.getMap("m").set("k", 1); d.getMap("m").delete("k");
    }],
  ])("a doc whose %s content was all deleted is empty", (_, fill) => {
    const update = stateOf(fill);
    expect(update.length).toBeGreaterThan(2);
    expect(isEmptyDocument(update)).toBe(true);
  });

  test("formatting marks left without their text (concurrent format and delete, merged as a store merges) are empty", () => {
    const a = new Y.Doc();
    a.getText("t").insert(0, "abc");
    const b = new Y.Doc();
    Y.applyUpdate(b, Y.encodeStateAsUpdate(a));
    a.getText("t").format(0, 3, { bold: true });
    b.getText("t").delete(0, 3);
    const merged = Y.mergeUpdates([Y.encodeStateAsUpdate(a), Y.encodeStateAsUpdate(b)]);
    const doc = docOf(merged);
    expect(doc.getText("t").toDelta()).toEqual([]);
    let marks = 0;
    for (let item = doc.getText("t")._start; item !== null; item = item.right) if (!item.deleted) marks++;
    expect(marks).toBeGreaterThan(0); // the format items are there, not deleted, and show nothing
    expect(isEmptyDocument(merged)).toBe(true);
  });

  test("deleted content beside live content is not empty", () => {
    expect(isEmptyDocument(stateOf((d) => { d.getText("t").insert(0, "ab"); d.getText("t").delete(0, 1); }))).toBe(false);
    expect(isEmptyDocument(stateOf((d) => { d.getMap("m").set("a", 1); d.getMap("m").set("b", 2); d.getMap("m").delete("a"); }))).toBe(false);
    expect(isEmptyDocument(stateOf((d) => { d.getText("t").insert(0, "x"); d.getText("t").delete(0, 1); d.getArray("a").push([1]); }))).toBe(false);
  });

  test("an update merged from an emptied state and content is not empty", () => {
    const emptied = stateOf((d) => { d.getText("t").insert(0, "gone"); d.getText("t").delete(0, 4); });
    const converted = prosemirrorConverter({ schema }).toUpdate(smallDoc);
    expect(isEmptyDocument(Y.mergeUpdates([emptied, converted]))).toBe(false);
  });

  test("an update waiting for structs it lacks is not empty", () => {
    const doc = new Y.Doc();
    doc.getText("t").insert(0, "a");
    const before = Y.encodeStateVector(doc);
    doc.getText("t").insert(1, "b");
    expect(isEmptyDocument(Y.encodeStateAsUpdate(doc, before))).toBe(false);
  });

  test("converter outputs are not empty", () => {
    expect(isEmptyDocument(prosemirrorConverter({ schema }).toUpdate(richDoc))).toBe(false);
    expect(isEmptyDocument(prosemirrorConverter({ schema, fragment: "x" }).toUpdate(smallDoc))).toBe(false);
    expect(isEmptyDocument(excalidrawConverter().toUpdate(scene))).toBe(false);
    expect(isEmptyDocument(excalidrawConverter().toUpdate([elements[2]]))).toBe(false);
  });

  test("bytes that are not an update throw", () => {
    expect(() => isEmptyDocument(new Uint8Array([200, 1, 2, 3, 4]))).toThrow();
  });
});
