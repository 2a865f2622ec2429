// Test helpers (two dots in the name: Convex does not deploy this file).

/** Where the example app mounts ykeep's routes (convex/http.ts). */
export const PREFIX = "/ykeep";

/**
 * Runs `t.fetch` calls one at a time. convex-test 0.0.60 cannot run an action's
 * `ctx.storage.store` while another request's query or mutation is open: the write lands
 * outside any transaction ("Write outside of transaction"). A deployed Convex has no such
 * limit. Requests from concurrent callers still interleave at request granularity, and
 * the compare-and-set window itself is covered by the interleaving test in
 * concurrency.test.ts, which drives the internal functions directly.
 */
export function serialFetch(t: { fetch(path: string, init?: RequestInit): Promise<Response> }) {
  let tail: Promise<unknown> = Promise.resolve();
  return (path: string, init?: RequestInit): Promise<Response> => {
    const run = tail.then(async () => {
      const res = await t.fetch(path, init);
      // Buffer the body so the next request starts only after this one is complete.
      const body = res.status === 204 || res.status === 304 ? null : await res.arrayBuffer();
      return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
    });
    tail = run.catch(() => {});
    return run;
  };
}
