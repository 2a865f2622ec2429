import { expect, test } from "vitest";
import * as Y from "yjs";
import { BadUpdate, base64url, checkUpdate, fromBase64url, snapshotContains } from "../js/convex/yupdate";

function docWith(text: string, client = 1): Y.Doc {
  const d = new Y.Doc();
  d.clientID = client;
  d.getText("t").insert(0, text);
  return d;
}

test("checkUpdate accepts full states, including the empty one", () => {
  expect(checkUpdate(Y.encodeStateAsUpdate(docWith("hello"))).stateVector).toEqual(
    Y.encodeStateVector(docWith("hello")),
  );
  expect(() => checkUpdate(Y.encodeStateAsUpdate(new Y.Doc()))).not.toThrow();
});

test("checkUpdate refuses garbage, trailing bytes and truncation", () => {
  const good = Y.encodeStateAsUpdate(docWith("hello"));
  const bad: Uint8Array[] = [
    new Uint8Array(0),
    new Uint8Array(1),
    new Uint8Array(16), // zeros: an empty update followed by garbage
    new TextEncoder().encode("this is not a yjs update at all"),
    good.subarray(0, good.length - 3),
    new Uint8Array([...good, 0]),
    Uint8Array.from({ length: 200 }, (_, i) => (i * 7919 + 13) % 256),
  ];
  for (const b of bad) expect(() => checkUpdate(b), `bytes ${b.subarray(0, 12)}`).toThrow(BadUpdate);
});

test("checkUpdate keeps content that waits for missing predecessors", () => {
  // A diff against another doc: " world" refers to "hello", which it does not carry.
  const a = docWith("hello");
  const sv = Y.encodeStateVector(a);
  a.getText("t").insert(5, " world");
  const diff = Y.encodeStateAsUpdate(a, sv);
  const r = checkUpdate(diff);
  // Only the applied part counts in the state vector: nothing is applied yet.
  expect(r.stateVector).toEqual(Y.encodeStateVector(new Y.Doc()));
  // And Yjs carries the pending part on: the full state later re-encoded still holds it.
  const d = new Y.Doc();
  Y.applyUpdate(d, diff);
  expect(d.store.pendingStructs).not.toBeNull();
  Y.applyUpdate(d, Y.encodeStateAsUpdate(docWith("hello")));
  expect(d.getText("t").toString()).toBe("hello world");
});

test("snapshotContains sees deletions that leave the state vector unchanged", () => {
  const a = docWith("hello");
  const before = checkUpdate(Y.encodeStateAsUpdate(a)).marker;
  a.getText("t").delete(0, 2);
  const after = checkUpdate(Y.encodeStateAsUpdate(a)).marker;
  expect(Y.encodeStateVector(a)).toEqual(checkUpdate(Y.encodeStateAsUpdate(docWith("hello"))).stateVector);
  expect(snapshotContains(after, before)).toBe(true);
  expect(snapshotContains(before, after)).toBe(false);
  expect(snapshotContains(after, after)).toBe(true);
  const other = checkUpdate(Y.encodeStateAsUpdate(docWith("x", 2))).marker;
  expect(snapshotContains(after, other)).toBe(false);
  expect(snapshotContains(other, after)).toBe(false);
  const empty = checkUpdate(Y.encodeStateAsUpdate(new Y.Doc())).marker;
  expect(snapshotContains(other, empty)).toBe(true);
  expect(snapshotContains(empty, other)).toBe(false);
});

test("snapshotContains with fragmented delete sets", () => {
  const a = docWith("abcdefghij");
  const full = Y.encodeStateAsUpdate(a);
  a.getText("t").delete(1, 1);
  a.getText("t").delete(3, 2);
  const partial = checkUpdate(Y.encodeStateAsUpdate(a)).marker;
  const b = new Y.Doc();
  Y.applyUpdate(b, full);
  b.getText("t").delete(0, 8); // covers the same range and more
  const more = checkUpdate(Y.encodeStateAsUpdate(b)).marker;
  expect(snapshotContains(more, partial)).toBe(true);
  expect(snapshotContains(partial, more)).toBe(false);
});

test("base64url round trip", () => {
  const bytes = Uint8Array.from({ length: 300 }, (_, i) => (i * 31) % 256);
  for (let n = 0; n < 8; n++) expect(fromBase64url(base64url(bytes.subarray(0, n)))).toEqual(bytes.subarray(0, n));
  expect(base64url(bytes)).not.toMatch(/[+/=]/);
  expect(fromBase64url("a+b")).toBeNull();
  expect(fromBase64url("abcde")).toBeNull();
});

test("fuzz: random and mutated bytes either pass as an update or are BadUpdate, never another error", () => {
  let seed = 0x9e3779b9;
  const rand = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 4294967296;
  };
  const base = new Y.Doc();
  base.clientID = 5;
  const t = base.getText("t");
  t.insert(0, "the quick brown fox");
  t.delete(4, 6);
  base.getMap("m").set("k", [1, "two", { three: 3 }]);
  const valid = Y.encodeStateAsUpdate(base);
  let accepted = 0;
  let refused = 0;
  for (let i = 0; i < 3000; i++) {
    let bytes: Uint8Array;
    if (i % 2 === 0) {
      bytes = Uint8Array.from({ length: 1 + Math.floor(rand() * 64) }, () => Math.floor(rand() * 256));
    } else {
      bytes = valid.slice();
      const flips = 1 + Math.floor(rand() * 3);
      for (let f = 0; f < flips; f++) bytes[Math.floor(rand() * bytes.length)] = Math.floor(rand() * 256);
    }
    try {
      const r = checkUpdate(bytes);
      accepted++;
      // What passed really applies: Yjs takes it and reaches the same state vector.
      const d = new Y.Doc();
      Y.applyUpdate(d, bytes);
      expect(Y.encodeStateVector(d)).toEqual(r.stateVector);
    } catch (e) {
      if (!(e instanceof BadUpdate)) throw e;
      refused++;
    }
  }
  expect(refused).toBeGreaterThan(1500);
  expect(accepted + refused).toBe(3000);
});
