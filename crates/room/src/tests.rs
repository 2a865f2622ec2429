//! Every room rule, on bytes: no sockets, no sleeps, the clock is a number.

use bytes::Bytes;
use ykeep_core::wire::{Precondition, SaveReceipt};
use ykeep_core::{RoomName, SchedulePolicy};
use yrs::block::ClientID;
use yrs::sync::awareness::{AwarenessUpdate, AwarenessUpdateEntry};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, GetString, ReadTxn, StateVector, Text, Transact, Update};

use crate::protocol::{self, Frame};
use crate::store::{Held, StoreView};
use crate::*;

const SAVE_EVERY: u64 = 30_000;
const POLL_EVERY: u64 = 10_000;

fn config() -> RoomConfig {
    RoomConfig {
        policy: SchedulePolicy {
            save_interval_ms: SAVE_EVERY,
            debounce_ms: 7_000,
        },
        poll_every_ms: POLL_EVERY,
        max_snapshot_bytes: 1 << 20,
    }
}

fn name() -> RoomName {
    RoomName::parse("document/d1").unwrap()
}

/// A room opened on `records` with the store answering `store`, its first step performed.
fn open(records: RoomRecords, store: Result<Option<StoredSnapshot>, StoreError>) -> Room {
    let mut room = Room::open(name(), config(), records, store, Purpose::Client, 0);
    room.flush(0);
    room
}

fn fresh() -> Room {
    open(RoomRecords::default(), Ok(None))
}

/// An update inserting `text` at the start of a doc of its own client id.
fn edit(client: u64, text: &str) -> Vec<u8> {
    let doc = Doc::with_client_id(client);
    let t = doc.get_or_insert_text("t");
    t.insert(&mut doc.transact_mut(), 0, text);
    doc.transact()
        .encode_state_as_update_v1(&StateVector::default())
}

fn text_of(state: &[u8]) -> String {
    let doc = Doc::new();
    let t = doc.get_or_insert_text("t");
    doc.transact_mut()
        .apply_update(Update::decode_v1(state).unwrap())
        .unwrap();
    t.get_string(&doc.transact())
}

fn frame(bytes: Vec<u8>) -> Bytes {
    Bytes::from(bytes)
}

/// The room's full state, through a `/state` query.
fn state_of(room: &mut Room, now: u64) -> Vec<u8> {
    room.handle(
        Event::StateQuery {
            query: 99,
            sv: None,
            unless: None,
        },
        now,
    );
    let effects = room.flush(now).durable();
    effects
        .into_iter()
        .find_map(|e| match e {
            Effect::Reply { query: 99, reply } => match *reply {
                Reply::State(Ok(state)) => Some(state),
                _ => None,
            },
            _ => None,
        })
        .expect("a state reply")
}

/// The reply to a `/state` query naming `unless`.
fn state_reply(room: &mut Room, unless: Option<ykeep_core::StateTag>, now: u64) -> Reply {
    room.handle(
        Event::StateQuery {
            query: 98,
            sv: None,
            unless,
        },
        now,
    );
    room.flush(now)
        .durable()
        .into_iter()
        .find_map(|e| match e {
            Effect::Reply { query: 98, reply } => Some(*reply),
            _ => None,
        })
        .expect("a state reply")
}

#[test]
fn a_state_query_is_unchanged_only_for_the_rooms_own_tag() {
    let mut room = fresh();
    room.handle(Event::Join { conn: 1 }, 1);
    room.flush(1).durable();
    let update = protocol::encode_update(&edit(7, "abc"));
    room.handle(
        Event::Frame {
            conn: 1,
            data: frame(update),
        },
        2,
    );
    room.flush(2).durable();
    let state = state_of(&mut room, 3);
    let tag = ykeep_core::StateTag::of(&ykeep_core::DurabilityMarker::of_update(&state).unwrap());
    match state_reply(&mut room, Some(tag), 4) {
        Reply::Unchanged(t) => assert_eq!(t, tag),
        other => panic!("expected Unchanged, got {other:?}"),
    }
    // A tag from before the last edit (a delete: the state vector does not move) gets the state.
    let stale = tag;
    let delete = {
        let doc = Doc::new();
        doc.transact_mut()
            .apply_update(Update::decode_v1(&state).unwrap())
            .unwrap();
        let t = doc.get_or_insert_text("t");
        let mut txn = doc.transact_mut();
        t.remove_range(&mut txn, 0, 1);
        txn.encode_update_v1()
    };
    let frame_bytes = protocol::encode_update(&delete);
    room.handle(
        Event::Frame {
            conn: 1,
            data: frame(frame_bytes),
        },
        5,
    );
    room.flush(5).durable();
    match state_reply(&mut room, Some(stale), 6) {
        Reply::State(Ok(update)) => assert_eq!(text_of(&update), "bc"),
        other => panic!("expected the state, got {other:?}"),
    }
    assert!(matches!(
        state_reply(&mut room, None, 7),
        Reply::State(Ok(_))
    ));
}

fn deliveries(effects: &[Effect]) -> Vec<(Target, OutFrame)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Deliver { to, frame } => Some((*to, frame.clone())),
            _ => None,
        })
        .collect()
}

fn update_payload(frame: &OutFrame) -> Vec<u8> {
    let bytes = frame.bytes();
    match protocol::parse(bytes).unwrap() {
        Frame::Update { update, .. } => bytes[update].to_vec(),
        other => panic!("expected an Update frame, got {other:?}"),
    }
}

fn record(append: &Append, id: i64) -> LogRecord {
    LogRecord {
        id,
        format: append.format,
        data: append.data.clone(),
    }
}

fn snapshot(id: &str, bytes: Vec<u8>) -> StoredSnapshot {
    StoredSnapshot {
        bytes,
        snapshot_id: id.into(),
        saved_at: Some(1),
    }
}

fn receipt(id: &str) -> SaveReceipt {
    SaveReceipt {
        snapshot_id: id.into(),
        size: 0,
        state_vector: String::new(),
        saved_at: 7,
    }
}

fn save_request(effects: &[Effect]) -> Option<(Bytes, Precondition)> {
    effects.iter().find_map(|e| match e {
        Effect::Save {
            state,
            precondition,
        } => Some((state.clone(), precondition.clone())),
        _ => None,
    })
}

/// What a host keeps of `conns` when it loses its memory (see `Room::resume`).
fn kept_of(room: &Room, conns: [ConnId; 2]) -> Vec<KeptConn> {
    conns
        .map(|conn| KeptConn {
            conn,
            awareness: room.awareness_of(conn),
            owed: room.owed(conn).cloned(),
        })
        .into()
}

/// Two clients joined; their join replies are drained.
fn room_with_two() -> Room {
    let mut room = fresh();
    room.handle(Event::Join { conn: 1 }, 0);
    room.handle(Event::Join { conn: 2 }, 0);
    room.flush(0).durable();
    room
}

