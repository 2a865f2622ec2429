// The forwarding server itself, over a real socket: the store contract answers through it
// the same way it answers through t.fetch.
import { convexTest } from "convex-test";
import { afterEach, beforeEach, expect, test, vi } from "vitest";
import * as Y from "yjs";
import schema from "../../convex/schema";
import { modules } from "../../convex/test.setup";
import { internal } from "../../convex/_generated/api";
import { serialFetch } from "../../convex/test.helpers";
import { startForwardingServer } from "./forward";

beforeEach(() => vi.stubEnv("YKEEP_SECRET", "S"));
afterEach(() => vi.unstubAllEnvs());

test("save, load, contract, errors and CORS through a real HTTP listener", async () => {
  const t = convexTest(schema, modules);
  const id = await t.mutation(internal.app.createResource, { kind: "document" });
  const server = await startForwardingServer(serialFetch(t));
  try {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const health = await fetch(`${server.url}/ykeep/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ ok: true });

    const doc = new Y.Doc();
    doc.getText("t").insert(0, "through the socket");
    const saved = await fetch(`${server.url}/ykeep/snapshots/document/${id}`, {
      method: "POST",
      headers: { Authorization: "Bearer S", "Content-Type": "application/octet-stream" },
      body: Y.encodeStateAsUpdate(doc) as Uint8Array<ArrayBuffer>,
    });
    expect(saved.status).toBe(200);
    const { snapshotId } = (await saved.json()) as { snapshotId: string };
    expect(saved.headers.get("etag")).toBe(`"${snapshotId}"`);

    const loaded = await fetch(`${server.url}/ykeep/snapshots/document/${id}`, { headers: { Authorization: "Bearer S" } });
    expect(loaded.status).toBe(200);
    const back = new Y.Doc();
    Y.applyUpdate(back, new Uint8Array(await loaded.arrayBuffer()));
    expect(back.getText("t").toString()).toBe("through the socket");

    const wrong = await fetch(`${server.url}/ykeep/snapshots/document/${id}`, {
      method: "POST",
      headers: { Authorization: "Bearer nope" },
      body: Y.encodeStateAsUpdate(doc) as Uint8Array<ArrayBuffer>,
    });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get("www-authenticate")).toBe("Bearer");
    expect(await wrong.json()).toMatchObject({ error: { code: "unauthorized" } });

    const preflight = await fetch(`${server.url}/ykeep/snapshots/document/${id}`, {
      method: "OPTIONS",
      headers: { Origin: "http://example.test", "Access-Control-Request-Method": "GET" },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe("*");
    expect(preflight.headers.get("access-control-allow-headers")).toMatch(/Authorization/);

    // The relay's start-up check passes through: the contract answer needs the secret.
    const contract = await fetch(`${server.url}/ykeep/contract`, { headers: { Authorization: "Bearer S" } });
    expect(contract.status).toBe(200);
    expect(await contract.json()).toEqual({ contract: 1, store: "convex" });
    const noSecret = await fetch(`${server.url}/ykeep/contract`);
    expect(noSecret.status).toBe(401);
    expect(noSecret.headers.get("www-authenticate")).toBe("Bearer");
    expect(await noSecret.json()).toMatchObject({ error: { code: "unauthorized" } });
    const contractPreflight = await fetch(`${server.url}/ykeep/contract`, {
      method: "OPTIONS",
      headers: { Origin: "http://example.test", "Access-Control-Request-Method": "GET" },
    });
    expect(contractPreflight.status).toBe(204);
    expect(contractPreflight.headers.get("access-control-allow-origin")).toBe("*");

    // An unknown id is not_found; only the deleted row answers resource_deleted.
    const unknown = await fetch(`${server.url}/ykeep/snapshots/document/nobody`, { headers: { Authorization: "Bearer S" } });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: { code: "not_found" } });
    const gone = await fetch(`${server.url}/ykeep/snapshots/document/${id}`, { method: "DELETE", headers: { Authorization: "Bearer S" } });
    expect(gone.status).toBe(204);
    const after = await fetch(`${server.url}/ykeep/snapshots/document/${id}`, { headers: { Authorization: "Bearer S" } });
    expect(after.status).toBe(404);
    expect(await after.json()).toMatchObject({ error: { code: "resource_deleted" } });
    const saveAfter = await fetch(`${server.url}/ykeep/snapshots/document/${id}`, {
      method: "POST",
      headers: { Authorization: "Bearer S" },
      body: Y.encodeStateAsUpdate(doc) as Uint8Array<ArrayBuffer>,
    });
    expect(saveAfter.status).toBe(404);
    expect(await saveAfter.json()).toMatchObject({ error: { code: "resource_deleted" } });
    expect(server.log).toContain(`DELETE /ykeep/snapshots/document/${id} 204`);
    expect(server.log).toContain("GET /ykeep/contract 200");
  } finally {
    await server.close();
  }
});
