// `npx convex deploy` typechecks the functions; run the same check in the suite so a type
// error fails `npm run test:convex` instead of the deploy.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { expect, test } from "vitest";

test("convex/ and its tests typecheck (tsc -p convex)", { timeout: 120_000 }, () => {
  const root = process.cwd();
  const r = spawnSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", join(root, "convex")], {
    encoding: "utf8",
  });
  expect(r.stdout + r.stderr).toBe("");
  expect(r.status).toBe(0);
});
