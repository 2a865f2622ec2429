// The Convex suite: contract cases, migration, concurrent saves (convex/*.test.ts) and
// the relay-against-Convex end-to-end test (tests/convex-relay/). Run: npm run test:convex
import { defineConfig } from "vitest/config";
import { fileURLToPath } from "node:url";

const lib = (file) => fileURLToPath(new URL(`../js/convex/${file}`, import.meta.url));

export default defineConfig({
  root: fileURLToPath(new URL("..", import.meta.url)),
  // The example app imports the library as an app does (`ykeep/convex`); here that resolves to
  // its sources. tests/packed/ runs the packed package as installed.
  resolve: {
    alias: [
      { find: /^ykeep\/convex\/prosemirror$/, replacement: lib("prosemirror.ts") },
      { find: /^ykeep\/convex$/, replacement: lib("index.ts") },
    ],
  },
  test: {
    include: ["convex/**/*.test.ts", "tests/convex-relay/**/*.test.ts"],
    environment: "edge-runtime",
    server: { deps: { inline: ["convex-test"] } },
    testTimeout: 30000,
    hookTimeout: 60000,
  },
});
