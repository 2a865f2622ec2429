// The real relay binary against the Convex functions, end to end:
// a y-websocket client edits a room and leaves; the relay's debounced save lands in
// Convex file storage (through convex-test behind a real HTTP listener); a fresh relay
// with an empty data dir cold-starts the room from that snapshot.
//
// Needs the relay binary: $YKEEP_RELAY_BIN, default target/debug/ykeep-relay
// (cargo build -p ykeep-relay). It fails, never skips, when the binary is missing.
import { convexTest } from "convex-test";
import { afterAll, afterEach, beforeEach, expect, test, vi } from "vitest";
import * as Y from "yjs";
import { WebsocketProvider } from "y-websocket";
import WebSocket from "ws";
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import schema from "../../convex/schema";
import { modules } from "../../convex/test.setup";
import { internal } from "../../convex/_generated/api";
import { PREFIX, serialFetch } from "../../convex/test.helpers";
import { startForwardingServer } from "./forward";

const SECRET = "relay-convex-secret";
const TOKEN_KEY = "relay-convex-token-key";
const RELAY_BIN = process.env.YKEEP_RELAY_BIN ?? join(process.cwd(), "target", "debug", "ykeep-relay");

type Relay = { url: string; proc: ChildProcess; output: string[]; stop(): Promise<void> };
const cleanups: (() => Promise<void> | void)[] = [];

beforeEach(() => {
  vi.stubEnv("YKEEP_SECRET", SECRET);
  vi.stubEnv("YKEEP_TOKEN_KEY", TOKEN_KEY);
});
afterEach(() => vi.unstubAllEnvs());
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

function startRelay(storeUrl: string, dataDir: string, { checkTokens = false } = {}): Promise<Relay> {
  const args = [
    "relay",
    "--store-url", storeUrl,
    "--listen", "127.0.0.1:0",
    "--data-dir", dataDir,
    "--secret", SECRET,
    ...(checkTokens ? [] : ["--dev-allow-all"]),
    "--save-debounce-ms", "300",
  ];
  const proc = spawn(RELAY_BIN, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "info" } });
  const output: string[] = [];
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    }
  };
  cleanups.push(stop);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`relay did not print its address in 30 s:\n${output.join("")}`)), 30_000);
    let buffered = "";
    proc.stdout!.on("data", (chunk: Buffer) => {
      output.push(chunk.toString());
      buffered += chunk.toString();
      const m = /ykeep-relay listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(buffered);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[1], proc, output, stop });
      }
    });
    proc.stderr!.on("data", (chunk: Buffer) => output.push(chunk.toString()));
    proc.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    proc.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`relay exited (${code ?? signal}) before listening:\n${output.join("")}`));
    });
  });
}

function connect(relayUrl: string, id: string, doc: Y.Doc): Promise<WebsocketProvider> {
  const provider = new WebsocketProvider(`${relayUrl.replace(/^http/, "ws")}/rooms/document`, id, doc, {
    WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
    disableBc: true,
  });
  cleanups.push(() => provider.destroy());
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("provider did not sync within 15 s")), 15_000);
    const onSync = (synced: boolean) => {
      if (!synced) return;
      clearTimeout(timer);
      provider.off("sync", onSync);
      resolve(provider);
    };
    provider.on("sync", onSync);
  });
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | null | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== null && v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function textOf(update: Uint8Array): string {
  const d = new Y.Doc();
  Y.applyUpdate(d, update);
  return d.getText("t").toString();
}

