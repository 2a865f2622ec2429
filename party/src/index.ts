// ykeep/party: the ykeep room as a Durable Object for partyserver (PartyKit).
//
// The room's rules are crates/room compiled to wasm (crates/party); this file does the I/O and
// nothing else: the sockets (hibernation API), the log in the object's SQLite storage, alarms,
// and the store's HTTP contract over fetch. See docs/party.md.
//
//   export { YkeepRoom } from "ykeep/party";                       // the Durable Object class
//   const res = await routeYkeepRequest(request, env);             // in the worker's fetch
//   [[durable_objects.bindings]] name = "YKEEP" class_name = "YkeepRoom"   // wrangler.toml
import { Server, type Connection, type ConnectionContext, type WSMessage } from "partyserver";

import { Log } from "./log.js";
import { Host, PartyRoom, StoreReply } from "./wasm.js";

/** The most messages one batch (one log record, one commit) takes. */
const BATCH_MESSAGES = 1024;

/** The binding `routeYkeepRequest` uses unless told otherwise. */
export const DEFAULT_BINDING = "YKEEP";

interface HttpReply {
  status: number;
  contentType: string;
  body: Uint8Array;
  etag?: string;
}
interface CloseInfo {
  code: number;
  reason: string;
}
interface Refusal {
  reply: HttpReply;
  close: CloseInfo;
  cache?: boolean;
}
interface StoreRequest {
  method: string;
  url: string;
  headers: [string, string][];
  body?: Uint8Array;
}
type Effect =
  | { t: "send"; to?: number; except?: number; data: Uint8Array }
  | { t: "close"; conn: number; code: number; reason: string }
  | { t: "reply"; query: number; reply: HttpReply }
  | ({ t: "store" } & StoreRequest)
  | { t: "quarantine"; reason: string }
  | { t: "unload" };
interface Step {
  append?: import("./log.js").Append;
  compact?: import("./log.js").Compact;
  effects: Effect[];
}
type RouteInfo =
  | { room: string; what: "socket" | "state" | "durable" }
  | { reply: HttpReply; close: CloseInfo };

/** What a connection keeps across hibernation (its WebSocket attachment). */
interface ConnState {
  /** The room's number for it. */
  n: number;
  /** The awareness client ids it announced, with their clocks: `[id, clock, ...]`. */
  aw: number[];
  /** Present once it opted in to acknowledgements: what it is owed, `[seq, mark, ...]`. */
  ak?: number[];
}

/** The first byte of a ykeep message (`ykeep_core::acks::MESSAGE_TYPE`). */
const YKEEP_MESSAGE = 107;

const CORS: Record<string, string> = {
  "access-control-allow-origin": "*",
  "access-control-allow-methods": "GET, OPTIONS",
  "access-control-allow-headers": "authorization, content-type, if-none-match",
  "access-control-expose-headers": "etag",
};

// One Host per isolate and env: its settings are read once.
const hosts = new WeakMap<object, Host>();
function hostOf(env: object): Host {
  let host = hosts.get(env);
  if (!host) {
    host = new Host(env);
    hosts.set(env, host);
  }
  return host;
}

function response(reply: HttpReply): Response {
  if (reply.status === 304) {
    // A 304 has no body (a Response refuses one).
    return new Response(null, { status: 304, headers: { ...(reply.etag ? { etag: reply.etag } : {}), ...CORS } });
  }
  return new Response(reply.body, {
    status: reply.status,
    headers: { "content-type": reply.contentType, ...(reply.etag ? { etag: reply.etag } : {}), ...CORS },
  });
}

/** A WebSocket accepted only to be closed with a code and reason (as the relay refuses). */
function refusedSocket(close: CloseInfo): Response {
  const pair = new WebSocketPair();
  pair[1].accept();
  pair[1].close(close.code, close.reason);
  return new Response(null, { status: 101, webSocket: pair[0] });
}

function isUpgrade(request: Request): boolean {
  return request.headers.get("upgrade")?.toLowerCase() === "websocket";
}

/**
 * Routes the host's URL shapes to the room's one Durable Object, named by its canonical
 * `kind/id` (`idFromName`): `/parties/{kind}/{id}`, `/parties/main/{kind}:{id}`,
 * `/rooms/{kind}/{id}` and its `/state` and `/durable`. `null` for any other path.
 */