#[test]
fn nothing_is_delivered_before_the_append_that_covers_it() {
    let mut room = room_with_two();
    let update = edit(5, "hello");
    let data = frame(protocol::encode_update(&update));
    room.handle(
        Event::Frame {
            conn: 1,
            data: data.clone(),
        },
        10,
    );
    let step = room.flush(10);
    let append = step.append.clone().expect("the update is appended");
    assert_eq!(append.seq, 1);
    let logged = protocol::read_len_prefixed(&append.data).unwrap();
    assert_eq!(logged, vec![update.as_slice()], "the log holds the update");
    assert_eq!(step.tally.updates, 1);
    let effects = step.durable();
    let out = deliveries(&effects);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, Target::AllBut(1));
    assert_eq!(out[0].1.bytes(), &data, "forwarded as the very same buffer");

    // A step that failed its append releases nothing: the room closes everyone with 1011.
    room.handle(
        Event::Frame {
            conn: 1,
            data: frame(protocol::encode_update(&edit(6, "x"))),
        },
        20,
    );
    let failed = room.flush(20);
    assert!(failed.append.is_some());
    drop(failed);
    let effects = room.log_failed();
    assert!(deliveries(&effects).is_empty());
    let closes: Vec<_> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Close { conn, close } => Some((*conn, close.code)),
            _ => None,
        })
        .collect();
    assert_eq!(closes, vec![(1, 1011), (2, 1011)]);
    assert!(matches!(effects.last(), Some(Effect::Unload)));
    room.handle(Event::DurableQuery { query: 7 }, 30);
    let answer = room.flush(30).durable();
    assert!(matches!(
        &answer[..],
        [Effect::Reply { query: 7, reply }, Effect::Unload] if matches!(**reply, Reply::Ended)
    ));
    room.handle(Event::Join { conn: 3 }, 30);
    let late = room.flush(30).durable();
    assert!(
        matches!(&late[..], [Effect::Close { conn: 3, close }, Effect::Unload] if close.code == 1011)
    );
}

#[test]
fn a_sync_step2_is_forwarded_to_the_others_as_an_update() {
    let mut room = room_with_two();
    let update = edit(5, "from step 2");
    room.handle(
        Event::Frame {
            conn: 1,
            data: frame(protocol::encode_step2(&update)),
        },
        10,
    );
    let effects = room.flush(10).durable();
    let out = deliveries(&effects);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, Target::AllBut(1));
    assert!(
        matches!(out[0].1, OutFrame::Update { .. }),
        "counts toward the backlog"
    );
    assert_eq!(update_payload(&out[0].1), update);
}

#[test]
fn a_joiner_gets_step1_and_a_step1_gets_what_it_lacks() {
    let mut room = room_with_two();
    room.handle(
        Event::Frame {
            conn: 1,
            data: frame(protocol::encode_update(&edit(5, "ab"))),
        },
        1,
    );
    room.flush(1).durable();
    room.handle(Event::Join { conn: 3 }, 2);
    let sv = StateVector::default().encode_v1();
    room.handle(
        Event::Frame {
            conn: 3,
            data: frame(protocol::encode_step1(&sv)),
        },
        2,
    );
    let effects = room.flush(2).durable();
    let out = deliveries(&effects);
    assert!(out.iter().all(|(to, _)| *to == Target::One(3)));
    let frames: Vec<_> = out
        .iter()
        .map(|(_, f)| protocol::parse(f.bytes()).unwrap())
        .collect();
    assert!(matches!(frames[0], Frame::SyncStep1 { .. }));
    let Frame::SyncStep2 { update } = frames[1].clone() else {
        panic!("a SyncStep2 reply")
    };
    assert_eq!(text_of(&out[1].1.bytes()[update]), "ab");
}

fn awareness(entries: &[(u64, u32, &str)]) -> Vec<u8> {
    let clients = entries
        .iter()
        .map(|(c, clock, json)| {
            let entry = AwarenessUpdateEntry {
                clock: *clock,
                json: (*json).into(),
            };
            (ClientID::new(*c), entry)
        })
        .collect();
    AwarenessUpdate { clients }.encode_v1()
}

