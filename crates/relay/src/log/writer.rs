//! The log's one writing connection: a dedicated thread that commits whatever requests are
//! waiting in one transaction (group commit across rooms).

use rusqlite::{Connection, params};
use tokio::sync::mpsc;

use std::sync::Arc;

use super::{Request, Write, purge_quarantine, record_format};

pub(super) fn writer_loop(mut conn: Connection, mut rx: mpsc::UnboundedReceiver<Request>) {
    let mut batch = Vec::new();
    let mut purges = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        let mut next = Some(first);
        while let Some(req) = next.take() {
            match req {
                Request::Write(w) => batch.push(w),
                Request::Purge { before_ms, done } => purges.push((before_ms, done)),
            }
            if batch.len() < 4096 {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            let result = commit(&mut conn, &batch).map_err(Arc::new);
            if let Err(e) = &result {
                tracing::error!(error = %e, "local log commit failed");
            }
            for req in batch.drain(..) {
                let done = match req {
                    Write::Append { done, .. } => done,
                    Write::Saved { done, .. } => done,
                    Write::Quarantine { done, .. } => done,
                };
                let _ = done.send(result.clone());
            }
        }
        for (before_ms, done) in purges.drain(..) {
            let _ = done.send(purge_quarantine(&mut conn, before_ms));
        }
    }
}

fn commit(conn: &mut Connection, batch: &[Write]) -> Result<(), rusqlite::Error> {
    let tx = conn.transaction()?;
    for req in batch {
        match req {
            Write::Append {
                room,
                seq,
                format,
                data,
                ..
            } => {
                tx.prepare_cached(
                    "INSERT INTO records (room, seq, format, data) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![room.as_ref(), *seq as i64, format, data])?;
                tx.prepare_cached(
                    "INSERT INTO rooms (room, seq) VALUES (?1, ?2)
                     ON CONFLICT (room) DO UPDATE SET seq = max(seq, excluded.seq)",
                )?
                .execute(params![room.as_ref(), *seq as i64])?;
            }
            Write::Saved { room, saved, .. } => {
                let seq = saved.saved_seq as i64;
                // Only what the save held: records up to its sequence number, minus those the
                // room could not read.
                let keep = serde_json::to_string(&saved.keep).expect("ids serialize");
                tx.prepare_cached(
                    "DELETE FROM records WHERE room = ?1 AND seq <= ?2
                     AND id NOT IN (SELECT value FROM json_each(?3))",
                )?
                .execute(params![room.as_ref(), seq, keep])?;
                tx.prepare_cached(
                    "INSERT INTO records (room, seq, format, data) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![
                    room.as_ref(),
                    seq,
                    record_format::SNAPSHOT,
                    saved.compacted
                ])?;
                tx.prepare_cached(
                    "INSERT INTO rooms (room, seq, saved_seq, store_snapshot_id, store_marker,
                                        saved_at)
                     VALUES (?1, ?2, ?2, ?3, ?4, ?5)
                     ON CONFLICT (room) DO UPDATE SET
                        saved_seq = max(saved_seq, excluded.saved_seq),
                        store_snapshot_id = excluded.store_snapshot_id,
                        store_marker = excluded.store_marker,
                        saved_at = excluded.saved_at",
                )?
                .execute(params![
                    room.as_ref(),
                    seq,
                    saved.store_snapshot_id,
                    saved.store_marker,
                    saved.saved_at
                ])?;
            }
            Write::Quarantine {
                room,
                at_ms,
                reason,
                ..
            } => {
                let moved = tx
                    .prepare_cached("SELECT count(*) FROM records WHERE room = ?1")?
                    .query_row([room.as_ref()], |r| r.get::<_, i64>(0))?;
                if moved > 0 {
                    tx.prepare_cached(
                        "INSERT INTO quarantine (room, quarantined_at, reason) VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![room.as_ref(), at_ms, reason])?;
                    let id = tx.last_insert_rowid();
                    tx.prepare_cached(
                        "INSERT INTO quarantine_records (quarantine_id, seq, format, data)
                         SELECT ?1, seq, format, data FROM records WHERE room = ?2 ORDER BY seq, id",
                    )?
                    .execute(params![id, room.as_ref()])?;
                }
                tx.prepare_cached("DELETE FROM records WHERE room = ?1")?
                    .execute([room.as_ref()])?;
                tx.prepare_cached("DELETE FROM rooms WHERE room = ?1")?
                    .execute([room.as_ref()])?;
            }
        }
    }
    tx.commit()
}
