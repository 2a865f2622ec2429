import { convexTest } from "convex-test";
import { expect, test, vi } from "vitest";
import * as Y from "yjs";
import schema from "./schema";
import { modules } from "./test.setup";
import { internal } from "./_generated/api";

test("smoke", async () => {
  vi.stubEnv("YKEEP_SECRET", "S");
  const t = convexTest(schema, modules);
  const id = await t.mutation(internal.resources.create, { kind: "document" });
  console.log("id", id);
  const d = new Y.Doc(); d.getText("t").insert(0, "hi");
  const r = await t.fetch(`/snapshots/document/${id}`, { method: "POST", headers: { Authorization: "Bearer S" }, body: Y.encodeStateAsUpdate(d) });
  console.log(r.status, await r.text());
  const g = await t.fetch(`/snapshots/document/${id}`, { headers: { Authorization: "Bearer S" } });
  console.log(g.status, [...g.headers], (await g.arrayBuffer()).byteLength);
  expect(g.status).toBe(200);
});
