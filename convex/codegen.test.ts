// convex/_generated/ is what `npx convex codegen` would write for the modules in convex/
// (scripts/convex-codegen.mjs runs the CLI's own codegen offline). A module added, renamed
// or removed without regenerating fails here instead of at the next `npx convex dev`.
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, test } from "vitest";

const root = process.cwd();
const script = join(root, "scripts", "convex-codegen.mjs");
const run = (...args: string[]) => spawnSync(process.execPath, [script, ...args], { cwd: root, encoding: "utf8" });

const temps: string[] = [];
afterAll(() => {
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});
// A copy of convex/ (with its committed _generated/) to change without touching the repo.
function copyOfConvex(): string {
  const parent = mkdtempSync(join(tmpdir(), "ykeep-codegen-"));
  temps.push(parent);
  const dir = join(parent, "convex");
  cpSync(join(root, "convex"), dir, { recursive: true });
  return dir;
}
const extraModule = `import { internalQuery } from "./_generated/server";

export const ping = internalQuery({ args: {}, handler: async () => "pong" });
`;

test("convex/_generated matches the modules (node scripts/convex-codegen.mjs --check)", { timeout: 60_000 }, () => {
  const r = run("--check");
  expect(r.stderr).toBe("");
  expect(r.stdout).toMatch(/^convex\/_generated matches \d+ modules\n$/);
  expect(r.status).toBe(0);
});

test("--check fails when a module is added without regenerating, and codegen fixes it", { timeout: 60_000 }, () => {
  const dir = copyOfConvex();
  writeFileSync(join(dir, "extra.ts"), extraModule);
  const r = run("--check", "--dir", dir);
  expect(r.status).toBe(1);
  expect(r.stdout).toContain('+import type * as extra from "../extra.js";');
  expect(r.stdout).toContain("modules not in the committed api: extra");

  const w = run("--dir", dir);
  expect(w.status).toBe(0);
  expect(w.stdout).toContain("_generated/api.d.ts");
  const again = run("--check", "--dir", dir);
  expect(again.stdout).toMatch(/_generated matches \d+ modules\n$/);
  expect(again.status).toBe(0);
});

test("--check fails on a stale generated file; files the CLI skips are not modules", { timeout: 60_000 }, () => {
  const dir = copyOfConvex();
  // Skipped by the CLI's entryPoints(): more than one dot, .d.ts, schema, a space, no import/export.
  writeFileSync(join(dir, "extra.helpers.ts"), extraModule);
  writeFileSync(join(dir, "types.d.ts"), "export type X = 1;\n");
  writeFileSync(join(dir, "with space.ts"), extraModule);
  writeFileSync(join(dir, "empty.ts"), "// nothing to import or export\n");
  expect(run("--check", "--dir", dir).status).toBe(0);

  writeFileSync(join(dir, "_generated", "old.d.ts"), "export {};\n");
  const r = run("--check", "--dir", dir);
  expect(r.status).toBe(1);
  expect(r.stdout).toContain("_generated/old.d.ts: extra");
});

test("bad input is a clear error", () => {
  const r = run("--check", "--dir", join(root, "no-such-dir"));
  expect(r.status).toBe(2);
  expect(r.stderr).toContain("no such directory");
});
