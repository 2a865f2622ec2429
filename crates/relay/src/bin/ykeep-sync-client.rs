//! A minimal Rust y-sync client (yrs + tokio-tungstenite), used by the JS interop test to put a
//! Rust peer in the same room as y-websocket and y-partykit clients.
//!
//! `ykeep-sync-client <ws-url> <text-to-append> [<expected-substring>...]`: syncs, appends the
//! text to the root `Y.Text` named `t`, waits until the text contains every expected substring,
//! prints the text and exits 0 (1 after 30 s without convergence).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use ykeep_relay::protocol::{self, Frame};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, GetString, ReadTxn, StateVector, Text, Transact, Update};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, append, expected @ ..] = args.as_slice() else {
        eprintln!("usage: ykeep-sync-client <ws-url> <text-to-append> [<expected>...]");
        return std::process::ExitCode::from(2);
    };
    match tokio::time::timeout(Duration::from_secs(30), run(url, append, expected)).await {
        Ok(Ok(text)) => {
            println!("{text}");
            std::process::ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("ykeep-sync-client: {e}");
            std::process::ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("ykeep-sync-client: no convergence within 30 s");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(url: &str, append: &str, expected: &[String]) -> Result<String, String> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|e| e.to_string())?;
    let doc = Doc::new();
    let text = doc.get_or_insert_text("t");
    let sv = doc.transact().state_vector().encode_v1();
    send(&mut ws, protocol::encode_step1(&sv)).await?;
    let mut appended = false;
    loop {
        let current = text.get_string(&doc.transact());
        if appended && expected.iter().all(|e| current.contains(e.as_str())) {
            let _ = ws.close(None).await;
            return Ok(current);
        }
        let msg = ws
            .next()
            .await
            .ok_or("socket ended")?
            .map_err(|e| e.to_string())?;
        let Message::Binary(data) = msg else { continue };
        match protocol::parse(&data).map_err(|e| e.to_string())? {
            Frame::SyncStep1 { sv } => {
                let sv = StateVector::decode_v1(&data[sv]).map_err(|e| e.to_string())?;
                let update = doc.transact().encode_state_as_update_v1(&sv);
                send(&mut ws, protocol::encode_step2(&update)).await?;
            }
            Frame::SyncStep2 { update } | Frame::Update { update, .. } => {
                let is_step2 = matches!(protocol::parse(&data), Ok(Frame::SyncStep2 { .. }));
                let u = Update::decode_v1(&data[update]).map_err(|e| e.to_string())?;
                doc.transact_mut()
                    .apply_update(u)
                    .map_err(|e| e.to_string())?;
                if is_step2 && !appended {
                    let update = {
                        let mut txn = doc.transact_mut();
                        let len = text.len(&txn);
                        text.insert(&mut txn, len, append);
                        txn.encode_update_v1()
                    };
                    send(&mut ws, protocol::encode_update(&update)).await?;
                    appended = true;
                }
            }
            _ => {}
        }
    }
}

async fn send<S>(ws: &mut S, frame: Vec<u8>) -> Result<(), String>
where
    S: futures_util::Sink<Message> + Unpin,
    S::Error: std::fmt::Display,
{
    ws.send(Message::Binary(frame.into()))
        .await
        .map_err(|e| e.to_string())
}