test("relay saves a left room to Convex and a fresh relay cold-starts from it", { timeout: 120_000 }, async () => {
  if (!existsSync(RELAY_BIN)) {
    throw new Error(`relay binary not found at ${RELAY_BIN}, build it with cargo build -p ykeep-relay`);
  }
  const t = convexTest(schema, modules);
  const fetchConvex = serialFetch(t);
  const id = await t.mutation(internal.app.createResource, { kind: "document", title: "e2e" });
  const store = await startForwardingServer(fetchConvex);
  cleanups.push(() => store.close());
  const dirs = [mkdtempSync(join(tmpdir(), "ykeep-convex-relay-")), mkdtempSync(join(tmpdir(), "ykeep-convex-relay-"))];
  cleanups.push(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  const row = () => t.query(internal.app.snapshotOf, { kind: "document", id });

  // 1. Edit through the first relay, make sure the relay holds the edit, leave.
  const relay1 = await startRelay(`${store.url}${PREFIX}`, dirs[0]);
  const doc1 = new Y.Doc();
  const provider1 = await connect(relay1.url, id, doc1);
  doc1.getText("t").insert(0, "hello from node");
  await until("the relay to hold the edit", 10_000, async () => {
    const res = await fetch(`${relay1.url}/rooms/document/${id}/state`);
    if (res.status !== 200) return null;
    return textOf(new Uint8Array(await res.arrayBuffer())) === "hello from node" ? true : null;
  });
  expect((await row())?.yjsSnapshotId).toBeNull(); // nothing saved while the user is there (interval is 30 s)
  const left = Date.now();
  provider1.destroy();

  // 2. The debounced save lands in Convex storage.
  const saved = await until("the snapshot in Convex", 15_000, async () => {
    const r = await row();
    return r?.yjsSnapshotId ? r : null;
  });
  const saveDelayMs = Date.now() - left;
  const load1 = await fetchConvex(`/ykeep/snapshots/document/${id}`, { headers: { Authorization: `Bearer ${SECRET}` } });
  expect(load1.status).toBe(200);
  expect(load1.headers.get("etag")).toBe(`"${saved.yjsSnapshotId}"`);
  expect(textOf(new Uint8Array(await load1.arrayBuffer()))).toBe("hello from node");
  const durable = await until("the relay to report the store snapshot", 5_000, async () => {
    const res = await fetch(`${relay1.url}/rooms/document/${id}/durable`);
    if (res.status !== 200) return null;
    const j = (await res.json()) as { storeSnapshotId: string | null };
    return j.storeSnapshotId === saved.yjsSnapshotId ? j : null;
  });
  expect(durable.storeSnapshotId).toBe(saved.yjsSnapshotId);
  await relay1.stop();

  // 3. A fresh relay with an empty data dir: the room cold-starts from the Convex snapshot.
  const relay2 = await startRelay(`${store.url}${PREFIX}`, dirs[1]);
  const doc2 = new Y.Doc();
  const provider2 = await connect(relay2.url, id, doc2);
  expect(doc2.getText("t").toString()).toBe("hello from node");

  // 4. Edit again (append and delete), leave: the next save replaces the blob.
  doc2.getText("t").insert(doc2.getText("t").length, ", again");
  doc2.getText("t").delete(0, 6);
  const expected = doc2.getText("t").toString();
  expect(expected).toBe("from node, again");
  await until("the second relay to hold the edit", 10_000, async () => {
    const res = await fetch(`${relay2.url}/rooms/document/${id}/state`);
    if (res.status !== 200) return null;
    return textOf(new Uint8Array(await res.arrayBuffer())) === expected ? true : null;
  });
  provider2.destroy();
  const resaved = await until("the second snapshot in Convex", 15_000, async () => {
    const r = await row();
    return r?.yjsSnapshotId && r.yjsSnapshotId !== saved.yjsSnapshotId ? r : null;
  });
  const load2 = await fetchConvex(`/ykeep/snapshots/document/${id}`, { headers: { Authorization: `Bearer ${SECRET}` } });
  expect(load2.headers.get("etag")).toBe(`"${resaved.yjsSnapshotId}"`);
  expect(textOf(new Uint8Array(await load2.arrayBuffer()))).toBe(expected);
  const blobs = await t.run(async (ctx) => (await ctx.db.system.query("_storage").collect()).map((b) => b._id));
  expect(blobs).toEqual([resaved.yjsSnapshotId]); // the replaced blob is gone
  await relay2.stop();

  console.log(
    `relay-vs-convex: first save ${saveDelayMs} ms after leave (debounce 300 ms); store requests: ${store.log.join(", ")}`,
  );
});

test("two relays saving the same room to Convex: the conflict is merged, both edits kept", { timeout: 120_000 }, async () => {
  if (!existsSync(RELAY_BIN)) {
    throw new Error(`relay binary not found at ${RELAY_BIN}, build it with cargo build -p ykeep-relay`);
  }
  const t = convexTest(schema, modules);
  const fetchConvex = serialFetch(t);
  const id = await t.mutation(internal.app.createResource, { kind: "document" });
  const store = await startForwardingServer(fetchConvex);
  cleanups.push(() => store.close());
  const dirs = [mkdtempSync(join(tmpdir(), "ykeep-convex-relay-")), mkdtempSync(join(tmpdir(), "ykeep-convex-relay-"))];
  cleanups.push(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  const [relayA, relayB] = await Promise.all([startRelay(`${store.url}${PREFIX}`, dirs[0]), startRelay(`${store.url}${PREFIX}`, dirs[1])]);

  // Each relay holds the room with a different edit; neither sees the other's.
  const docA = new Y.Doc();
  const docB = new Y.Doc();
  const [providerA, providerB] = await Promise.all([connect(relayA.url, id, docA), connect(relayB.url, id, docB)]);
  docA.getText("t").insert(0, "[from A]");
  docB.getText("t").insert(0, "[from B]");
  for (const [relay, text] of [[relayA, "[from A]"], [relayB, "[from B]"]] as const) {
    await until(`relay to hold ${text}`, 10_000, async () => {
      const res = await fetch(`${relay.url}/rooms/document/${id}/state`);
      if (res.status !== 200) return null;
      return textOf(new Uint8Array(await res.arrayBuffer())) === text ? true : null;
    });
  }
  // Both leave at once: both debounced saves race for the same row.
  providerA.destroy();
  providerB.destroy();

  const final = await until("a snapshot holding both edits", 20_000, async () => {
    const r = await fetchConvex(`/ykeep/snapshots/document/${id}`, { headers: { Authorization: `Bearer ${SECRET}` } });
    if (r.status !== 200) return null;
    const text = textOf(new Uint8Array(await r.arrayBuffer()));
    return text.includes("[from A]") && text.includes("[from B]") ? text : null;
  });
  expect(final.length).toBe("[from A][from B]".length);
  console.log(`relay-vs-convex, two relays: store requests: ${store.log.join(", ")}`);
  const posts = store.log.filter((l) => l.startsWith("POST "));
  expect(posts.filter((l) => l.endsWith(" 409")).length).toBeGreaterThanOrEqual(1); // they really collided
  expect(posts.filter((l) => l.endsWith(" 200")).length).toBeGreaterThanOrEqual(2); // a first save, then the merged retry
  const blobs = await t.run(async (ctx) => (await ctx.db.system.query("_storage").collect()).length);
  expect(blobs).toBe(1);
  await Promise.all([relayA.stop(), relayB.stop()]);
  console.log(`relay-vs-convex, two relays: store requests: ${store.log.join(", ")}`);
});

test("the relay asks the app's own auth: tokens are checked by /ykeep/collaboration/verify and its authorize hook", { timeout: 60_000 }, async () => {
  if (!existsSync(RELAY_BIN)) {
    throw new Error(`relay binary not found at ${RELAY_BIN}, build it with cargo build -p ykeep-relay`);
  }
  const t = convexTest(schema, modules);
  const fetchConvex = serialFetch(t);
  const ws = await t.mutation(internal.app.createWorkspace, { name: "acme" });
  await t.mutation(internal.app.addMember, { workspaceId: ws, userId: "ada" });
  await t.mutation(internal.app.createSession, { userId: "ada", token: "sess_ada", ttlMs: 600_000 });
  await t.mutation(internal.app.createSession, { userId: "bob", token: "sess_bob", ttlMs: 600_000 });
  const id = await t.mutation(internal.app.createResource, { kind: "document", workspaceId: ws });
  const store = await startForwardingServer(fetchConvex);
  cleanups.push(() => store.close());
  const dir = mkdtempSync(join(tmpdir(), "ykeep-convex-relay-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const relay = await startRelay(`${store.url}${PREFIX}`, dir, { checkTokens: true });

  const open = (token: string) =>
    new Promise<{ closed: number | null }>((resolve) => {
      const socket = new WebSocket(`${relay.url.replace(/^http/, "ws")}/rooms/document/${id}?token=${token}`);
      const timer = setTimeout(() => {
        socket.close();
        resolve({ closed: null }); // still open: admitted
      }, 1500);
      socket.once("close", (code) => {
        clearTimeout(timer);
        resolve({ closed: code });
      });
    });
  expect(await open("sess_ada")).toEqual({ closed: null }); // a member of the workspace
  expect(await open("sess_bob")).toEqual({ closed: 1008 }); // not a member: the app's rule says no
  expect(await open("sess_unknown")).toEqual({ closed: 1008 });
  expect(store.log.filter((l) => l.startsWith("POST /ykeep/collaboration/verify 200")).length).toBeGreaterThanOrEqual(3);
  expect(store.log.some((l) => l.startsWith("POST /collaboration/verify"))).toBe(false); // never the app's own route
  await relay.stop();
});
