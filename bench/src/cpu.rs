//! `ykeep-bench cpu`: where the relay's CPU per update goes, stage by stage, with no I/O.
//!
//! Every pre-encoded automerge-paper update goes through what the room task does with it, one
//! stage added at a time; each stage is timed over the whole trace (median of interleaved runs):
//! 1. `Update::decode_v1` + apply into one doc: the yrs floor;
//! 2. the same with `ykeep_core::merge::decode_update` (plausible count, guarded decode, round
//!    trip) instead of the bare decode;
//! 3. `ykeep_core::validated_update` (2. plus a scratch-doc apply whose state must encode and
//!    decode again, returning the decoded update) + apply;
//! 4. `ykeep_core::merge::validated_update_for` (3. plus the check that every parent an item
//!    names by id is a type or deleted, in the room's doc or the update: yrs fails half-way on
//!    one that is not) + apply;
//! 5. what the relay runs per update: the sans-IO room (`ykeep_room::Room`) with two
//!    connections, each update arriving as a y-sync Update frame: parse, the check, the parent
//!    check, the apply, the log record, the forward to the other connection. The room checks
//!    consecutive updates of a batch together on one scratch doc (8 at a time), so the stage
//!    runs at four batch sizes: 1 update per batch (the worst case: a room that gets one update
//!    per wake-up, each checked alone), 8 and 32 (a few writers, or one fast typist, between two
//!    wake-ups of the room task), and 4096 (a flood: the relay's room task drains at most
//!    `MAX_BATCH` = 4096 messages per batch, which is what `scripts/bench relay` sees).
//!
//! The durable log's SQLite commit and the socket I/O come on top; `scripts/bench relay` measures
//! them end to end (its `CPU µs/update` column).

use std::time::Instant;

use bytes::Bytes;

use serde_json::json;
use yrs::updates::decoder::Decode;
use yrs::{Doc, Transact, Update};

use crate::stats::median;
use crate::{Args, report, trace};

