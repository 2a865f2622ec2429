// Builds the Convex library (js/convex/*.ts) into the npm package's subpath ykeep/convex:
//   node scripts/build-convex.mjs <out dir>     (scripts/lib.sh convex_package calls it)
// - index.js, prosemirror.js: ES modules, one shared chunk (so ConversionError is one class),
//   with convex, yjs, lib0, y-prosemirror and prosemirror-* left as imports (peers of the app);
// - *.d.ts: declarations by tsc (js/convex/tsconfig.json).
import { build } from "esbuild";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const out = process.argv[2];
if (!out) {
  console.error("usage: node scripts/build-convex.mjs <out dir>");
  process.exit(2);
}
const src = join(root, "js", "convex");
const entries = ["index.ts", "prosemirror.ts"].map((f) => join(src, f));
for (const e of entries) {
  if (!existsSync(e)) {
    console.error(`build-convex: ${e} is missing`);
    process.exit(1);
  }
}
await build({
  entryPoints: entries,
  outdir: out,
  bundle: true,
  splitting: true,
  chunkNames: "chunk-[hash]",
  format: "esm",
  platform: "neutral",
  target: "es2022",
  external: ["convex", "convex/*", "yjs", "lib0", "lib0/*", "y-prosemirror", "prosemirror-*"],
  logLevel: "warning",
});
const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
const r = spawnSync(process.execPath, [tsc, "-p", join(src, "tsconfig.json"), "--outDir", out], { stdio: "inherit" });
if (r.status !== 0) {
  console.error("build-convex: tsc (declarations) failed");
  process.exit(1);
}