#[test]
fn a_leaving_connection_takes_each_of_its_awareness_client_ids_with_it() {
    let mut room = room_with_two();
    let announce = awareness(&[(10, 3, r#"{"u":"a"}"#), (11, 1, r#"{"u":"a2"}"#)]);
    room.handle(
        Event::Frame {
            conn: 1,
            data: frame(protocol::encode_awareness(&announce)),
        },
        1,
    );
    room.handle(
        Event::Frame {
            conn: 2,
            data: frame(protocol::encode_awareness(&awareness(&[(20, 1, "{}")]))),
        },
        1,
    );
    room.flush(1).durable();
    room.handle(Event::Leave { conn: 1 }, 2);
    let effects = room.flush(2).durable();
    let out = deliveries(&effects);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, Target::All);
    let Frame::Awareness { payload } = protocol::parse(out[0].1.bytes()).unwrap() else {
        panic!("an awareness frame")
    };
    let removal = AwarenessUpdate::decode_v1(&out[0].1.bytes()[payload]).unwrap();
    let mut gone: Vec<_> = removal
        .clients
        .iter()
        .map(|(c, e)| (c.get(), e.clock, e.json.to_string()))
        .collect();
    gone.sort();
    assert_eq!(
        gone,
        vec![(10, 4, "null".to_string()), (11, 2, "null".to_string())],
        "one removal per client id of the leaver, with a newer clock; client 20 stays"
    );
}

#[test]
fn an_echoed_awareness_state_stays_with_its_announcer() {
    // y-websocket's provider sends back every awareness state it hears, with the same clock:
    // the echo must not move client 10 to connection 2, or 1's leave would remove nothing.
    let mut room = room_with_two();
    let announce = frame(protocol::encode_awareness(&awareness(&[(
        10,
        3,
        r#"{"u":"a"}"#,
    )])));
    for conn in [1, 2] {
        let data = announce.clone();
        room.handle(Event::Frame { conn, data }, 1);
    }
    room.flush(1).durable();
    assert_eq!(room.awareness_of(1), vec![(10, 3)]);
    assert_eq!(room.awareness_of(2), vec![]);
    room.handle(Event::Leave { conn: 1 }, 2);
    let effects = room.flush(2).durable();
    let out = deliveries(&effects);
    assert_eq!(out.len(), 1, "the leave announces client 10's removal");
    let Frame::Awareness { payload } = protocol::parse(out[0].1.bytes()).unwrap() else {
        panic!("an awareness frame")
    };
    let removal = AwarenessUpdate::decode_v1(&out[0].1.bytes()[payload]).unwrap();
    let gone: Vec<_> = removal
        .clients
        .iter()
        .map(|(c, e)| (c.get(), e.clock))
        .collect();
    assert_eq!(gone, vec![(10, 4)]);
}

#[test]
fn a_slow_reader_is_closed_at_the_backlog_limit_and_replies_never_count() {
    let mut room = room_with_two();
    let mut backlog = Backlog::new(300);
    let mut closed = None;
    for i in 0..20 {
        let update = edit(100 + i, &"x".repeat(40));
        room.handle(
            Event::Frame {
                conn: 1,
                data: frame(protocol::encode_update(&update)),
            },
            i,
        );
        for (to, f) in deliveries(&room.flush(i).durable()) {
            if to.includes(2)
                && let Err(close) = backlog.push(&f)
            {
                closed.get_or_insert((i, close));
            }
        }
    }
    let (at, close) = closed.expect("the reader is closed");
    assert_eq!(close.code, close_code::SLOW_READER);
    assert!(at >= 3, "not before the limit ({at})");
    let mut replies = Backlog::new(10);
    let big = OutFrame::Other(Bytes::from(vec![0; 1000]));
    assert!(replies.push(&big).is_ok() && replies.push(&big).is_ok());
    let mut drained = Backlog::new(100);
    let update = OutFrame::Update {
        frame: Bytes::from(vec![0; 80]),
        payload_at: 0,
    };
    drained.push(&update).unwrap();
    drained.drained();
    assert!(
        drained.push(&update).is_ok(),
        "drained bytes no longer count"
    );
}

#[test]
fn cold_start_merges_the_log_and_the_store_and_logs_only_what_the_store_added() {
    let from_log = edit(1, "log ");
    let from_store = edit(2, "store ");
    let mut log = Vec::new();
    protocol::write_len_prefixed(&mut log, &from_log);
    let records = RoomRecords {
        seq: 4,
        saved_seq: 4,
        records: vec![LogRecord {
            id: 1,
            format: record_format::BATCH,
            data: log,
        }],
        ..RoomRecords::default()
    };
    let mut room = Room::open(
        name(),
        config(),
        records,
        Ok(Some(snapshot("s1", from_store.clone()))),
        Purpose::Client,
        0,
    );
    let step = room.flush(0);
    let append = step.append.clone().expect("the store's content is logged");
    assert_eq!(append.seq, 5);
    let parts = protocol::read_len_prefixed(&append.data).unwrap();
    assert_eq!(parts.len(), 1);
    assert_eq!(text_of(parts[0]), "store ", "only the store's part");
    let state = state_of(&mut room, 1);
    let text = text_of(&state);
    assert!(text.contains("log ") && text.contains("store "), "{text}");

    // Content from the store is saved already: it does not make a saved room dirty.
    room.handle(Event::Join { conn: 1 }, 2);
    room.flush(2);
    let effects = room.flush(2 + SAVE_EVERY).durable();
    assert!(save_request(&effects).is_none());
    assert!(matches!(&effects[..], [Effect::Poll { .. }]));
    room.handle(Event::Polled(Ok(None)), 2 + SAVE_EVERY);
    room.handle(
        Event::Frame {
            conn: 1,
            data: frame(protocol::encode_update(&edit(3, "new "))),
        },
        3,
    );
    room.flush(3);
    let (_, pre) = save_request(&room.flush(3 + SAVE_EVERY).durable()).expect("a save");
    assert_eq!(
        pre,
        Precondition::IfMatch("s1".into()),
        "names the snapshot it merged"
    );
}

/// A log compacted after a save of `saved` as `s1`, its marker `marker`.
fn compacted_log(saved: &[u8], marker: &[u8]) -> RoomRecords {
    RoomRecords {
        seq: 4,
        saved_seq: 4,
        store_snapshot_id: Some("s1".into()),
        store_marker: Some(marker.to_vec()),
        saved_at: Some(7),
        records: vec![LogRecord {
            id: 1,
            format: record_format::SNAPSHOT,
            data: saved.to_vec(),
        }],
    }
}

#[test]
fn cold_start_skips_the_merge_only_when_the_log_holds_the_stores_snapshot() {
    let saved = edit(1, "saved ");
    let marker = ykeep_core::DurabilityMarker::of_update(&saved)
        .unwrap()
        .encode();
    let opened = |records: RoomRecords, store: StoredSnapshot| {
        let mut room = Room::open(
            name(),
            config(),
            records,
            Ok(Some(store)),
            Purpose::Client,
            0,
        );
        let step = room.flush(0);
        (room, step.append)
    };

    // The store still holds the snapshot the log recorded: nothing to merge, and the room
    // counts it as held (the next save names it).
    let (mut room, append) = opened(
        compacted_log(&saved, &marker),
        snapshot("s1", saved.clone()),
    );
    assert!(append.is_none(), "nothing new from the store");
    assert_eq!(
        room.store.view,
        StoreView::Synced(Held {
            snapshot_id: Some("s1".into()),
            marker: Some(marker.clone()),
            saved_at: Some(1),
        })
    );
    room.handle(Event::Join { conn: 1 }, 1);
    room.handle(
        Event::Frame {
            conn: 1,
            data: frame(protocol::encode_update(&edit(3, "new "))),
        },
        1,
    );
    room.flush(1);
    let (_, pre) = save_request(&room.flush(1 + SAVE_EVERY).durable()).expect("a save");
    assert_eq!(pre, Precondition::IfMatch("s1".into()));

    // Another host saved since (another id): merged as before.
    let both = ykeep_core::merge_updates([saved.as_slice(), &edit(2, "elsewhere ")]).unwrap();
    let (room, append) = opened(compacted_log(&saved, &marker), snapshot("s2", both));
    assert!(
        append.is_some(),
        "the other host's edit is merged and logged"
    );
    assert!(text_of(&state_of_doc(&room)).contains("elsewhere "));

    // Same id, but the doc does not cover the marker the log recorded: merged, not trusted.
    let bigger = ykeep_core::merge_updates([saved.as_slice(), &edit(2, "more ")]).unwrap();
    let bigger_marker = ykeep_core::DurabilityMarker::of_update(&bigger)
        .unwrap()
        .encode();
    let (room, append) = opened(
        compacted_log(&saved, &bigger_marker),
        snapshot("s1", bigger),
    );
    assert!(append.is_some());
    assert!(text_of(&state_of_doc(&room)).contains("more "));

    // Same id, but a log record was unreadable: merged.
    let mut records = compacted_log(&saved, &marker);
    records.records.push(LogRecord {
        id: 2,
        format: 99,
        data: vec![1],
    });
    let extra = ykeep_core::merge_updates([saved.as_slice(), &edit(2, "kept ")]).unwrap();
    let (room, append) = opened(records, snapshot("s1", extra));
    assert!(append.is_some());
    assert!(text_of(&state_of_doc(&room)).contains("kept "));
}

fn state_of_doc(room: &Room) -> Vec<u8> {
    room.doc
        .transact()
        .encode_state_as_update_v1(&StateVector::default())
}

#[test]
fn the_store_saying_deleted_at_cold_start_quarantines_and_closes_joiners() {
    let mut room = Room::open(
        name(),
        config(),
        RoomRecords::default(),
        Err(StoreError::Deleted),
        Purpose::Client,
        0,
    );
    room.handle(Event::Join { conn: 1 }, 0);
    let effects = room.flush(0).durable();
    assert!(
        matches!(effects[1], Effect::Close { conn: 1, ref close } if close.code == 1008 && close.reason.starts_with("resource_deleted"))
    );
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::Quarantine { .. }))
    );
    assert!(effects.iter().any(|e| matches!(e, Effect::Unload)));
}

