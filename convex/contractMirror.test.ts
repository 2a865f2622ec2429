// convex/contract.ts mirrors crates/core/src/contract.rs: every error code, verify reason and
// number is written once in Rust and once here, and this test holds the two to each other.
import { expect, test } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { CODE, CONTRACT_VERSION, REASON, SNAPSHOT_READ_TRIES } from "../js/convex/contract";

const RUST = readFileSync(join(process.cwd(), "crates", "core", "src", "contract.rs"), "utf8");

/** The `pub const NAME: &str = "value";` strings of `pub mod <name> { ... }`. */
function rustStrings(module: string): string[] {
  const start = RUST.indexOf(`pub mod ${module} {`);
  expect(start, `pub mod ${module} in contract.rs`).toBeGreaterThanOrEqual(0);
  const body = RUST.slice(start, RUST.indexOf("\n}", start));
  return [...body.matchAll(/pub const [A-Z_]+: &str = "([^"]+)";/g)].map((m) => m[1]).sort();
}

function rustNumber(name: string): number {
  const m = new RegExp(`pub const ${name}: u32 = (\\d+);`).exec(RUST);
  expect(m, `${name} in contract.rs`).not.toBeNull();
  return Number(m![1]);
}

test("error codes, verify reasons and numbers match ykeep_core::contract", () => {
  expect(Object.values(CODE).sort()).toEqual(rustStrings("code"));
  expect(Object.values(REASON).sort()).toEqual(rustStrings("reason"));
  expect(SNAPSHOT_READ_TRIES).toBe(rustNumber("SNAPSHOT_READ_TRIES"));
  expect(CONTRACT_VERSION).toBe(rustNumber("CONTRACT_VERSION"));
});
