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
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("ykeep-relay listening on http://")
        .unwrap()
        .to_owned();
    Serve { child, addr }
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
