// The Convex suite: contract cases, migration, concurrent saves (convex/*.test.ts) and
// the relay-against-Convex end-to-end test (tests/convex-relay/). Run: npm run test:convex
import { defineConfig } from "vitest/config";
import { fileURLToPath } from "node:url";

export default defineConfig({
  root: fileURLToPath(new URL("..", import.meta.url)),
  test: {
    include: ["convex/**/*.test.ts", "tests/convex-relay/**/*.test.ts"],
    environment: "edge-runtime",
    server: { deps: { inline: ["convex-test"] } },
    testTimeout: 30000,
    hookTimeout: 60000,
  },
});
