//! Helpers for the relay's end-to-end tests: an in-process relay on 127.0.0.1:0 and raw
//! y-sync clients over tokio-tungstenite that keep a yrs doc.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};
use ykeep_relay::Relay;
use ykeep_relay::config::Config;
use ykeep_relay::protocol::{self, Frame};
use ykeep_relay::store_client::SnapshotStore;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, GetString, ReadTxn, StateVector, Text, Transact, Update};

pub struct TestRelay {
    pub addr: SocketAddr,
    pub relay: Relay,
    server: tokio::task::JoinHandle<()>,
}

impl TestRelay {
    pub async fn start(config: Config, store: Arc<dyn SnapshotStore>) -> TestRelay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let relay = Relay::open(config, store).await.unwrap();
        let app = relay.router();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        TestRelay {
            addr,
            relay,
            server,
        }
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn metric(&self, name: &str) -> u64 {
        let text = self.relay.shared().metrics.render();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("ykeep_{name} ")))
            .unwrap_or_else(|| panic!("no metric {name}"))
            .parse()
            .unwrap()
    }

    /// Waits until the metric reaches `value` (polls the in-process counters).
    pub async fn wait_metric(&self, name: &str, value: u64) {
        wait_for(&format!("metric {name} >= {value}"), || {
            self.metric(name) >= value
        })
        .await;
    }

    pub async fn stop(self) {
        self.server.abort();
    }
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Polls `cond` until it holds; fails after a generous bound (a hang guard, not a timing
/// assertion).
pub async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..3000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

pub fn config(dir: &std::path::Path) -> Config {
    let mut c = Config::for_tests(dir.to_path_buf());
    c.dev_allow_all = true;
    c.save_debounce_ms = 300;
    c.save_interval_ms = 60_000;
    c.store_timeout_ms = 2_000;
    c
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A raw y-sync client with its own doc, text root `t`.
pub struct Client {
    pub ws: Ws,
    pub doc: Doc,
    pub synced: bool,
    pub closed: Option<(u16, String)>,
    /// The ykeep messages the relay sent (`ykeep_core::acks`), in order.
    pub acks: Vec<ykeep_core::acks::Message>,
    /// Frames of a type y-websocket does not know (0-3): a stock client must never get one.
    pub unknown_frames: usize,
}

impl Client {
    pub async fn connect(url: &str, client_id: u64) -> Client {
        let (ws, _) = connect_async(url).await.expect("connect");
        let doc = Doc::with_client_id(client_id);
        let mut c = Client {
            ws,
            doc,
            synced: false,
            closed: None,
            acks: Vec::new(),
            unknown_frames: 0,
        };
        let sv = c.doc.transact().state_vector().encode_v1();
        c.send_raw(protocol::encode_step1(&sv)).await;
        c
    }

    pub async fn send_raw(&mut self, frame: Vec<u8>) {
        self.ws
            .send(Message::Binary(frame.into()))
            .await
            .expect("send");
    }

    /// Local edit: insert at `index` and send the update.
    pub async fn insert(&mut self, index: u32, text: &str) {
        let update = {
            let t = self.doc.get_or_insert_text("t");
            let mut txn = self.doc.transact_mut();
            t.insert(&mut txn, index, text);
            txn.encode_update_v1()
        };
        self.send_raw(protocol::encode_update(&update)).await;
    }

    pub async fn delete(&mut self, index: u32, len: u32) {
        let update = {
            let t = self.doc.get_or_insert_text("t");
            let mut txn = self.doc.transact_mut();
            t.remove_range(&mut txn, index, len);
            txn.encode_update_v1()
        };
        self.send_raw(protocol::encode_update(&update)).await;
    }

    pub fn text(&self) -> String {
        let t = self.doc.get_or_insert_text("t");
        t.get_string(&self.doc.transact())
    }

    /// Handles one incoming message; false when the socket ended.
    pub async fn pump(&mut self) -> bool {
        let Some(msg) = self.ws.next().await else {
            return false;
        };
        match msg {
            Ok(Message::Binary(data)) => {
                self.handle(&data).await;
                true
            }
            Ok(Message::Close(frame)) => {
                self.closed = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                if self.closed.is_none() {
                    self.closed = Some((1005, String::new()));
                }
                false
            }
            Ok(_) => true,
            Err(_) => false,
        }
    }

    async fn handle(&mut self, data: &[u8]) {
        match protocol::parse(data).expect("relay sent a malformed frame") {
            Frame::SyncStep1 { sv } => {
                let sv = StateVector::decode_v1(&data[sv]).unwrap();
                let update = self.doc.transact().encode_state_as_update_v1(&sv);
                self.send_raw(protocol::encode_step2(&update)).await;
            }
            Frame::SyncStep2 { update } => {
                self.apply(&data[update]);
                self.synced = true;
            }
            Frame::Update { update, .. } => self.apply(&data[update]),
            Frame::Ykeep => {
                self.unknown_frames += 1;
                match ykeep_core::acks::decode(data) {
                    Ok(ykeep_core::acks::Decoded::Message(m)) => self.acks.push(m),
                    other => panic!("relay sent a bad ykeep message: {other:?}"),
                }
            }
            Frame::Unknown(_) => self.unknown_frames += 1,
            _ => {}
        }
    }

    fn apply(&mut self, update: &[u8]) {
        let u = Update::decode_v1(update).unwrap();
        self.doc.transact_mut().apply_update(u).unwrap();
    }

    /// Pumps until the text equals `expected` (fails if the socket ends first).
    pub async fn wait_text(&mut self, expected: &str) {
        let fut = async {
            while self.text() != expected {
                assert!(
                    self.pump().await,
                    "socket ended before the text was {expected:?} (now {:?})",
                    self.text()
                );
            }
        };
        tokio::time::timeout(Duration::from_secs(60), fut)
            .await
            .expect("hang guard: wait_text");
    }

    pub async fn wait_synced(&mut self) {
        let fut = async {
            while !self.synced {
                assert!(
                    self.pump().await,
                    "socket ended before sync: {:?}",
                    self.closed
                );
            }
        };
        tokio::time::timeout(Duration::from_secs(30), fut)
            .await
            .expect("hang guard: wait_synced");
    }

    /// Pumps until the relay has sent the ykeep message `ack`.
    pub async fn wait_ack(&mut self, ack: ykeep_core::acks::Message) {
        let fut = async {
            while !self.acks.contains(&ack) {
                assert!(
                    self.pump().await,
                    "socket ended before {ack} (got {:?})",
                    self.acks
                );
            }
        };
        tokio::time::timeout(Duration::from_secs(30), fut)
            .await
            .expect("hang guard: wait_ack");
    }

    /// Pumps until the relay closes the socket; returns the close code and reason.
    pub async fn wait_closed(&mut self) -> (u16, String) {
        let fut = async { while self.pump().await {} };
        tokio::time::timeout(Duration::from_secs(30), fut)
            .await
            .expect("hang guard: wait_closed");
        self.closed.clone().unwrap_or((1006, String::new()))
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
        // Drain (without answering) until the relay answers the close.
        let drain = async { while let Some(Ok(_)) = self.ws.next().await {} };
        let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
    }
}

/// The text `t` of a Yjs v1 update.
pub fn text_of_update(update: &[u8]) -> String {
    let doc = Doc::new();
    doc.transact_mut()
        .apply_update(Update::decode_v1(update).unwrap())
        .unwrap();
    let t = doc.get_or_insert_text("t");
    t.get_string(&doc.transact())
}

/// A full-state update of a fresh doc whose `t` holds `text`.
pub fn update_with_text(client: u64, text: &str) -> Vec<u8> {
    let doc = Doc::with_client_id(client);
    let t = doc.get_or_insert_text("t");
    t.insert(&mut doc.transact_mut(), 0, text);
    doc.transact()
        .encode_state_as_update_v1(&StateVector::default())
}

/// A store whose saves can be held at a gate (to edit while a save is in flight).
pub struct GatedStore {
    pub inner: ykeep_relay::store_client::MemoryStore,
    pub gate: tokio::sync::Semaphore,
    pub started: std::sync::atomic::AtomicU64,
}

impl GatedStore {
    pub fn new() -> Self {
        GatedStore {
            inner: ykeep_relay::store_client::MemoryStore::new(),
            gate: tokio::sync::Semaphore::new(0),
            started: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub fn started(&self) -> u64 {
        self.started.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl ykeep_relay::store_client::SnapshotStore for GatedStore {
    fn load<'a>(
        &'a self,
        room: &'a ykeep_core::RoomName,
    ) -> futures_util::future::BoxFuture<
        'a,
        Result<
            Option<ykeep_relay::store_client::StoredSnapshot>,
            ykeep_relay::store_client::StoreError,
        >,
    > {
        self.inner.load(room)
    }

    fn save<'a>(
        &'a self,
        room: &'a ykeep_core::RoomName,
        state: Vec<u8>,
        precondition: ykeep_relay::store_client::Precondition,
    ) -> futures_util::future::BoxFuture<
        'a,
        Result<ykeep_relay::store_client::SaveReceipt, ykeep_relay::store_client::StoreError>,
    > {
        use futures_util::FutureExt;
        async move {
            self.started
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.gate.acquire().await.unwrap().forget();
            self.inner.save(room, state, precondition).await
        }
        .boxed()
    }

    fn verify<'a>(
        &'a self,
        token: &'a str,
        room: &'a ykeep_core::RoomName,
    ) -> futures_util::future::BoxFuture<
        'a,
        Result<ykeep_relay::store_client::Verdict, ykeep_relay::store_client::StoreError>,
    > {
        self.inner.verify(token, room)
    }
}
