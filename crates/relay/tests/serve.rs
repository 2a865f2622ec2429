//! `ykeep-relay serve` (relay + embedded store on one port) and `token`, as real processes.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::*;

struct Serve {
    child: Child,
    addr: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(data: &std::path::Path, args: &[&str]) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ykeep-relay"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--save-debounce-ms",
            "200",
            "--data-dir",
        ])
        .arg(data)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let addr = listening_addr(&mut child);
    Serve { child, addr }
}

/// The address a started `ykeep-relay` prints on its first stdout line.
fn listening_addr(child: &mut std::process::Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.trim()
        .strip_prefix("ykeep-relay listening on http://")
        .unwrap()
        .to_owned()
}

fn token(kind: &str, id: &str, key: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ykeep-relay"))
        .args([
            "token",
            "--kind",
            kind,
            "--id",
            id,
            "--sub",
            "alice",
            "--token-key",
            key,
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn serve_demo_saves_to_the_embedded_store_on_the_same_port() {
    let data = tempfile::tempdir().unwrap();
    let s = serve(data.path(), &["--demo", "--secret", "demo-secret"]);
    let mut a = Client::connect(&format!("ws://{}/rooms/document/demo1", s.addr), 1).await;
    a.insert(0, "saved by serve").await;
    a.wait_synced().await;
    a.close().await;
    let http = reqwest::Client::new();
    let url = format!("http://{}/snapshots/document/demo1", s.addr);
    let mut body = None;
    for _ in 0..500 {
        let resp = http
            .get(&url)
            .bearer_auth("demo-secret")
            .send()
            .await
            .unwrap();
        if resp.status() == 200 {
            body = Some(resp.bytes().await.unwrap());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let body = body.expect("the room was saved to the embedded store");
    assert_eq!(text_of_update(&body), "saved by serve");
    assert!(data.path().join("relay").is_dir() && data.path().join("store").is_dir());
}

#[tokio::test]
async fn serve_checks_user_tokens_through_the_store() {
    let data = tempfile::tempdir().unwrap();
    let key = "token-key-for-tests";
    let s = serve(
        data.path(),
        &["--secret", "s3", "--token-key", key, "--auto-create"],
    );
    let good = token("document", "t1", key);
    let mut a = Client::connect(
        &format!("ws://{}/rooms/document/t1?token={good}", s.addr),
        1,
    )
    .await;
    a.insert(0, "ok").await;
    a.wait_synced().await;
    for (path, reason) in [
        (
            format!(
                "/rooms/document/t1?token={}",
                token("document", "t1", "wrong-key")
            ),
            "unauthorized",
        ),
        (format!("/rooms/document/t2?token={good}"), "forbidden"),
        ("/rooms/document/t1".to_owned(), "unauthorized"),
    ] {
        let mut c = Client::connect(&format!("ws://{}{path}", s.addr), 2).await;
        let (code, text) = c.wait_closed().await;
        assert_eq!(code, 1008, "{path}");
        assert!(text.starts_with(reason), "{path}: {text}");
    }
    let http = reqwest::Client::new();
    let state = http
        .get(format!("http://{}/rooms/document/t1/state", s.addr))
        .bearer_auth(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(state.status(), 200);
    assert_eq!(text_of_update(&state.bytes().await.unwrap()), "ok");
}

/// `serve` saves to its store in process: the shutdown flush runs after the listener has
/// closed, and the room still reaches the store (no save timer could have saved it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_flushes_to_its_store_on_sigterm_after_the_listener_closed() {
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ykeep-relay"))
        .args(["serve", "--listen", "127.0.0.1:0", "--secret", "s4"])
        .args(["--dev-allow-all", "--auto-create"])
        .args([
            "--save-debounce-ms",
            "600000",
            "--save-interval-ms",
            "600000",
        ])
        .arg("--data-dir")
        .arg(data.path())
        .env("NO_COLOR", "1")
        .env("YKEEP_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = listening_addr(&mut child);
    let url = format!("ws://{addr}/rooms/document/flushed");
    let mut a = Client::connect(&url, 1).await;
    let mut b = Client::connect(&url, 2).await;
    a.insert(0, "flushed in process").await;
    // Forwarded means committed to the relay's log.
    b.wait_text("flushed in process").await;

    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}\n{log}", out.status);
    let closed = log
        .find("listener closed")
        .unwrap_or_else(|| panic!("no `listener closed` line:\n{log}"));
    let saved = log
        .match_indices("saved")
        .find(|(at, _)| {
            log[*at..]
                .lines()
                .next()
                .unwrap()
                .contains("document/flushed")
        })
        .map(|(at, _)| at)
        .unwrap_or_else(|| panic!("the room was not saved:\n{log}"));
    assert!(
        closed < saved,
        "the room saved before the listener closed:\n{log}"
    );

    let store = ykeep_store::EmbeddedStore::open(ykeep_store::StoreConfig {
        data_dir: data.path().join("store"),
        secret: "s4".into(),
        token_key: "unused".into(),
        auto_create: false,
        max_snapshot_bytes: ykeep_store::StoreConfig::DEFAULT_MAX_SNAPSHOT_BYTES,
    })
    .await
    .unwrap();
    let snapshot = store
        .load(
            ykeep_core::ResourceKind::Document,
            ykeep_core::ResourceId::parse("flushed").unwrap(),
        )
        .await
        .expect("the flush saved the room to the embedded store");
    assert_eq!(text_of_update(&snapshot.bytes), "flushed in process");
}
