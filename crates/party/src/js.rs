//! The API the TypeScript host calls (wasm-bindgen). Effects come out as plain JS objects, the
//! bytes as `Uint8Array`s; `party/src/wasm.d.ts` describes them.

use std::panic::AssertUnwindSafe;

use bytes::Bytes;
use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use ykeep_core::wire::SaveReceipt;
use ykeep_core::{RoomName, StateTag, b64};
use ykeep_room::access::{self, Precheck};
use ykeep_room::store_http::{self, Answer, Request};
use ykeep_room::{
    Close, DurableInfo, Effect, Event, KeptConn, LogRecord, OutFrame, Owed, Purpose, Reply, Room,
    RoomRecords, StoreError, StoredSnapshot, Target, protocol,
};

use crate::config::Settings;
use crate::routes::{HttpReply, Route, route};

fn set(target: &Object, key: &str, value: impl Into<JsValue>) {
    let _ = Reflect::set(target, &JsValue::from_str(key), &value.into());
}

fn bytes(data: &[u8]) -> Uint8Array {
    Uint8Array::from(data)
}

fn reply_object(reply: &HttpReply) -> Object {
    let o = Object::new();
    set(&o, "status", reply.status);
    set(&o, "contentType", reply.content_type);
    set(&o, "body", bytes(&reply.body));
    if let Some(tag) = &reply.etag {
        set(&o, "etag", tag.as_str());
    }
    o
}

fn close_object(close: &Close) -> Object {
    let o = Object::new();
    set(&o, "code", close.code);
    set(&o, "reason", close.reason.as_str());
    o
}