/// A room with a client, one edit by it, and a save that came due.
fn room_saving() -> (Room, Bytes, Precondition) {
    let mut room = open(
        RoomRecords::default(),
        Ok(Some(snapshot("s1", edit(1, "one ")))),
    );
    room.handle(Event::Join { conn: 1 }, 0);
    room.handle(
        Event::Frame {
            conn: 1,
            data: frame(protocol::encode_update(&edit(2, "two "))),
        },
        0,
    );
    room.flush(0).durable();
    let (state, pre) = save_request(&room.flush(SAVE_EVERY).durable()).expect("a save is due");
    (room, state, pre)
}

#[test]
fn a_save_that_meets_a_conflict_merges_the_stores_snapshot_and_posts_once_more() {
    let (mut room, state, pre) = room_saving();
    assert_eq!(pre, Precondition::IfMatch("s1".into()));
    assert!(text_of(&state).contains("two "));
    room.handle(
        Event::Saved(Err(StoreError::Conflict {
            current: Some("s2".into()),
        })),
        SAVE_EVERY + 1,
    );
    let step = room.flush(SAVE_EVERY + 1);
    assert_eq!(step.tally.save_conflicts, 1);
    let effects = step.durable();
    assert!(effects.iter().any(|e| matches!(e, Effect::Fetch)));
    // The other host's snapshot: its edits and ours.
    let theirs =
        ykeep_core::merge_updates([edit(1, "one ").as_slice(), &edit(3, "three ")]).unwrap();
    room.handle(
        Event::Fetched(Ok(Some(snapshot("s2", theirs)))),
        SAVE_EVERY + 2,
    );
    let step = room.flush(SAVE_EVERY + 2);
    let append = step.append.clone().expect("the merged content is logged");
    let effects = step.durable();
    let out = deliveries(&effects);
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].0,
        Target::All,
        "every client gets the other host's edits"
    );
    assert_eq!(text_of(&update_payload(&out[0].1)), "three ");
    assert_eq!(
        text_of(protocol::read_len_prefixed(&append.data).unwrap()[0]),
        "three "
    );
    let (state, pre) = save_request(&effects).expect("posts again");
    assert_eq!(pre, Precondition::IfMatch("s2".into()));
    let text = text_of(&state);
    assert!(
        text.contains("two ") && text.contains("three ") && text.contains("one "),
        "{text}"
    );
    room.handle(Event::Saved(Ok(receipt("s3"))), SAVE_EVERY + 3);
    let step = room.flush(SAVE_EVERY + 3);
    let compact = step.compact.clone().expect("the save is recorded");
    assert_eq!(
        (compact.saved_seq, compact.store_snapshot_id.as_str()),
        (2, "s3")
    );
    assert_eq!(compact.compacted, state.to_vec());
    assert_eq!(step.tally.saves_ok, 1);

    // A second conflict in one save is a failure: the room stays dirty, nothing is replaced.
    let (mut room, _, _) = room_saving();
    room.handle(Event::Saved(Err(StoreError::Conflict { current: None })), 1);
    room.flush(SAVE_EVERY + 1).durable();
    room.handle(
        Event::Fetched(Ok(Some(snapshot("s2", edit(3, "x"))))),
        SAVE_EVERY + 2,
    );
    room.flush(SAVE_EVERY + 2).durable();
    room.handle(
        Event::Saved(Err(StoreError::Conflict { current: None })),
        SAVE_EVERY + 3,
    );
    let step = room.flush(SAVE_EVERY + 3);
    assert!(step.compact.is_none());
    assert_eq!(step.tally.saves_failed, 1);
}

#[test]
fn a_store_snapshot_that_is_no_update_fails_the_save_and_replaces_nothing() {
    let (mut room, _, _) = room_saving();
    room.handle(
        Event::Saved(Err(StoreError::Conflict { current: None })),
        SAVE_EVERY + 1,
    );
    room.flush(SAVE_EVERY + 1).durable();
    let garbage = vec![0xff, 0x00, 0x13, 0x37];
    room.handle(
        Event::Fetched(Ok(Some(snapshot("s2", garbage)))),
        SAVE_EVERY + 2,
    );
    let step = room.flush(SAVE_EVERY + 2);
    assert!(step.append.is_none(), "nothing merged into the doc");
    let effects = step.durable();
    // Garbage cannot even be merged as bytes: the save fails and replaces nothing.
    assert!(save_request(&effects).is_none());
}

#[test]
fn a_poll_merges_a_snapshot_saved_elsewhere_and_sends_what_was_new() {
    let mut room = open(
        RoomRecords::default(),
        Ok(Some(snapshot("s1", edit(1, "one ")))),
    );
    room.handle(Event::Join { conn: 1 }, 0);
    room.flush(0).durable();
    assert_eq!(room.next_deadline(), Some(POLL_EVERY));
    let effects = room.flush(POLL_EVERY).durable();
    assert!(matches!(&effects[..], [Effect::Poll { known }] if known == "s1"));
    assert_eq!(room.next_deadline(), None, "one store request at a time");
    let theirs =
        ykeep_core::merge_updates([edit(1, "one ").as_slice(), &edit(4, "four ")]).unwrap();
    room.handle(
        Event::Polled(Ok(Some(snapshot("s9", theirs)))),
        POLL_EVERY + 1,
    );
    let step = room.flush(POLL_EVERY + 1);
    let append = step.append.clone().expect("logged");
    assert_eq!(
        text_of(protocol::read_len_prefixed(&append.data).unwrap()[0]),
        "four "
    );
    let effects = step.durable();
    let out = deliveries(&effects);
    assert_eq!((out.len(), out[0].0), (1, Target::All));
    // The room now holds s9: an edit's save names it.
    room.handle(
        Event::Frame {
            conn: 1,
            data: frame(protocol::encode_update(&edit(2, "x"))),
        },
        POLL_EVERY + 2,
    );
    room.flush(POLL_EVERY + 2).durable();
    let effects = room.flush(POLL_EVERY + 2 + SAVE_EVERY).durable();
    let (_, pre) = save_request(&effects).expect("a save");
    assert_eq!(pre, Precondition::IfMatch("s9".into()));
    // An unchanged snapshot (304) changes nothing.
    let mut room = open(
        RoomRecords::default(),
        Ok(Some(snapshot("s1", edit(1, "one ")))),
    );
    room.handle(Event::Join { conn: 1 }, 0);
    room.flush(0).durable();
    room.flush(POLL_EVERY).durable();
    room.handle(Event::Polled(Ok(None)), POLL_EVERY + 1);
    let step = room.flush(POLL_EVERY + 1);
    assert!(step.append.is_none() && step.durable().is_empty());
}

