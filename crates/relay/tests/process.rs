//! The real `ykeep-relay` binary: start-up line, kill -9 at any moment, recovery, SIGTERM.

mod common;
#[path = "common/fake_store.rs"]
mod fake_store;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::*;
use fake_store::{FakeStore, SECRET};
use ykeep_core::{DurabilityMarker, RoomName};
use yrs::{ReadTxn, StateVector, Transact};

struct Proc {
    child: Child,
    addr: String,
}

impl Proc {
    fn start(data: &std::path::Path, store_url: &str, extra: &[&str]) -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ykeep-relay"))
            .args(["relay", "--listen", "127.0.0.1:0", "--store-url", store_url])
            .args(["--secret", SECRET, "--dev-allow-all", "--data-dir"])
            .arg(data)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start ykeep-relay");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("ykeep-relay listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Proc { child, addr }
    }

    fn ws(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    fn kill9(mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const QUIET: [&str; 4] = [
    "--save-debounce-ms",
    "600000",
    "--save-interval-ms",
    "600000",
];

#[tokio::test]
async fn kill_9_with_dirty_rooms_then_restart_saves_them_without_any_client() {
    let store = FakeStore::start().await;
    let data = tempfile::tempdir().unwrap();
    let relay = Proc::start(data.path(), &store.url, &QUIET);
    let kinds = ["document", "diagram", "task"];
    for (i, kind) in kinds.iter().enumerate() {
        let url = relay.ws(&format!("/rooms/{kind}/crash"));
        let mut a = Client::connect(&url, 10 + i as u64).await;
        let mut b = Client::connect(&url, 20 + i as u64).await;
        a.insert(0, &format!("dirty {kind}")).await;
        // b saw it, so it was committed before it was forwarded.
        b.wait_text(&format!("dirty {kind}")).await;
    }
    relay.kill9();
    assert_eq!(store.store.saves(), 0);
    let _relay = Proc::start(data.path(), &store.url, &QUIET);
    for kind in kinds {
        let room = RoomName::from_parts(kind, "crash").unwrap();
        wait_for("recovery save", || store.store.snapshot(&room).is_some()).await;
        let text = text_of_update(&store.store.snapshot(&room).unwrap().bytes);
        assert_eq!(text, format!("dirty {kind}"));
    }
}

#[tokio::test]
async fn kill_9_mid_stream_keeps_every_update_a_client_saw() {
    let store = FakeStore::start().await;
    let data = tempfile::tempdir().unwrap();
    let relay = Proc::start(data.path(), &store.url, &QUIET);
    let url = relay.ws("/rooms/document/stream");
    let mut writer = Client::connect(&url, 1).await;
    let mut reader = Client::connect(&url, 2).await;
    writer.wait_synced().await;
    reader.wait_synced().await;
    let send = tokio::spawn(async move {
        for i in 0..20_000u32 {
            writer.insert(i, "s").await;
        }
        writer
    });
    // Read until the reader has seen a good part of the stream, then kill the relay while
    // the writer is still sending.
    while reader.text().len() < 3_000 {
        assert!(reader.pump().await);
    }
    relay.kill9();
    while reader.pump().await {}
    let _ = send.await;
    let seen = DurabilityMarker::of_txn(&reader.doc.transact());
    let seen_len = reader.text().len();
    assert!(seen_len >= 3_000);

    let relay = Proc::start(data.path(), &store.url, &QUIET);
    let mut after = Client::connect(&relay.ws("/rooms/document/stream"), 3).await;
    after.wait_synced().await;
    let state = after
        .doc
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    let marker = DurabilityMarker::of_update(&state).unwrap();
    assert!(marker.covers(&seen), "an update the reader saw was lost");
    assert!(after.text().len() >= seen_len);
}

#[tokio::test]
async fn sigterm_flushes_dirty_rooms_then_exits() {
    let store = FakeStore::start().await;
    let data = tempfile::tempdir().unwrap();
    let mut relay = Proc::start(data.path(), &store.url, &QUIET);
    let url = relay.ws("/rooms/diagram/term");
    let mut a = Client::connect(&url, 1).await;
    let mut b = Client::connect(&url, 2).await;
    a.insert(0, "flush me").await;
    b.wait_text("flush me").await;
    let pid = relay.child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || relay.child.wait().unwrap())
        .await
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    let room = RoomName::from_parts("diagram", "term").unwrap();
    let saved = store.store.snapshot(&room).expect("saved before exit");
    assert_eq!(text_of_update(&saved.bytes), "flush me");
}