export async function routeYkeepRequest(
  request: Request,
  env: Record<string, unknown>,
  options: { binding?: string } = {},
): Promise<Response | null> {
  const host = hostOf(env);
  const url = new URL(request.url);
  const route = host.route(url.pathname) as RouteInfo | null;
  if (!route) return null;
  if ("reply" in route) return isUpgrade(request) ? refusedSocket(route.close) : response(route.reply);
  if (request.method === "OPTIONS") return new Response(null, { status: 204, headers: CORS });
  const binding = options.binding ?? DEFAULT_BINDING;
  const namespace = env[binding] as DurableObjectNamespace | undefined;
  if (!namespace) throw new Error(`routeYkeepRequest: no Durable Object binding named ${binding}`);
  const stub = namespace.get(namespace.idFromName(route.room));
  return stub.fetch(request);
}

export class YkeepRoom extends Server<Record<string, unknown>> {
  static options = { hibernate: true };

  #host: Host;
  #log: Log;
  /** The room, once opened; `#opening` while its cold start runs. */
  #room: PartyRoom | undefined;
  #opening: Promise<PartyRoom> | undefined;
  #conns = new Map<number, Connection<ConnState>>();
  #nextConn = 1;
  #queries = new Map<number, (reply: HttpReply) => void>();
  #nextQuery = 1;
  #alarmAt: number | null = null;
  /** A flush of the messages batched so far is scheduled. */
  #flushing: ReturnType<typeof setTimeout> | undefined;
  /** Messages in the batch. */
  #batched = 0;
  #auth = new Map<string, { at: number; refusal: Refusal | null }>();

  constructor(ctx: DurableObjectState, env: Record<string, unknown>) {
    super(ctx, env);
    this.#host = hostOf(env);
    this.#log = new Log(ctx.storage);
  }

  /** Woken from hibernation with sockets still open: rebuild the room for them. */
  onStart(): void {
    const kept: ([number, number[]] | [number, number[], number[]])[] = [];
    for (const conn of this.getConnections<ConnState>()) {
      const state = conn.state;
      if (!state) continue;
      kept.push(state.ak ? [state.n, [...state.aw], [...state.ak]] : [state.n, [...state.aw]]);
      this.#conns.set(state.n, conn);
      this.#nextConn = Math.max(this.#nextConn, state.n + 1);
    }
    if (kept.length === 0) return;
    console.log(`room ${this.name}: woken with ${kept.length} open connections; rebuilt from its log`);
    this.#room = this.#host.resume(this.name, this.#log.read(), kept, Date.now());
    this.#perform(this.#room, this.#room.flush(Date.now()));
  }

  async fetch(request: Request): Promise<Response> {
    const route = this.#host.route(new URL(request.url).pathname) as RouteInfo | null;
    if (route && "room" in route && route.what === "socket" && isUpgrade(request)) {
      const token = new URL(request.url).searchParams.get("token") ?? undefined;
      const refusal = await this.#authorize(token, route.room);
      if (refusal) return refusedSocket(refusal.close);
    }
    return super.fetch(request);
  }

  async onConnect(connection: Connection<ConnState>, ctx: ConnectionContext): Promise<void> {
    const room = await this.#open();
    const n = this.#nextConn++;
    connection.setState({ n, aw: [] });
    this.#conns.set(n, connection);
    room.join(n, Date.now());
    if (new URL(ctx.request.url).searchParams.get("ykeep") === "acks") room.optIn(n, Date.now());
    this.#perform(room, room.flush(Date.now()));
  }

  async onMessage(connection: Connection<ConnState>, message: WSMessage): Promise<void> {
    if (typeof message === "string") return; // y-sync is binary
    const state = connection.state;
    if (!state) return;
    const room = this.#room ?? (await this.#open());
    const data = message instanceof ArrayBuffer ? new Uint8Array(message) : new Uint8Array(message.buffer, message.byteOffset, message.byteLength);
    let owned: Float64Array | undefined;
    try {
      owned = room.frame(state.n, data, Date.now());
    } catch (e) {
      return this.#trapped(room, state.n, e);
    }
    if (owned) connection.setState({ n: state.n, aw: Array.from(owned), ak: state.ak && [...state.ak] });
    this.#flushSoon(room);
  }

