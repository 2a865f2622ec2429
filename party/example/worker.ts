// The example app's worker: the three lines an app adds to run ykeep rooms on PartyKit
// (see party/README section in the README). The tests and `scripts/start --party` run it.
import { routePartykitRequest } from "partyserver";
import { routeYkeepRequest } from "../src/index.js";

export { YkeepRoom } from "../src/index.js";

export default {
  async fetch(request: Request, env: Record<string, unknown>): Promise<Response> {
    return (
      (await routeYkeepRequest(request, env)) ??
      (await routePartykitRequest(request, env)) ??
      new Response("Not found", { status: 404 })
    );
  },
};