#[test]
fn a_refused_update_changes_nothing_and_closes_only_its_sender() {
    let mut room = room_with_two();
    room.handle(
        Event::Frame {
            conn: 1,
            data: frame(protocol::encode_update(&edit(5, "kept"))),
        },
        1,
    );
    room.flush(1).durable();
    let before = state_of(&mut room, 1);
    let mut bad = edit(6, "bad");
    bad.truncate(bad.len() - 2);
    room.handle(
        Event::Frame {
            conn: 2,
            data: frame(protocol::encode_update(&bad)),
        },
        2,
    );
    room.handle(
        Event::Frame {
            conn: 2,
            data: frame(protocol::encode_update(&edit(7, "after"))),
        },
        2,
    );
    let step = room.flush(2);
    assert!(step.append.is_none(), "nothing logged");
    assert_eq!(step.tally.refused_frames, 1);
    let effects = step.durable();
    assert!(matches!(effects[0], Effect::Close { conn: 2, ref close } if close.code == 1008));
    assert!(deliveries(&effects).is_empty(), "nothing forwarded");
    assert_eq!(state_of(&mut room, 3), before);
    assert_eq!(room.connections(), 1);
}

#[test]
fn an_idle_room_drops_its_doc_and_rebuilds_it_from_its_log() {
    let mut room = room_with_two();
    let mut log = Vec::new();
    let mut records = RoomRecords::default();
    for (i, word) in ["alpha ", "beta "].iter().enumerate() {
        room.handle(
            Event::Frame {
                conn: 1,
                data: frame(protocol::encode_update(&edit(10 + i as u64, word))),
            },
            1,
        );
        let step = room.flush(1);
        log.push(record(&step.append.clone().unwrap(), i as i64 + 1));
        step.durable();
    }
    let room = match room.sleep() {
        Ok(_) => panic!("a dirty room keeps its doc"),
        Err(room) => room,
    };
    let mut room = room;
    let (_, _) = save_request(&room.flush(1 + SAVE_EVERY).durable()).expect("a save");
    room.handle(Event::Saved(Ok(receipt("s1"))), 2 + SAVE_EVERY);
    room.flush(2 + SAVE_EVERY).durable();
    let before = state_of(&mut room, 3 + SAVE_EVERY);
    records.seq = 2;
    records.saved_seq = 2;
    records.records = log;
    let asleep = room.sleep().ok().expect("a saved idle room sleeps");
    let mut room = asleep.wake(&records);
    assert_eq!(state_of(&mut room, 4 + SAVE_EVERY), before);
    // Still the same room: the clients, and the next edit gets the next sequence number.
    room.handle(
        Event::Frame {
            conn: 2,
            data: frame(protocol::encode_update(&edit(30, "gamma "))),
        },
        5 + SAVE_EVERY,
    );
    let step = room.flush(5 + SAVE_EVERY);
    assert_eq!(step.append.as_ref().unwrap().seq, 3);
    let out = deliveries(&step.durable());
    assert_eq!(out[0].0, Target::AllBut(2));
}

/// A room with one saved edit, asleep, and the log records it wakes from.
fn asleep_with(client: u64, word: &str) -> (SleepingRoom, RoomRecords, Vec<u8>) {
    let mut room = room_with_two();
    room.handle(
        Event::Frame {
            conn: 1,
            data: frame(protocol::encode_update(&edit(client, word))),
        },
        1,
    );
    let step = room.flush(1);
    let records = RoomRecords {
        seq: 1,
        saved_seq: 1,
        records: vec![record(&step.append.clone().unwrap(), 1)],
        ..RoomRecords::default()
    };
    step.durable();
    save_request(&room.flush(1 + SAVE_EVERY).durable()).expect("a save");
    room.handle(Event::Saved(Ok(receipt("s1"))), 2 + SAVE_EVERY);
    room.flush(2 + SAVE_EVERY).durable();
    let state = state_of(&mut room, 3 + SAVE_EVERY);
    let asleep = room.sleep().ok().expect("a saved idle room sleeps");
    (asleep, records, state)
}

#[test]
fn sleeping_rooms_share_no_doc_a_woken_room_has_its_own() {
    let (first, first_records, first_state) = asleep_with(10, "first ");
    let (second, second_records, second_state) = asleep_with(20, "second ");
    assert_ne!(first_state, second_state);
    let mut second = second.wake(&second_records);
    second.handle(
        Event::Frame {
            conn: 1,
            data: frame(protocol::encode_update(&edit(21, "more "))),
        },
        4 + SAVE_EVERY,
    );
    second.flush(4 + SAVE_EVERY).durable();
    let mut first = first.wake(&first_records);
    assert_eq!(
        state_of(&mut first, 5 + SAVE_EVERY),
        first_state,
        "the other room's edits are not in it"
    );
    assert_ne!(state_of(&mut second, 5 + SAVE_EVERY), second_state);
    let placeholder = crate::room_doc::RoomDoc::asleep();
    assert_eq!(
        placeholder.transact().state_vector(),
        yrs::StateVector::default(),
        "the doc sleeping rooms hold stays empty"
    );
}

#[test]
fn shutdown_saves_a_dirty_room_then_says_flushed() {
    let mut room = room_with_two();
    room.handle(
        Event::Frame {
            conn: 1,
            data: frame(protocol::encode_update(&edit(5, "x"))),
        },
        1,
    );
    room.flush(1).durable();
    room.handle(Event::Shutdown, 2);
    let effects = room.flush(2).durable();
    assert!(save_request(&effects).is_some());
    assert!(!effects.iter().any(|e| matches!(e, Effect::Flushed)));
    room.handle(Event::Saved(Err(StoreError::Unreachable("down".into()))), 3);
    let effects = room.flush(3).durable();
    assert!(
        effects.iter().any(|e| matches!(e, Effect::Flushed)),
        "a failed save ends the wait: the log keeps it"
    );
}