  /**
   * The room's wasm trapped on a client's message. Panics unwind (the party wasm is built with
   * wasm exception handling) and the room's guards refuse the update, as on the relay; a trap is
   * what is left (out of memory, a bug), and it leaves the room object unusable. Nothing of the
   * batch was logged or sent; the doc may hold part of it. The room is dropped (the next use
   * rebuilds it from the log): the sender is refused with 1008, and every other client is
   * closed with 1011 so that it resyncs.
   */
  #trapped(room: PartyRoom, offender: number, e: unknown): void {
    console.error(`room ${this.name}: the room trapped on a message of connection ${offender}; dropped, rebuilt from the log on next use`, e);
    if (this.#room !== room) return;
    this.#room = undefined;
    if (this.#flushing !== undefined) clearTimeout(this.#flushing);
    this.#flushing = undefined;
    for (const [query, resolve] of this.#queries) {
      this.#queries.delete(query);
      resolve(this.#host.notLive() as HttpReply);
    }
    for (const [n, conn] of this.#conns) {
      this.#conns.delete(n);
      if (n === offender) conn.close(1008, "bad Yjs update: the room cannot take it");
      else conn.close(1011, "the room restarted: reconnect to resync");
    }
  }

  /**
   * Messages are batched: the room takes every message that arrives before the next task (at most
   * BATCH_MESSAGES; 256 and 1,024 measured alike, 30-32k updates/s), then
   * one flush writes them as one log record (one SQLite commit instead of one per message) and
   * forwards them. Nothing of the batch leaves before that write.
   */
  #flushSoon(room: PartyRoom): void {
    // workerd hands over a socket's messages with no backpressure: a burst of them can all come
    // before the next task. A batch is flushed at BATCH_MESSAGES at the latest, so that a batch
    // (its record, its deliveries) stays small.
    if (++this.#batched >= BATCH_MESSAGES) {
      if (this.#flushing !== undefined) clearTimeout(this.#flushing);
      this.#flushing = undefined;
      this.#batched = 0;
      return this.#perform(room, room.flush(Date.now()));
    }
    if (this.#flushing) return;
    this.#flushing = setTimeout(() => {
      this.#flushing = undefined;
      this.#batched = 0;
      this.#perform(room, room.flush(Date.now()));
    }, 0);
  }

  async onClose(connection: Connection<ConnState>): Promise<void> {
    const state = connection.state;
    if (!state || !this.#conns.delete(state.n)) return;
    const room = await this.#open();
    room.leave(state.n, Date.now());
    this.#perform(room, room.flush(Date.now()));
  }

  async onError(connection: Connection<ConnState>): Promise<void> {
    await this.onClose(connection);
  }

  /** The save schedule's deadline (a periodic save, the debounce after the last leave). */
  async onAlarm(): Promise<void> {
    this.#alarmAt = null;
    const room = await this.#open();
    this.#perform(room, room.flush(Date.now()));
  }

  async onRequest(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const route = this.#host.route(url.pathname) as RouteInfo | null;
    if (!route || "reply" in route || route.what === "socket") {
      return new Response("not found", { status: 404 });
    }
    const token = this.#host.bearer(request.headers.get("authorization") ?? undefined);
    const refusal = await this.#authorize(token, route.room);
    if (refusal) return response(refusal.reply);
    const room = this.#room;
    if (route.what === "durable" && !room) {
      return response(this.#host.durableOfLog(this.name, this.#log.read()));
    }
    if (!room) return response(this.#host.notLive());
    const query = this.#nextQuery++;
    const answered = new Promise<HttpReply>((resolve) => this.#queries.set(query, resolve));
    const now = Date.now();
    if (route.what === "state") {
      const sv = url.searchParams.get("sv") ?? undefined;
      const ifNoneMatch = request.headers.get("if-none-match") ?? undefined;
      const refused = room.stateQuery(query, sv, ifNoneMatch, now) as HttpReply | null;
      if (refused) {
        this.#queries.delete(query);
        return response(refused);
      }
    } else {
      room.durableQuery(query, now);
    }
    this.#perform(room, room.flush(now));
    return response(await answered);
  }

  /** The room, opened on first use: the log merged with the store's snapshot. */
  #open(): Promise<PartyRoom> {
    if (this.#room) return Promise.resolve(this.#room);
    this.#opening ??= (async () => {
      try {
        const request = this.#host.loadRequest(this.name) as StoreRequest;
        const answer = await this.#send(request);
        const room = this.#host.open(this.name, this.#log.read(), answer, Date.now());
        this.#room = room;
        this.#perform(room, room.flush(Date.now()));
        return room;
      } finally {
        this.#opening = undefined;
      }
    })();
    return this.#opening;
  }

  /**
   * One step, in the order the room requires: the log write first (synchronous; workerd's
   * output gate holds every message sent below until it is durable), then the effects. If the
   * write fails, nothing of the step is sent: every client is closed with 1011.
   */
  #perform(room: PartyRoom, step: Step): void {
    let effects = step.effects;
    if (step.append || step.compact) {
      try {
        this.#log.write(step.append, undefined);
      } catch (e) {
        console.error(`room ${this.name}: the log's append failed; closing every client`, e);
        effects = room.logFailed() as Effect[];
      }
      if (step.compact && effects === step.effects) {
        try {
          this.#log.write(undefined, step.compact);
        } catch (e) {
          // The store holds the state and the log still holds every record.
          console.error(`room ${this.name}: recording the save failed (the log keeps every record)`, e);
        }
      }
    }
    const acked = new Set<number>();
    for (const effect of effects) {
      this.#apply(room, effect);
      if (effect.t === "send" && effect.to !== undefined && effect.data[0] === YKEEP_MESSAGE) acked.add(effect.to);
    }
    // What an opted-in connection is owed changed: it is kept with the socket, so that a room
    // rebuilt after hibernation still sends the Saved it owes.
    for (const n of acked) {
      const conn = this.#conns.get(n);
      const owed = room.owedOf(n);
      const state = conn?.state;
      if (conn && state && owed) conn.setState({ n: state.n, aw: [...state.aw], ak: Array.from(owed) });
    }
    if (this.#room === room) this.#arm(room);
  }

  #apply(room: PartyRoom, effect: Effect): void {
    switch (effect.t) {
      case "send":
        if (effect.to !== undefined) {
          this.#conns.get(effect.to)?.send(effect.data);
        } else {
          for (const [n, conn] of this.#conns) if (n !== effect.except) conn.send(effect.data);
        }
        return;
      case "close": {
        const conn = this.#conns.get(effect.conn);
        this.#conns.delete(effect.conn);
        conn?.close(effect.code, effect.reason);
        return;
      }
      case "reply":
        this.#queries.get(effect.query)?.(effect.reply);
        this.#queries.delete(effect.query);
        return;
      case "store":
        void this.#storeCall(room, effect);
        return;
      case "quarantine": {
        const moved = this.#log.quarantine(effect.reason, Date.now());
        console.error(`room ${this.name}: ${effect.reason}; ${moved} log records moved to ykeep_quarantine`);
        return;
      }
      case "unload":
        if (this.#room !== room) return;
        this.#room = undefined;
        // Saved: nothing is due. Unsaved (its last save failed): the next use saves it. No
        // alarm may wake it again: the watchdog armed while its save was in flight would
        // reopen it, and while the store is down that would be a retry loop.
        this.#alarmAt = null;
        void this.ctx.storage.deleteAlarm();
        return;
    }
  }

  async #storeCall(room: PartyRoom, request: StoreRequest): Promise<void> {
    const answer = await this.#send(request);
    room.answer(answer, Date.now());
    this.#perform(room, room.flush(Date.now()));
  }

  /** One request to the store, with the shared secret; never throws. */
  async #send(request: StoreRequest): Promise<StoreReply> {
    const headers = new Headers(request.headers);
    headers.set("authorization", `Bearer ${this.#host.secret}`);
    // A timer of our own, cleared with the answer: a pending timer (AbortSignal.timeout's
    // too) keeps the object from hibernating.
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new Error(`no answer in ${this.#host.storeTimeoutMs} ms`)), this.#host.storeTimeoutMs);
    try {
      const res = await fetch(request.url, {
        method: request.method,
        headers,
        body: request.body,
        signal: abort.signal,
      });
      const body = new Uint8Array(await res.arrayBuffer());
      const etag = res.headers.get("etag") ?? undefined;
      const savedAt = res.headers.get("x-ykeep-saved-at") ?? undefined;
      return StoreReply.answer(request.url, res.status, etag, savedAt, body);
    } catch (e) {
      return StoreReply.unreachable(request.url, e instanceof Error ? e.message : String(e));
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The alarm at the room's next deadline. While the log holds unsaved records and no deadline
   * is set (a save in flight), a watchdog alarm stays armed: an object killed mid-save wakes
   * and saves again.
   */
  #arm(room: PartyRoom): void {
    let at = room.nextDeadline() ?? null;
    if (at === null && room.unsaved) at = Date.now() + this.#host.storeTimeoutMs + 1_000;
    if (at === null || at === this.#alarmAt) return;
    this.#alarmAt = at;
    void this.ctx.storage.setAlarm(at);
  }

  /** `null` when `token` may use `room`; the refusal otherwise (verdicts cached briefly). */
  async #authorize(token: string | undefined, room: string): Promise<Refusal | null> {
    const first = this.#host.precheck(token) as "allow" | "ask" | Refusal;
    if (first === "allow") return null;
    if (first !== "ask") return first;
    const key = token as string;
    const cached = this.#auth.get(key);
    if (cached && Date.now() - cached.at < this.#host.authCacheMs) return cached.refusal;
    const answer = await this.#send(this.#host.verifyRequest(key, room) as StoreRequest);
    const refusal = this.#host.judge(answer) as Refusal | null;
    if (refusal?.cache !== false) {
      if (this.#auth.size > 1_000) this.#auth.clear();
      this.#auth.set(key, { at: Date.now(), refusal });
    }
    return refusal;
  }
}