fn js_error(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

fn parse_room(name: &str) -> Result<RoomName, JsError> {
    RoomName::parse(name).map_err(js_error)
}

/// The host's settings and the rules that need no room.
#[wasm_bindgen]
pub struct Host {
    settings: Settings,
}

#[wasm_bindgen]
impl Host {
    /// Reads the bindings of `env` (the Durable Object's env): a bad value throws, naming it.
    #[wasm_bindgen(constructor)]
    pub fn new(env: &JsValue) -> Result<Host, JsError> {
        crate::console::install();
        let settings = Settings::from_env(|name| {
            Reflect::get(env, &JsValue::from_str(name))
                .ok()
                .and_then(|v| v.as_string().or_else(|| v.as_f64().map(|n| n.to_string())))
        })
        .map_err(js_error)?;
        if settings.allow_all {
            tracing::warn!(
                "YKEEP_DEV_ALLOW_ALL is set: every token is accepted (development only)"
            );
        }
        Ok(Host { settings })
    }

    #[wasm_bindgen(getter)]
    pub fn secret(&self) -> String {
        self.settings.secret.clone()
    }

    #[wasm_bindgen(getter, js_name = storeTimeoutMs)]
    pub fn store_timeout_ms(&self) -> f64 {
        self.settings.store_timeout_ms as f64
    }

    #[wasm_bindgen(getter, js_name = authCacheMs)]
    pub fn auth_cache_ms(&self) -> f64 {
        self.settings.auth_cache_ms as f64
    }

    /// `null` when the path is not the host's; `{room, what: "socket" | "state" | "durable"}`;
    /// or `{reply}` (a 400 for a bad kind or id).
    pub fn route(&self, path: &str) -> JsValue {
        let o = Object::new();
        match route(path) {
            Ok(None) => return JsValue::NULL,
            Ok(Some(r)) => {
                let what = match &r {
                    Route::Socket(_) => "socket",
                    Route::State(_) => "state",
                    Route::Durable(_) => "durable",
                };
                set(&o, "room", r.room().to_string());
                set(&o, "what", what);
            }
            Err(e) => {
                set(&o, "reply", reply_object(&HttpReply::bad_address(&e)));
                set(
                    &o,
                    "close",
                    close_object(&Close {
                        code: ykeep_room::close_code::POLICY,
                        reason: format!("{}: {e}", e.code()),
                    }),
                );
            }
        }
        o.into()
    }

    /// A token before the store is asked: `"allow"` (dev mode, or the shared secret), `"ask"`,
    /// or a refusal `{reply, close}`.
    pub fn precheck(&self, token: Option<String>) -> JsValue {
        if self.settings.allow_all {
            return JsValue::from_str("allow");
        }
        match access::precheck(token.as_deref(), Some(&self.settings.secret)) {
            Ok(Precheck::Secret) => JsValue::from_str("allow"),
            Ok(Precheck::AskStore(_)) => JsValue::from_str("ask"),
            Err(e) => refusal(&e).into(),
        }
    }

    /// The token of an `Authorization: Bearer <token>` header.
    pub fn bearer(&self, header: Option<String>) -> Option<String> {
        header
            .as_deref()
            .and_then(ykeep_core::wire::bearer)
            .map(str::to_owned)
    }

    /// The answer to `/state` while the room is not open here.
    #[wasm_bindgen(js_name = notLive)]
    pub fn not_live(&self) -> JsValue {
        reply_object(&HttpReply::not_live()).into()
    }

    /// The verify request for `token` on `room`.
    #[wasm_bindgen(js_name = verifyRequest)]
    pub fn verify_request(&self, token: &str, room: &str) -> Result<JsValue, JsError> {
        Ok(self
            .request(store_http::verify(token, &parse_room(room)?))
            .into())
    }

    /// The store's answer to a verify request: `null` (allowed) or a refusal
    /// `{reply, close, cache}` (`cache`: false while the store could not answer).
    pub fn judge(&self, answer: StoreReply) -> JsValue {
        let verdict = answer.0.verdict();
        match access::judge(verdict) {
            Ok(()) => JsValue::NULL,
            Err(e) => {
                let o = refusal(&e);
                set(&o, "cache", e != access::AuthError::Unavailable);
                o.into()
            }
        }
    }

    /// The load request of a cold start.
    #[wasm_bindgen(js_name = loadRequest)]
    pub fn load_request(&self, room: &str) -> Result<JsValue, JsError> {
        Ok(self
            .request(store_http::load(&parse_room(room)?, None))
            .into())
    }

    /// `/durable` of a room that is not open: from its log.
    #[wasm_bindgen(js_name = durableOfLog)]
    pub fn durable_of_log(&self, room: &str, log: &LogRecords) -> Result<JsValue, JsError> {
        let room = parse_room(room)?;
        let info = DurableInfo::of_records(&log.0, &room);
        Ok(reply_object(&HttpReply::json(200, &info.body())).into())
    }

    /// Cold start: the log merged with the store's answer to [`Host::load_request`].
    pub fn open(
        &self,
        room: &str,
        log: LogRecords,
        store: StoreReply,
        now: f64,
    ) -> Result<PartyRoom, JsError> {
        let name = parse_room(room)?;
        let answer = store.0.loaded();
        let room = Room::open(
            name,
            self.settings.room,
            log.0,
            answer,
            Purpose::Client,
            now as u64,
        );
        Ok(self.party_room(room))
    }

    /// A room rebuilt from its log for connections that stayed open while the object slept
    /// (hibernation): `conns` is `[[conn, [clientId, clock, ...], owed?], ...]`, what each
    /// kept: its awareness and, when it opted in to acknowledgements, `owed` as
    /// [`PartyRoom::owed_of`] gave it.
    pub fn resume(
        &self,
        room: &str,
        log: LogRecords,
        conns: Array,
        now: f64,
    ) -> Result<PartyRoom, JsError> {
        let name = parse_room(room)?;
        let mut kept = Vec::with_capacity(conns.length() as usize);
        for entry in conns.iter() {
            let entry = Array::from(&entry);
            let conn = entry.get(0).as_f64().ok_or_else(|| js_error("conn id"))? as u64;
            let flat: Vec<f64> = Array::from(&entry.get(1))
                .iter()
                .filter_map(|v| v.as_f64())
                .collect();
            let awareness = flat
                .chunks_exact(2)
                .map(|p| (p[0] as u64, p[1] as u32))
                .collect();
            let owed = entry.get(2);
            let owed = (!owed.is_undefined() && !owed.is_null()).then(|| {
                let flat: Vec<f64> = Array::from(&owed)
                    .iter()
                    .filter_map(|v| v.as_f64())
                    .collect();
                Owed::of_unsaved(
                    flat.chunks_exact(2)
                        .map(|p| (p[0] as u64, p[1] as u64))
                        .collect(),
                )
            });
            kept.push(KeptConn {
                conn,
                awareness,
                owed,
            });
        }
        let room = Room::resume(name, self.settings.room, log.0, &kept, now as u64);
        Ok(self.party_room(room))
    }
}

impl Host {
    fn party_room(&self, room: Room) -> PartyRoom {
        PartyRoom {
            room: AssertUnwindSafe(room),
            store_url: self.settings.store_url.clone(),
            max_frame_bytes: self.settings.max_frame_bytes,
            pending: None,
            closes: Vec::new(),
        }
    }

    fn request(&self, request: Request) -> Object {
        request_object(&self.settings.store_url, request)
    }
}

fn request_object(store_url: &str, request: Request) -> Object {
    let o = Object::new();
    set(&o, "method", request.method);
    set(&o, "url", format!("{store_url}{}", request.path));
    let headers = Array::new();
    for (name, value) in &request.headers {
        let pair = Array::of2(&JsValue::from_str(name), &JsValue::from_str(value));
        headers.push(&pair);
    }
    set(&o, "headers", headers);
    if let Some(body) = &request.body {
        set(&o, "body", bytes(body));
    }
    o
}

fn refusal(e: &access::AuthError) -> Object {
    let o = Object::new();
    set(
        &o,
        "reply",
        reply_object(&HttpReply::error(e.status(), e.code(), e.to_string())),
    );
    set(&o, "close", close_object(&e.close()));
    o
}

/// A room's log as the host read it from its storage.
#[wasm_bindgen]
pub struct LogRecords(RoomRecords);

#[wasm_bindgen]
impl LogRecords {
    #[wasm_bindgen(constructor)]
    pub fn new(
        seq: f64,
        saved_seq: f64,
        store_snapshot_id: Option<String>,
        store_marker: Option<Vec<u8>>,
        saved_at: Option<f64>,
    ) -> LogRecords {
        LogRecords(RoomRecords {
            seq: seq as u64,
            saved_seq: saved_seq as u64,
            store_snapshot_id,
            store_marker,
            saved_at: saved_at.map(|t| t as i64),
            records: Vec::new(),
        })
    }

    /// One record, in commit order.
    pub fn push(&mut self, id: f64, format: f64, data: Vec<u8>) {
        self.0.records.push(LogRecord {
            id: id as i64,
            format: format as i64,
            data,
        });
    }
}

enum Reply_ {
    Answer {
        url: String,
        status: u16,
        etag: Option<String>,
        saved_at: Option<String>,
        body: Vec<u8>,
    },
    Unreachable {
        url: String,
        message: String,
    },
}

impl Reply_ {
    /// The answer to a load (a cold start's fetch, a save's fetch, a poll).
    fn loaded(self) -> Result<Option<StoredSnapshot>, StoreError> {
        match self {
            Reply_::Answer {
                url,
                status,
                etag,
                saved_at,
                body,
            } => {
                let answer = Answer {
                    status,
                    etag: etag.as_deref(),
                    saved_at: saved_at.as_deref(),
                    body: &body,
                };
                store_http::load_answer(&url, answer)
            }
            Reply_::Unreachable { url, message } => Err(unreachable(&url, &message)),
        }
    }

    fn receipt(self) -> Result<SaveReceipt, StoreError> {
        match self {
            Reply_::Answer {
                url, status, body, ..
            } => store_http::save_answer(&url, status, &body),
            Reply_::Unreachable { url, message } => Err(unreachable(&url, &message)),
        }
    }

    fn verdict(self) -> Result<store_http::Verdict, StoreError> {
        match self {
            Reply_::Answer {
                url, status, body, ..
            } => store_http::verify_answer(&url, status, &body),
            Reply_::Unreachable { url, message } => Err(unreachable(&url, &message)),
        }
    }
}

fn unreachable(url: &str, message: &str) -> StoreError {
    StoreError::Unreachable(format!("{url}: {message}"))
}

/// What the store answered one request (or why it did not).
#[wasm_bindgen]
pub struct StoreReply(Reply_);

#[wasm_bindgen]
impl StoreReply {
    pub fn answer(
        url: String,
        status: u16,
        etag: Option<String>,
        saved_at: Option<String>,
        body: Vec<u8>,
    ) -> StoreReply {
        StoreReply(Reply_::Answer {
            url,
            status,
            etag,
            saved_at,
            body,
        })
    }

    /// No answer: the network failed or the request timed out.
    pub fn unreachable(url: String, message: String) -> StoreReply {
        StoreReply(Reply_::Unreachable { url, message })
    }
}

/// The store request in flight: the answer is read by its kind.
enum Pending {
    Fetch,
    Save,
    Poll,
}

/// One room, driven by the host: events in, then [`PartyRoom::flush`].
#[wasm_bindgen]
pub struct PartyRoom {
    /// Asserted unwind-safe: a panic the room's guards did not catch reaches the host as an
    /// exception, and the host drops the room (`#trapped` in party/src/index.ts).
    room: AssertUnwindSafe<Room>,
    store_url: String,
    max_frame_bytes: usize,
    pending: Option<Pending>,
    /// Closes decided by the host's own limits, sent before anything else of the step.
    closes: Vec<(u64, Close)>,
}

#[wasm_bindgen]
impl PartyRoom {
    pub fn join(&mut self, conn: f64, now: f64) {
        self.room
            .handle(Event::Join { conn: conn as u64 }, now as u64);
    }

    /// The connection asked for acknowledgements in its URL (`?ykeep=acks`).
    #[wasm_bindgen(js_name = optIn)]
    pub fn opt_in(&mut self, conn: f64, now: f64) {
        self.room
            .handle(Event::OptIn { conn: conn as u64 }, now as u64);
    }

    pub fn leave(&mut self, conn: f64, now: f64) {
        self.room
            .handle(Event::Leave { conn: conn as u64 }, now as u64);
    }

    /// One WebSocket message. Returns what `conn` now owns in awareness (`[clientId, clock,
    /// ...]`) when the message was an awareness update: the host keeps it with the connection.
    pub fn frame(&mut self, conn: f64, data: Vec<u8>, now: f64) -> Option<Vec<f64>> {
        let conn = conn as u64;
        if data.len() > self.max_frame_bytes {
            tracing::warn!(room = %self.room.name(), conn, bytes = data.len(),
                "frame over the limit; closing (1009)");
            let reason = format!(
                "message of {} bytes is over the {}-byte limit",
                data.len(),
                self.max_frame_bytes
            );
            self.closes.push((conn, Close { code: 1009, reason }));
            self.room.handle(Event::Leave { conn }, now as u64);
            return None;
        }
        let awareness = data.first() == Some(&protocol::MSG_AWARENESS);
        self.room.handle(
            Event::Frame {
                conn,
                data: Bytes::from(data),
            },
            now as u64,
        );
        awareness.then(|| self.awareness_of(conn as f64))
    }

    /// `GET /state`: `null` when queued (the reply comes as an effect), or an error reply.
    /// `if_none_match` is the request's header: a state tag in it may get a `304`.
    #[wasm_bindgen(js_name = stateQuery)]
    pub fn state_query(
        &mut self,
        query: f64,
        sv: Option<String>,
        if_none_match: Option<String>,
        now: f64,
    ) -> JsValue {
        let sv = match sv.as_deref() {
            None => None,
            Some(text) => match b64::decode(text) {
                Ok(sv) if protocol::plausible_count(&sv) => Some(sv),
                Ok(_) => {
                    let reply = HttpReply::bad_state_vector("declares more entries than it holds");
                    return reply_object(&reply).into();
                }
                Err(e) => return reply_object(&HttpReply::bad_state_vector(&e.to_string())).into(),
            },
        };
        let query = query as u64;
        let unless = if_none_match
            .as_deref()
            .and_then(StateTag::from_if_none_match);
        self.room
            .handle(Event::StateQuery { query, sv, unless }, now as u64);
        JsValue::NULL
    }

    #[wasm_bindgen(js_name = durableQuery)]
    pub fn durable_query(&mut self, query: f64, now: f64) {
        let query = query as u64;
        self.room.handle(Event::DurableQuery { query }, now as u64);
    }

    /// The store's answer to the request in flight.
    pub fn answer(&mut self, reply: StoreReply, now: f64) {
        let Some(pending) = self.pending.take() else {
            return tracing::error!(room = %self.room.name(), "a store answer with no request in flight; ignored");
        };
        let event = match pending {
            Pending::Fetch => Event::Fetched(reply.0.loaded()),
            Pending::Poll => Event::Polled(reply.0.loaded()),
            Pending::Save => Event::Saved(reply.0.receipt()),
        };
        self.room.handle(event, now as u64);
    }

    /// Ends the batch: `{append?, compact?, effects}`. Write `append` (then `compact`) to the
    /// log first; the effects may leave only once that write is durable.
    pub fn flush(&mut self, now: f64) -> JsValue {
        let step = self.room.flush(now as u64);
        let out = Object::new();
        if let Some(append) = &step.append {
            let a = Object::new();
            set(&a, "seq", append.seq as f64);
            set(&a, "format", append.format as f64);
            set(&a, "data", bytes(&append.data));
            set(&out, "append", a);
        }
        if let Some(saved) = &step.compact {
            let c = Object::new();
            set(&c, "savedSeq", saved.saved_seq as f64);
            set(&c, "snapshotId", saved.store_snapshot_id.as_str());
            set(&c, "marker", bytes(&saved.store_marker));
            set(&c, "savedAt", saved.saved_at as f64);
            set(&c, "compacted", bytes(&saved.compacted));
            let keep: Array = saved
                .keep
                .iter()
                .map(|id| JsValue::from(*id as f64))
                .collect();
            set(&c, "keep", keep);
            set(&out, "compact", c);
        }
        let effects = Array::new();
        for (conn, close) in std::mem::take(&mut self.closes) {
            effects.push(&close_effect(conn, &close));
        }
        for effect in step.durable() {
            if let Some(e) = self.effect(effect) {
                effects.push(&e);
            }
        }
        set(&out, "effects", effects);
        out.into()
    }

    /// The log's append failed: every client is closed with 1011, and the room is dropped.
    #[wasm_bindgen(js_name = logFailed)]
    pub fn log_failed(&mut self) -> Array {
        let effects = Array::new();
        for effect in self.room.log_failed() {
            if let Some(e) = self.effect(effect) {
                effects.push(&e);
            }
        }
        effects
    }

    /// When to flush again with no event (milliseconds, the clock of `now`).
    #[wasm_bindgen(js_name = nextDeadline)]
    pub fn next_deadline(&self) -> Option<f64> {
        self.room.next_deadline().map(|t| t as f64)
    }

    /// What `conn` owns in awareness: `[clientId, clock, ...]`.
    #[wasm_bindgen(js_name = awarenessOf)]
    pub fn awareness_of(&self, conn: f64) -> Vec<f64> {
        self.room
            .awareness_of(conn as u64)
            .into_iter()
            .flat_map(|(client, clock)| [client as f64, clock as f64])
            .collect()
    }

    /// What `conn` is owed in acknowledgements, `[seq, mark, ...]` (undefined: it did not
    /// opt in): the host keeps it with the connection across hibernation.
    #[wasm_bindgen(js_name = owedOf)]
    pub fn owed_of(&self, conn: f64) -> Option<Vec<f64>> {
        let owed = self.room.owed(conn as u64)?;
        Some(
            owed.unsaved()
                .iter()
                .flat_map(|(seq, mark)| [*seq as f64, *mark as f64])
                .collect(),
        )
    }

    /// The log holds records no save has covered yet.
    #[wasm_bindgen(getter)]
    pub fn unsaved(&self) -> bool {
        self.room.unsaved()
    }
}

fn close_effect(conn: u64, close: &Close) -> Object {
    let o = close_object(close);
    set(&o, "t", "close");
    set(&o, "conn", conn as f64);
    o
}

impl PartyRoom {
    fn effect(&mut self, effect: Effect) -> Option<Object> {
        let o = Object::new();
        match effect {
            Effect::Deliver { to, frame } => {
                set(&o, "t", "send");
                match to {
                    Target::One(c) => set(&o, "to", c as f64),
                    Target::AllBut(c) => set(&o, "except", c as f64),
                    Target::All => {}
                }
                let (OutFrame::Update { frame, .. } | OutFrame::Other(frame)) = frame;
                set(&o, "data", bytes(&frame));
            }
            Effect::Close { conn, close } => return Some(close_effect(conn, &close)),
            Effect::Reply { query, reply } => {
                let http = match *reply {
                    Reply::State(Ok(update)) => HttpReply::bytes(update),
                    Reply::Unchanged(tag) => HttpReply::not_modified(&tag),
                    Reply::State(Err(e)) => HttpReply::bad_state_vector(&e.to_string()),
                    Reply::Durable(info) => HttpReply::json(200, &info.body()),
                    Reply::Ended => HttpReply::not_live(),
                };
                set(&o, "t", "reply");
                set(&o, "query", query as f64);
                set(&o, "reply", reply_object(&http));
            }
            Effect::Fetch => return Some(self.store_request(Pending::Fetch, None)),
            Effect::Save {
                state,
                precondition,
            } => {
                let request = store_http::save(self.room.name(), state.to_vec(), &precondition);
                return Some(self.store_request(Pending::Save, Some(request)));
            }
            Effect::Poll { known } => {
                let request = store_http::load(self.room.name(), Some(&known));
                return Some(self.store_request(Pending::Poll, Some(request)));
            }
            Effect::Quarantine { reason } => {
                set(&o, "t", "quarantine");
                set(&o, "reason", reason);
            }
            Effect::Flushed => return None, // a Durable Object gets no shutdown event
            Effect::Unload => set(&o, "t", "unload"),
        }
        Some(o)
    }

    fn store_request(&mut self, kind: Pending, request: Option<Request>) -> Object {
        let request = request.unwrap_or_else(|| store_http::load(self.room.name(), None));
        self.pending = Some(kind);
        let o = request_object(&self.store_url, request);
        set(&o, "t", "store");
        o
    }
}
