// The Convex functions served over real HTTP without a Convex deployment: convex-test
// (in-memory database and file storage) behind the forwarding server, on 127.0.0.1.
//
//   YKEEP_SECRET=S YKEEP_TOKEN_KEY=K npx vite-node --config convex/vitest.config.mjs tests/convex-relay/dev-server.ts -- \
//       [--port 0] [--create document] [--create task ...]
//
// Prints "convex-test store listening on http://127.0.0.1:PORT/ykeep" (the example app mounts
// ykeep under /ykeep) and one line "created <kind> <_id>" per --create. Every route of
// convex/http.ts is served as is, `GET /ykeep/contract` (the relay's start-up check) included.
// Then point a relay at it:
//   ykeep-relay relay --store-url http://127.0.0.1:PORT/ykeep --secret S --token-key K ...
// State lives in memory and is gone when the process exits. Stop with Ctrl-C.
import { convexTest } from "convex-test";
import schema from "../../convex/schema";
import { modules } from "../../convex/test.setup";
import { internal } from "../../convex/_generated/api";
import { PREFIX, serialFetch } from "../../convex/test.helpers";
import { startForwardingServer } from "./forward";

const argv = process.argv.slice(2).filter((a) => a !== "--");
let port = 0;
const creates: ("document" | "diagram" | "task")[] = [];
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === "--port") port = Number(argv[++i]);
  else if (argv[i] === "--create") {
    const kind = argv[++i];
    if (kind !== "document" && kind !== "diagram" && kind !== "task") throw new Error(`--create: unknown kind ${kind}`);
    creates.push(kind);
  } else throw new Error(`unknown argument ${argv[i]}`);
}
if (!process.env.YKEEP_SECRET) console.error("warning: YKEEP_SECRET is not set; saves will get 401");

const t = convexTest(schema, modules);
const server = await startForwardingServer(serialFetch(t), port);
console.log(`convex-test store listening on ${server.url}${PREFIX}`);
for (const kind of creates) console.log(`created ${kind} ${await t.mutation(internal.app.createResource, { kind })}`);
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    void server.close().then(() => process.exit(0));
  });
}