type Stage = (&'static str, fn(&[Vec<u8>], &[Bytes]) -> String);

/// Runs a per-update function over a fresh doc; returns the doc's text.
fn on_doc(updates: &[Vec<u8>], f: fn(&Doc, &[u8])) -> String {
    let doc = trace::new_doc(7);
    for u in updates {
        f(&doc, u);
    }
    trace::text_of(&doc)
}

fn bare(doc: &Doc, u: &[u8]) {
    let update = Update::decode_v1(u).expect("trace update decodes");
    doc.transact_mut().apply_update(update).expect("applies");
}

fn guarded(doc: &Doc, u: &[u8]) {
    let update = ykeep_core::merge::decode_update(u).expect("trace update decodes");
    doc.transact_mut().apply_update(update).expect("applies");
}

fn validated(doc: &Doc, u: &[u8]) {
    let update = ykeep_core::validated_update(u).expect("trace update validates");
    doc.transact_mut().apply_update(update).expect("applies");
}

fn relay(doc: &Doc, u: &[u8]) {
    let update = ykeep_core::merge::validated_update_for(doc, u).expect("trace update validates");
    doc.transact_mut().apply_update(update).expect("applies");
}

/// The sans-IO room fed `PER` Update frames per batch (one flush each).
fn room<const PER: usize>(_: &[Vec<u8>], frames: &[Bytes]) -> String {
    use ykeep_room::{Effect, Event, Reply, Room, RoomConfig, RoomRecords};
    let config = RoomConfig {
        policy: ykeep_core::SchedulePolicy::default(),
        poll_every_ms: 0,
        max_snapshot_bytes: usize::MAX,
    };
    let name = ykeep_core::RoomName::parse("document/bench").expect("room name");
    let mut room = Room::open(
        name,
        config,
        RoomRecords::default(),
        Ok(None),
        ykeep_room::Purpose::Client,
        0,
    );
    room.handle(Event::Join { conn: 1 }, 0);
    room.handle(Event::Join { conn: 2 }, 0);
    room.flush(0).durable();
    for batch in frames.chunks(PER) {
        for data in batch {
            room.handle(
                Event::Frame {
                    conn: 1,
                    data: data.clone(),
                },
                1,
            );
        }
        let step = room.flush(1);
        assert!(step.append.is_some(), "every update is logged");
        std::hint::black_box(step.durable());
    }
    room.handle(
        Event::StateQuery {
            query: 1,
            sv: None,
            unless: None,
        },
        2,
    );
    let state = room.flush(2).durable().into_iter().find_map(|e| match e {
        Effect::Reply { reply, .. } => match *reply {
            Reply::State(Ok(state)) => Some(state),
            _ => None,
        },
        _ => None,
    });
    let doc = trace::new_doc(8);
    let update = Update::decode_v1(&state.expect("a state reply")).expect("state decodes");
    doc.transact_mut().apply_update(update).expect("applies");
    trace::text_of(&doc)
}

const STAGES: [Stage; 8] = [
    ("decode + apply (yrs floor)", |u, _| on_doc(u, bare)),
    ("guarded decode + apply", |u, _| on_doc(u, guarded)),
    ("validated_update + apply", |u, _| on_doc(u, validated)),
    ("validated_update_for + apply", |u, _| on_doc(u, relay)),
    (
        "ykeep_room::Room, 1 update per batch (worst case)",
        room::<1>,
    ),
    ("ykeep_room::Room, 8 updates per batch", room::<8>),
    ("ykeep_room::Room, 32 updates per batch", room::<32>),
    (
        "ykeep_room::Room, 4096 updates per batch (a flood)",
        room::<4096>,
    ),
];

pub fn run(a: &Args) -> Result<(), String> {
    let runs: usize = a.get("runs", 7)?;
    let tr = trace::load("automerge-paper")?;
    let (_, updates) = trace::pre_encode(&tr);
    let n = updates.len();
    let frames: Vec<Bytes> = updates
        .iter()
        .map(|u| Bytes::from(ykeep_room::protocol::encode_update(u)))
        .collect();
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); STAGES.len()];
    for run in 0..runs {
        for (i, (name, stage)) in STAGES.iter().enumerate() {
            let t0 = Instant::now();
            let text = stage(&updates, &frames);
            let ms = t0.elapsed().as_secs_f64() * 1000.0;
            if text != tr.end {
                return Err(format!(
                    "{name}: the text differs from the trace's end content"
                ));
            }
            eprintln!("run {run} {name:<40} {ms:8.1} ms");
            samples[i].push(ms);
        }
    }
    let floor = median(&samples[0]);
    let mut md = format!(
        "# Relay CPU per update, by stage (`scripts/bench cpu`)\n\n{}; {}; automerge-paper, {n} \
         updates; one thread, no I/O; median of {runs} interleaved runs.\n\n\
         | stage | total ms | µs/update | updates/s | ÷ floor |\n|---|---|---|---|---|\n",
        report::now_utc(),
        report::machine()
    );
    let mut rows = Vec::new();
    for ((name, _), s) in STAGES.iter().zip(&samples) {
        let ms = median(s);
        let us = ms * 1000.0 / n as f64;
        let per_s = n as f64 / (ms / 1000.0);
        md += &format!(
            "| {name} | {ms:.0} | {us:.2} | {} | {:.2} |\n",
            report::fmt_num(per_s),
            ms / floor
        );
        rows.push(json!({"stage": name, "median_ms": ms, "us_per_update": us, "updates_per_s": per_s, "samples_ms": s}));
    }
    md += "\nThe durable log's SQLite commit and socket I/O come on top: see the relay table's \
           `CPU µs/update`.\n\nTraces: automerge-paper by Martin Kleppmann (josephg/editing-traces, \
           from automerge/automerge-perf), licensed CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/).\n";
    println!("{md}");
    let out = json!({"when": report::now_utc(), "machine": report::machine(), "updates": n, "runs": runs, "stages": rows});
    report::write("cpu", "json", &serde_json::to_string_pretty(&out).unwrap());
    report::write("cpu", "md", &md);
    report::update_readme("cpu", &md);
    Ok(())
}