#[test]
fn a_store_snapshot_the_doc_cannot_take_is_never_replaced() {
    // The room's doc holds client 7's text with a deleted range; the store's snapshot names
    // one of those text items as a parent (a fuzz finding): yrs would apply it half-way.
    let own = Doc::with_client_id(7);
    let t = own.get_or_insert_text("t");
    t.insert(&mut own.transact_mut(), 0, "stored snapshot");
    t.remove_range(&mut own.transact_mut(), 0, 7);
    let own_state = own
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    let finding = include_bytes!(
        "../../../fuzz/regressions/snapshot_save/crash-c1d9159bc159df44c1d313ccde20189c9554d62c"
    );
    let theirs = yrs::merge_updates_v1([edit(200, "NEW").as_slice(), finding]).unwrap();
    let records = RoomRecords {
        seq: 1,
        saved_seq: 0,
        records: vec![LogRecord {
            id: 1,
            format: record_format::SNAPSHOT,
            data: own_state,
        }],
        ..RoomRecords::default()
    };
    let mut room = open(records, Ok(None));
    room.handle(Event::Shutdown, 1);
    let (_, pre) = save_request(&room.flush(1).durable()).expect("a save");
    assert_eq!(pre, Precondition::IfNoneMatch);
    room.handle(
        Event::Saved(Err(StoreError::Conflict {
            current: Some("s2".into()),
        })),
        2,
    );
    assert!(matches!(&room.flush(2).durable()[..], [Effect::Fetch]));
    room.handle(Event::Fetched(Ok(Some(snapshot("s2", theirs.clone())))), 3);
    let step = room.flush(3);
    assert!(step.append.is_none(), "nothing of it entered the doc");
    assert_eq!(step.tally.saves_failed, 1);
    let effects = step.durable();
    assert!(
        save_request(&effects).is_none(),
        "no save replaces a snapshot the room could not read"
    );
    let _ = theirs;
    // Its next save fetches the store's snapshot again rather than replace it blindly.
    room.reopen(5);
    let effects = room.flush(5).durable();
    assert!(matches!(&effects[..], [Effect::Fetch]), "{effects:?}");
}

#[test]
fn a_snapshot_over_the_limit_is_never_sent_and_the_room_still_unloads() {
    let mut cfg = config();
    cfg.max_snapshot_bytes = 64;
    let mut room = Room::open(
        name(),
        cfg,
        RoomRecords::default(),
        Ok(None),
        Purpose::Client,
        0,
    );
    room.flush(0);
    room.handle(Event::Join { conn: 1 }, 0);
    room.handle(
        Event::Frame {
            conn: 1,
            data: frame(protocol::encode_update(&edit(5, &"z".repeat(500)))),
        },
        0,
    );
    room.flush(0).durable();
    room.handle(Event::Leave { conn: 1 }, 1);
    room.flush(1).durable();
    let step = room.flush(1 + 7_000);
    assert_eq!(
        (step.tally.saves_too_large, step.tally.saves_failed),
        (1, 1)
    );
    let effects = step.durable();
    assert!(
        save_request(&effects).is_none(),
        "nothing over the limit goes to the store"
    );
    assert!(
        matches!(effects.last(), Some(Effect::Unload)),
        "no retry loop: the log keeps it"
    );
}

#[test]
fn a_resumed_room_serves_its_connections_from_the_log_and_saves_what_was_unsaved() {
    // Before: two connections, one edit logged but not saved, client 10's awareness announced.
    let mut room = room_with_two();
    let announce = awareness(&[(10, 3, r#"{"u":"a"}"#)]);
    room.handle(
        Event::Frame {
            conn: 1,
            data: frame(protocol::encode_awareness(&announce)),
        },
        1,
    );
    room.handle(
        Event::Frame {
            conn: 1,
            data: frame(protocol::encode_update(&edit(1, "kept"))),
        },
        1,
    );
    let step = room.flush(1);
    let append = step.append.clone().expect("the edit is logged");
    let kept = kept_of(&room, [1, 2]);
    assert_eq!(kept[0].awareness, vec![(10, 3)]);
    drop(room); // the host lost its memory; the connections stay open

    let records = RoomRecords {
        seq: append.seq,
        records: vec![record(&append, 1)],
        ..RoomRecords::default()
    };
    let mut room = Room::resume(name(), config(), records, &kept, 5_000);
    let first = room.flush(5_000);
    assert!(first.append.is_none());
    let effects = first.durable();
    assert!(
        deliveries(&effects).is_empty(),
        "a resumed room greets no one: its connections are in sync"
    );
    // The unsaved log is saved at once (the deadline the lost room had armed is gone), and the
    // save fetches the store first: the resumed room has not heard from it.
    assert!(effects.iter().any(|e| matches!(e, Effect::Fetch)));
    assert!(save_request(&effects).is_none());
    assert_eq!(room.connections(), 2);
    assert_eq!(text_of(&state_of(&mut room, 5_000)), "kept");

    // A frame from a resumed connection is served like any other.
    room.handle(
        Event::Frame {
            conn: 2,
            data: frame(protocol::encode_update(&edit(2, "more "))),
        },
        5_001,
    );
    let out = deliveries(&room.flush(5_001).durable());
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, Target::AllBut(2));

    // The connection leaves: everyone hears the removal of the client id it had announced.
    room.handle(Event::Leave { conn: 1 }, 5_002);
    let out = deliveries(&room.flush(5_002).durable());
    let Frame::Awareness { payload } = protocol::parse(out[0].1.bytes()).unwrap() else {
        panic!("an awareness removal")
    };
    let removal = AwarenessUpdate::decode_v1(&out[0].1.bytes()[payload]).unwrap();
    assert_eq!(removal.clients[&ClientID::new(10)].clock, 4);
}

/// The ykeep messages among `effects`, with their targets.
fn acks_of(effects: &[Effect]) -> Vec<(Target, ykeep_core::acks::Message)> {
    use ykeep_core::acks::{Decoded, decode};
    deliveries(effects)
        .into_iter()
        .filter_map(|(to, frame)| match decode(frame.bytes()) {
            Ok(Decoded::Message(m)) => Some((to, m)),
            _ => None,
        })
        .collect()
}

fn ykeep(message: ykeep_core::acks::Message) -> Bytes {
    frame(message.encode())
}

fn closes_of(effects: &[Effect]) -> Vec<(ConnId, u16)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Close { conn, close } => Some((*conn, close.code)),
            _ => None,
        })
        .collect()
}

