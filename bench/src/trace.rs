//! Editing traces (josephg/editing-traces format, gzipped JSON) and their replay into yrs.
//!
//! Positions in the traces count Unicode code points; yrs offsets count UTF-16 units
//! (`OffsetKind::Utf16`). They are the same when every character is in the Basic Multilingual
//! Plane, which `load` checks.

use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use yrs::{Doc, GetString, OffsetKind, Options, Text, Transact};

/// Where the traces live: env `YKEEP_BENCH_DATA`, else `../shared/bench-data` from the repo root.
pub fn data_dir() -> PathBuf {
    std::env::var_os("YKEEP_BENCH_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench-data")
        })
}

/// One patch: `[pos, numDeleted, inserted]` (code points).
pub struct Patch {
    pub pos: u32,
    pub del: u32,
    pub ins: String,
}

pub struct Trace {
    pub txns: Vec<Vec<Patch>>,
    pub end: String,
}

pub fn load(name: &str) -> Result<Trace, String> {
    let path = data_dir().join(format!("{name}.json.gz"));
    let file = std::fs::File::open(&path)
        .map_err(|e| format!("cannot open {} ({e}); set YKEEP_BENCH_DATA", path.display()))?;
    let mut json = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut json)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&json).map_err(|e| e.to_string())?;
    let end = v["endContent"].as_str().ok_or("no endContent")?.to_owned();
    let mut txns = Vec::new();
    for t in v["txns"].as_array().ok_or("no txns")? {
        let mut patches = Vec::new();
        for p in t["patches"].as_array().ok_or("no patches")? {
            patches.push(Patch {
                pos: p[0].as_u64().ok_or("bad pos")? as u32,
                del: p[1].as_u64().ok_or("bad del")? as u32,
                ins: p[2].as_str().ok_or("bad ins")?.to_owned(),
            });
        }
        txns.push(patches);
    }
    let bmp = |s: &str| s.chars().all(|c| c.len_utf16() == 1);
    if !bmp(&end) || !txns.iter().flatten().all(|p| bmp(&p.ins)) {
        return Err(format!(
            "{name}: characters outside the BMP; code point positions would need mapping"
        ));
    }
    Ok(Trace { txns, end })
}

pub const WRITER_CLIENT: u64 = 1;

pub fn new_doc(client: u64) -> Doc {
    Doc::with_options(Options {
        client_id: yrs::block::ClientID::new(client),
        offset_kind: OffsetKind::Utf16,
        ..Options::default()
    })
}

/// Replays the trace `times` times into one doc, each replay inserted before the text so far
/// (the "N×" documents). Returns the doc; checks the text.
pub fn replay(trace: &Trace, times: usize) -> Doc {
    let doc = new_doc(WRITER_CLIENT);
    replay_into(&doc, trace, times, None);
    doc
}

/// Replays with one captured v1 update per transaction (`observe_update_v1`).
pub fn pre_encode(trace: &Trace) -> (Doc, Vec<Vec<u8>>) {
    let doc = new_doc(WRITER_CLIENT);
    let captured = Arc::new(Mutex::new(Vec::with_capacity(trace.txns.len())));
    let sink = captured.clone();
    doc.observe_update_v1("bench", move |_, e| {
        sink.lock().unwrap().push(e.update.clone())
    })
    .expect("observe");
    replay_into(&doc, trace, 1, None);
    doc.unobserve_update_v1("bench").expect("unobserve");
    let updates = std::mem::take(&mut *captured.lock().unwrap());
    assert_eq!(
        updates.len(),
        trace.txns.len(),
        "one update per transaction"
    );
    (doc, updates)
}

fn replay_into(doc: &Doc, trace: &Trace, times: usize, _tag: Option<()>) {
    let text = doc.get_or_insert_text("t");
    // Each replay goes in front of the text so far, not after it: yrs finds a position by
    // walking the text's blocks from the start, so appending made replay k walk every earlier
    // replay for each edit (the 10× doc was still building after 8 minutes; in front, each replay
    // costs what the 1× one does). The content is the same N copies either way.
    for _ in 0..times {
        for txn in &trace.txns {
            let mut t = doc.transact_mut();
            for p in txn {
                if p.del > 0 {
                    text.remove_range(&mut t, p.pos, p.del);
                }
                if !p.ins.is_empty() {
                    text.insert(&mut t, p.pos, &p.ins);
                }
            }
        }
    }
    let got = text.get_string(&doc.transact());
    assert_eq!(got.len(), trace.end.len() * times, "replay length");
    assert!(
        got.starts_with(&trace.end),
        "replay text differs from endContent"
    );
}

/// The text of a doc's `t` root.
pub fn text_of(doc: &Doc) -> String {
    doc.get_or_insert_text("t").get_string(&doc.transact())
}
