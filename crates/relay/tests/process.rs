//! The real `ykeep-relay` binary: start-up line, kill -9 at any moment, recovery, SIGTERM.

mod common;
#[path = "common/fake_store.rs"]
mod fake_store;
#[path = "common/front.rs"]
mod front;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::*;
use fake_store::{FakeStore, SECRET};
use front::{Front, HTML_404, fixed, forward};
use ykeep_core::{DurabilityMarker, RoomName};
use yrs::{ReadTxn, StateVector, Transact};

struct Proc {
    child: Child,
    addr: String,
}

impl Proc {
    fn start(data: &std::path::Path, store_url: &str, extra: &[&str]) -> Proc {
        let child = Command::new(env!("CARGO_BIN_EXE_ykeep-relay"))
            .args(["relay", "--listen", "127.0.0.1:0", "--store-url", store_url])
            .args(["--secret", SECRET, "--dev-allow-all", "--data-dir"])
            .arg(data)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start ykeep-relay");
        Proc::listening(child)
    }

    /// The embedded store alone (`ykeep-relay store`), with the test secret.
    fn store(data: &std::path::Path) -> Proc {
        let child = Command::new(env!("CARGO_BIN_EXE_ykeep-relay"))
            .args(["store", "--listen", "127.0.0.1:0", "--secret", SECRET])
            .args(["--token-key", "test-token-key", "--data-dir"])
            .arg(data)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start ykeep-relay store");
        Proc::listening(child)
    }

    fn listening(mut child: Child) -> Proc {
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

    fn http(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// One counter of the relay's `/metrics`.
    async fn metric(&self, name: &str) -> u64 {
        let text = reqwest::get(self.http("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("ykeep_{name} ")))
            .unwrap_or_else(|| panic!("no metric {name}"))
            .parse()
            .unwrap()
    }

    async fn wait_metric(&self, name: &str, value: u64) {
        for _ in 0..3000 {
            if self.metric(name).await >= value {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("timed out waiting for metric {name} >= {value}");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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

/// The relay's start-up check against `url`: the exit and what it printed, or None when it
/// started serving (it is killed then).
fn start_up(url: &str, secret: &str) -> Option<(std::process::ExitStatus, String)> {
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ykeep-relay"))
        .args(["relay", "--listen", "127.0.0.1:0", "--store-url", url])
        .args([
            "--secret",
            secret,
            "--dev-allow-all",
            "--store-timeout-ms",
            "2000",
        ])
        .arg("--data-dir")
        .arg(data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ykeep-relay");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    if line.starts_with("ykeep-relay listening on") {
        child.kill().unwrap();
        child.wait().unwrap();
        return None;
    }
    let out = child.wait_with_output().unwrap();
    Some((
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_refuses_to_start_on_a_wrong_url_secret_or_non_store_and_says_why() {
    let store = FakeStore::start().await;
    let page = Front::start(|_| fixed(404, "text/html", HTML_404)).await;
    let not_a_store = Front::start(|_| fixed(200, "text/html", "<html>welcome</html>")).await;
    let other_version = Front::start(|_| {
        fixed(
            200,
            "application/json",
            r#"{"contract": 2, "store": "future"}"#,
        )
    })
    .await;
    let cases = [
        (page.url.clone(), SECRET, "404"),
        (format!("{}/wrong/prefix", store.url), SECRET, "404"),
        (
            store.url.clone(),
            "wrong-secret",
            "refused the shared secret",
        ),
        (not_a_store.url.clone(), SECRET, "not a ykeep store"),
        (other_version.url.clone(), SECRET, "speaks store contract 2"),
    ];
    for (url, secret, says) in cases {
        let (status, stderr) = tokio::task::spawn_blocking({
            let url = url.clone();
            move || start_up(&url, secret)
        })
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("the relay started against {url}"));
        assert!(!status.success(), "{url}");
        assert!(stderr.contains("refusing to start"), "{url}: {stderr}");
        assert!(stderr.contains(&url), "names the URL {url}: {stderr}");
        assert!(stderr.contains(says), "{url}: says {says:?}: {stderr}");
    }
    // The right URL and secret start; so does a store that is only unreachable.
    let ok = store.url.clone();
    assert!(
        tokio::task::spawn_blocking(move || start_up(&ok, SECRET))
            .await
            .unwrap()
            .is_none()
    );
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let down = tokio::task::spawn_blocking(move || start_up(&closed, SECRET))
        .await
        .unwrap();
    assert!(
        down.is_none(),
        "an unreachable store is only a warning: {down:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_front_that_answers_404_pages_after_the_check_loses_nothing_across_restarts() {
    let store_data = tempfile::tempdir().unwrap();
    let store = Proc::store(store_data.path());
    let store_url = format!("http://{}", store.addr);
    let http = reqwest::Client::new();
    let created = http
        .post(format!("{store_url}/resources/document"))
        .bearer_auth(SECRET)
        .json(&serde_json::json!({"id": "behind-a-proxy"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    // Passes the start-up check through to the real store, then answers every snapshot
    // request with the 404 page of a misconfigured proxy.
    let upstream = store_url.clone();
    let front = Front::start(move |seen| {
        if seen.path.starts_with("/snapshots/") {
            fixed(404, "text/html", HTML_404)
        } else {
            forward(&upstream, seen)
        }
    })
    .await;
    let data = tempfile::tempdir().unwrap();
    let fast_save = ["--save-debounce-ms", "300", "--save-interval-ms", "600000"];
    let text = "edited behind a misconfigured proxy";
    let url = "/rooms/document/behind-a-proxy";

    let relay = Proc::start(data.path(), &front.url, &fast_save);
    let mut a = Client::connect(&relay.ws(url), 1).await;
    a.insert(0, text).await;
    relay.wait_metric("updates_total", 1).await;
    a.close().await;
    relay.wait_metric("saves_refused_total", 1).await;
    assert_eq!(relay.metric("rooms_quarantined_total").await, 0);
    relay.kill9();

    // Restarted against the same front: the edits are still there.
    let relay = Proc::start(data.path(), &front.url, &fast_save);
    let mut b = Client::connect(&relay.ws(url), 2).await;
    b.wait_synced().await;
    assert_eq!(b.text(), text);
    b.close().await;
    relay.kill9();

    // Restarted against the real store: recovery saves them there.
    let _relay = Proc::start(data.path(), &store_url, &QUIET);
    let snapshot_url = format!("{store_url}/snapshots/document/behind-a-proxy");
    let mut saved = None;
    for _ in 0..3000 {
        let resp = http
            .get(&snapshot_url)
            .bearer_auth(SECRET)
            .send()
            .await
            .unwrap();
        if resp.status() == 200 {
            saved = Some(resp.bytes().await.unwrap().to_vec());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let saved = saved.expect("the recovery save reached the store");
    assert_eq!(text_of_update(&saved), text);
}