#[test]
fn an_opted_in_connection_hears_each_mark_committed_then_saved() {
    use ykeep_core::acks::Message::*;
    let mut room = room_with_two();
    room.handle(
        Event::Frame {
            conn: 1,
            data: ykeep(OptIn),
        },
        1,
    );
    room.handle(Event::Join { conn: 3 }, 1);
    room.handle(Event::OptIn { conn: 3 }, 1);
    let step = room.flush(1);
    assert!(step.append.is_none());
    let welcomed = acks_of(&step.durable());
    assert_eq!(
        welcomed,
        [(Target::One(1), Welcome), (Target::One(3), Welcome)]
    );

    // An update, then its mark: Committed comes with the step whose append holds the update.
    let update = |room: &mut Room, conn, text: &str, mark, now| {
        let data = frame(protocol::encode_update(&edit(10 + conn, text)));
        room.handle(Event::Frame { conn, data }, now);
        room.handle(
            Event::Frame {
                conn,
                data: ykeep(Mark(mark)),
            },
            now,
        );
    };
    update(&mut room, 1, "a", 1, 2);
    room.handle(
        Event::Frame {
            conn: 2,
            data: ykeep(Mark(9)),
        },
        2,
    );
    let step = room.flush(2);
    assert_eq!(step.append.as_ref().map(|a| a.seq), Some(1));
    let effects = step.durable();
    assert_eq!(
        acks_of(&effects),
        [(Target::One(1), Committed(1))],
        "2 never opted in"
    );
    let order: Vec<_> = deliveries(&effects).into_iter().map(|(to, _)| to).collect();
    assert_eq!(
        order,
        [Target::AllBut(1), Target::One(1)],
        "the forward, then the ack"
    );

    // A mark whose batch fails its append is never acknowledged.
    update(&mut room, 1, "lost", 2, 3);
    drop(room.flush(3));
    let mut failed = room;
    assert!(acks_of(&failed.log_failed()).is_empty());
    failed.flush(4);

    // Saves: a mark committed while a save is in flight waits for the next save.
    let mut room = room_with_two();
    room.handle(Event::OptIn { conn: 1 }, 0);
    update(&mut room, 1, "a", 1, 0);
    assert_eq!(
        acks_of(&room.flush(0).durable())[1],
        (Target::One(1), Committed(1))
    );
    let due = room.flush(SAVE_EVERY).durable();
    assert!(save_request(&due).is_some(), "a save is due");
    update(&mut room, 1, "b", 2, SAVE_EVERY + 1);
    assert_eq!(
        acks_of(&room.flush(SAVE_EVERY + 1).durable()),
        [(Target::One(1), Committed(2))]
    );
    room.handle(Event::Saved(Ok(receipt("s1"))), SAVE_EVERY + 2);
    let saved = room.flush(SAVE_EVERY + 2).durable();
    assert_eq!(
        acks_of(&saved),
        [(Target::One(1), Saved(1))],
        "the save covers mark 1 only"
    );

    // A store that fails keeps the mark at Committed.
    let due = room.flush(2 * SAVE_EVERY + 2).durable();
    assert!(save_request(&due).is_some(), "the next save is due");
    room.handle(
        Event::Saved(Err(StoreError::Unreachable("down".into()))),
        2 * SAVE_EVERY + 3,
    );
    assert!(acks_of(&room.flush(2 * SAVE_EVERY + 3).durable()).is_empty());
    let owed = room.owed(1).expect("conn 1 opted in");
    assert_eq!(owed.unsaved(), [(2, 2)], "mark 2 is still owed its Saved");
}

#[test]
fn a_mark_on_what_a_save_already_covers_is_saved_at_once() {
    use ykeep_core::acks::Message::*;
    let mark = |room: &mut Room, conn, n, now| {
        room.handle(
            Event::Frame {
                conn,
                data: ykeep(Mark(n)),
            },
            now,
        );
    };
    let mut room = room_with_two();
    room.handle(Event::OptIn { conn: 1 }, 0);
    let data = frame(protocol::encode_update(&edit(11, "a")));
    room.handle(Event::Frame { conn: 1, data }, 0);
    mark(&mut room, 1, 1, 0);
    drop(room.flush(0));
    assert!(save_request(&room.flush(SAVE_EVERY).durable()).is_some());
    room.handle(Event::Saved(Ok(receipt("s1"))), SAVE_EVERY + 1);
    assert_eq!(
        acks_of(&room.flush(SAVE_EVERY + 1).durable()),
        [(Target::One(1), Saved(1))]
    );

    // A page that only loaded, or reconnected, marks what it holds: the store has all of it, and
    // no later save would come to say so.
    mark(&mut room, 1, 7, SAVE_EVERY + 2);
    let step = room.flush(SAVE_EVERY + 2);
    assert!(step.append.is_none());
    assert_eq!(
        acks_of(&step.durable()),
        [(Target::One(1), Committed(7)), (Target::One(1), Saved(7))]
    );
    assert_eq!(room.owed(1).map(Owed::unsaved), Some(&[][..]));

    // With an update of another connection not saved yet, the mark waits for the save.
    let data = frame(protocol::encode_update(&edit(12, "b")));
    room.handle(Event::Frame { conn: 2, data }, SAVE_EVERY + 3);
    drop(room.flush(SAVE_EVERY + 3));
    mark(&mut room, 1, 8, SAVE_EVERY + 4);
    assert_eq!(
        acks_of(&room.flush(SAVE_EVERY + 4).durable()),
        [(Target::One(1), Committed(8))]
    );
}

#[test]
fn bad_ykeep_messages_close_their_sender_and_unknown_kinds_are_ignored() {
    use ykeep_core::acks::{MESSAGE_TYPE, Message::*};
    let mut room = room_with_two();
    room.handle(
        Event::Frame {
            conn: 1,
            data: frame(vec![MESSAGE_TYPE, 9, 1]),
        },
        1,
    );
    room.handle(
        Event::Frame {
            conn: 1,
            data: ykeep(Mark(3)),
        },
        1,
    );
    let effects = room.flush(1).durable();
    assert!(
        effects.is_empty(),
        "an unknown kind, and a mark before OptIn: {effects:?}"
    );
    room.handle(
        Event::Frame {
            conn: 1,
            data: ykeep(Committed(3)),
        },
        2,
    );
    room.handle(
        Event::Frame {
            conn: 2,
            data: frame(vec![MESSAGE_TYPE, 1]),
        },
        2,
    );
    let effects = room.flush(2).durable();
    assert_eq!(closes_of(&effects), [(1, 1008), (2, 1008)]);
    assert_eq!(room.connections(), 0);
}

#[test]
fn a_resumed_room_still_owes_its_connections_their_saves() {
    use ykeep_core::acks::Message::*;
    let mut room = room_with_two();
    room.handle(Event::OptIn { conn: 1 }, 0);
    let data = frame(protocol::encode_update(&edit(5, "kept")));
    room.handle(Event::Frame { conn: 1, data }, 0);
    room.handle(
        Event::Frame {
            conn: 1,
            data: ykeep(Mark(4)),
        },
        0,
    );
    let step = room.flush(0);
    let append = step.append.clone().unwrap();
    assert_eq!(acks_of(&step.durable())[1], (Target::One(1), Committed(4)));
    let kept = kept_of(&room, [1, 2]);
    assert!(kept[1].owed.is_none());
    drop(room);

    let records = RoomRecords {
        seq: append.seq,
        records: vec![record(&append, 1)],
        ..RoomRecords::default()
    };
    let mut room = Room::resume(name(), config(), records, &kept, 1_000);
    let effects = room.flush(1_000).durable();
    assert!(
        effects.iter().any(|e| matches!(e, Effect::Fetch)),
        "saved at once"
    );
    room.handle(Event::Fetched(Ok(None)), 1_000 + SAVE_EVERY);
    assert!(save_request(&room.flush(1_000 + SAVE_EVERY).durable()).is_some());
    room.handle(Event::Saved(Ok(receipt("s1"))), 1_001 + SAVE_EVERY);
    assert_eq!(
        acks_of(&room.flush(1_001 + SAVE_EVERY).durable()),
        [(Target::One(1), Saved(4))]
    );
}

/// Frames of one run (consecutive updates from any connections), then the flush.
fn send_run(room: &mut Room, frames: &[(ConnId, Vec<u8>)], now: u64) -> Step {
    for (conn, update) in frames {
        let data = frame(protocol::encode_update(update));
        room.handle(Event::Frame { conn: *conn, data }, now);
    }
    room.flush(now)
}

