// Builds the party host's JavaScript from party/src (after scripts/build-party has put the
// room's wasm and its wasm-bindgen glue into party/dist/):
//   party/dist/index.js, log.js, wasm.js   the package's modules (ykeep/party), imports kept
//   party/dist/worker.mjs                  the example app (party/example/worker.ts) bundled
//                                          for workerd, the wasm left as its own module
import { build } from "esbuild";
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");
const sources = readdirSync(join(here, "src"))
  .filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))
  .map((f) => join(here, "src", f));

await build({
  entryPoints: sources,
  outdir: dist,
  format: "esm",
  platform: "neutral",
  target: "es2022",
  logLevel: "warning",
});

await build({
  entryPoints: [join(here, "example", "worker.ts")],
  outfile: join(dist, "worker.mjs"),
  bundle: true,
  format: "esm",
  platform: "neutral",
  target: "es2022",
  conditions: ["workerd", "worker", "import"],
  mainFields: ["module", "main"],
  external: ["cloudflare:*", "node:*", "*.wasm"],
  // party/src imports ./wasm.js, ./log.js: resolve them to the sources
  plugins: [
    {
      name: "ts-sources",
      setup(b) {
        b.onResolve({ filter: /^\.\/(wasm|log|index)\.js$/ }, (args) => {
          if (!args.importer.startsWith(join(here, "src"))) return undefined;
          return { path: join(here, "src", args.path.replace(/\.js$/, ".ts")) };
        });
        b.onResolve({ filter: /^\.\/ykeep_party\.js$/ }, () => ({ path: join(dist, "ykeep_party.js") }));
        b.onResolve({ filter: /^\.\/ykeep_party_bg\.wasm$/ }, () => ({ path: "./ykeep_party_bg.wasm", external: true }));
        b.onResolve({ filter: /^\.\.\/src\/index\.js$/ }, () => ({ path: join(here, "src", "index.ts") }));
      },
    },
  ],
  logLevel: "warning",
});
console.log(`party/dist: modules and worker.mjs built`);
