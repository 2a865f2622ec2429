// A real HTTP listener in front of convex-test: convex-test has no network listener, so
// this Node server turns each request into a `t.fetch` call (the Convex HTTP actions in
// convex/http.ts) and writes the reply back. Listens on 127.0.0.1 only.
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export type FetchLike = (path: string, init?: RequestInit) => Promise<Response>;

export type ForwardingServer = {
  /** Base URL, e.g. http://127.0.0.1:40123 */
  url: string;
  /** Requests served so far, as "METHOD /path status". */
  log: string[];
  close(): Promise<void>;
};

async function readAll(req: IncomingMessage): Promise<Uint8Array<ArrayBuffer>> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const all = Buffer.concat(chunks);
  return new Uint8Array(all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength)) as Uint8Array<ArrayBuffer>;
}

/**
 * Serves `fetchFn` (usually a serialized convex-test `t.fetch`) on 127.0.0.1.
 * `port` 0 picks a free port.
 */
export async function startForwardingServer(fetchFn: FetchLike, port = 0): Promise<ForwardingServer> {
  const log: string[] = [];
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const method = req.method ?? "GET";
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers)) {
      if (v === undefined || k === "host" || k === "connection" || k === "transfer-encoding") continue;
      headers.set(k, Array.isArray(v) ? v.join(", ") : v);
    }
    const body = method === "GET" || method === "HEAD" || method === "OPTIONS" ? undefined : await readAll(req);
    if (body !== undefined) headers.set("content-length", String(body.byteLength));
    const response = await fetchFn(req.url ?? "/", { method, headers, body });
    const out = Buffer.from(await response.arrayBuffer());
    const outHeaders: Record<string, string> = {};
    response.headers.forEach((v, k) => {
      if (k !== "content-length" && k !== "transfer-encoding") outHeaders[k] = v;
    });
    if (response.status !== 204 && response.status !== 304) outHeaders["content-length"] = String(out.length);
    res.writeHead(response.status, outHeaders);
    res.end(response.status === 204 || response.status === 304 ? undefined : out);
    log.push(`${method} ${(req.url ?? "/").split("?")[0]} ${response.status}`);
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((e) => {
      console.error("forwarding server: request failed", e);
      if (!res.headersSent) res.writeHead(502, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { code: "bad_gateway", message: "convex-test request failed" } }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${bound}`,
    log,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