fn room_with(conns: &[ConnId]) -> Room {
    let mut room = fresh();
    for &conn in conns {
        room.handle(Event::Join { conn }, 0);
    }
    room.flush(0).durable();
    room
}

#[test]
fn a_run_with_a_culprit_in_the_middle_refuses_only_it_and_applies_the_rest_in_order() {
    let mut room = room_with(&[1, 2, 3]);
    let mut bad = edit(6, "bad");
    bad.truncate(bad.len() - 2);
    let (a, c, d) = (edit(5, "a"), edit(7, "c"), edit(8, "d"));
    let step = send_run(
        &mut room,
        &[
            (1, a.clone()),
            (2, bad),
            (3, c.clone()),
            (2, edit(9, "after its refusal")),
            (1, d.clone()),
        ],
        1,
    );
    assert_eq!(step.tally.updates, 3);
    assert_eq!(step.tally.refused_frames, 1);
    let append = step.append.as_ref().expect("the others are logged");
    let logged = protocol::read_len_prefixed(&append.data).unwrap();
    assert_eq!(logged, [a.as_slice(), c.as_slice(), d.as_slice()]);
    let effects = step.durable();
    assert!(matches!(&effects[0], Effect::Close { conn: 2, close }
        if close.code == 1008 && close.reason.starts_with("bad Yjs update")));
    let forwarded: Vec<_> = deliveries(&effects)
        .into_iter()
        .map(|(to, f)| (to, update_payload(&f)))
        .collect();
    assert_eq!(
        forwarded,
        [
            (Target::AllBut(1), a),
            (Target::AllBut(3), c),
            (Target::AllBut(1), d)
        ]
    );
    assert_eq!(room.connections(), 2);
    let text = text_of(&state_of(&mut room, 2));
    assert!(["a", "c", "d"].iter().all(|t| text.contains(t)) && !text.contains("after"));
}

/// Marks, a SyncStep1 and awareness between updates settle the run first: the SyncStep2 holds
/// exactly the updates before it, the forwards keep their order, each mark is committed.
#[test]
fn effects_keep_their_order_with_marks_sync_step1_and_awareness_between_updates() {
    use ykeep_core::acks::Message::*;
    let mut room = room_with(&[1, 2]);
    room.handle(Event::OptIn { conn: 1 }, 0);
    room.flush(0).durable();
    let send = |room: &mut Room, conn, data: Bytes| room.handle(Event::Frame { conn, data }, 1);
    let (a, b, c) = (edit(11, "a"), edit(12, "b"), edit(13, "c"));
    send(&mut room, 1, frame(protocol::encode_update(&a)));
    send(&mut room, 1, ykeep(Mark(1)));
    send(&mut room, 2, frame(protocol::encode_update(&b)));
    send(&mut room, 2, frame(protocol::encode_step1(&[0])));
    send(
        &mut room,
        2,
        frame(protocol::encode_awareness(&awareness(&[(40, 1, "{}")]))),
    );
    send(&mut room, 1, frame(protocol::encode_update(&c)));
    send(&mut room, 1, ykeep(Mark(2)));
    let step = room.flush(1);
    let logged = protocol::read_len_prefixed(&step.append.as_ref().unwrap().data)
        .unwrap()
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect::<Vec<_>>();
    assert_eq!(logged, [a.clone(), b.clone(), c.clone()]);
    let effects = step.durable();
    let order: Vec<_> = deliveries(&effects)
        .into_iter()
        .map(|(to, f)| match protocol::parse(f.bytes()).unwrap() {
            Frame::Update { .. } => (to, format!("update {}", text_of(&update_payload(&f)))),
            Frame::SyncStep2 { update } => (to, format!("step2 {}", text_of(&f.bytes()[update]))),
            Frame::Awareness { .. } => (to, "awareness".into()),
            Frame::Ykeep => (to, "ack".into()),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    // The SyncStep2 holds a and b (the updates before it), not c.
    let step2 = text_of(&yrs::merge_updates_v1([a.as_slice(), b.as_slice()]).unwrap());
    assert_eq!(
        order,
        [
            (Target::AllBut(1), "update a".to_string()),
            (Target::AllBut(2), "update b".to_string()),
            (Target::One(2), format!("step2 {step2}")),
            (Target::AllBut(2), "awareness".to_string()),
            (Target::AllBut(1), "update c".to_string()),
            (Target::One(1), "ack".to_string()),
        ]
    );
    assert_eq!(acks_of(&effects), [(Target::One(1), Committed(2))]);
}

/// Every fuzz regression body (fuzz/regressions/snapshot_save/), sent between two honest
/// updates of one run, is refused as it is alone, and the room's doc, log and forwards are
/// those of a room that never saw it.
#[test]
fn fuzz_regressions_inside_a_run_are_refused_with_the_doc_untouched() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fuzz/regressions/snapshot_save"
    );
    let mut bodies: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert!(bodies.len() >= 8);
    // Finding c1d9159b behind an insert by client 200 (yrs would leave the insert in).
    let finding = include_bytes!(
        "../../../fuzz/regressions/snapshot_save/crash-c1d9159bc159df44c1d313ccde20189c9554d62c"
    );
    bodies.push(yrs::merge_updates_v1([edit(200, "NEW").as_slice(), finding]).unwrap());
    // What the snapshot_save target stores: client 7's text, its first 7 characters deleted.
    let stored = {
        let doc = Doc::with_client_id(7);
        let t = doc.get_or_insert_text("t");
        t.insert(&mut doc.transact_mut(), 0, "stored snapshot");
        t.remove_range(&mut doc.transact_mut(), 0, 7);
        doc.transact()
            .encode_state_as_update_v1(&StateVector::default())
    };
    let (a, b) = (edit(5, "a"), edit(6, "b"));
    let run_with = |body: Option<&[u8]>| {
        let mut room = room_with(&[1, 2, 3]);
        send_run(&mut room, &[(1, stored.clone())], 1).durable();
        let mut run = vec![(1, a.clone())];
        run.extend(body.map(|body| (3, body.to_vec())));
        run.push((2, b.clone()));
        let step = send_run(&mut room, &run, 2);
        let (log, refused) = (step.append.as_ref().unwrap().data.clone(), step.tally);
        let forwards: Vec<_> = deliveries(&step.durable())
            .into_iter()
            .filter(|(_, f)| matches!(f, OutFrame::Update { .. }))
            .collect();
        (
            state_of(&mut room, 3),
            log,
            forwards,
            refused.refused_frames,
        )
    };
    let honest = run_with(None);
    for (i, body) in bodies.iter().enumerate() {
        let (state, log, forwards, refused) = run_with(Some(body));
        assert_eq!(refused, 1, "regression {i} is refused");
        assert_eq!(
            (state, log, forwards),
            (honest.0.clone(), honest.1.clone(), honest.2.clone()),
            "regression {i}: the room is as if it never came"
        );
    }
}
