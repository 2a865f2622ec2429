//! `ykeep-relay quarantine list | export`: what the relay kept of rooms whose resource the
//! store deleted.
//!
//! A room moves here, whole, only when the store answers `resource_deleted` (a row deleted
//! through the contract). It stays for `--deleted-retention` (default 7 days), then the relay
//! purges it. Until then `export` writes its content as one Yjs v1 update, which
//! `Y.applyUpdate` (or yrs) reads, so an accidental delete can be undone by saving it again.

use std::io::Write;
use std::path::Path;

use yrs::{Doc, ReadTxn, StateVector, Transact};

use crate::log::{LogError, LogReader, QuarantineEntry};

#[derive(Debug, thiserror::Error)]
pub enum QuarantineError {
    #[error("cannot read the relay log in {dir}: {source}")]
    Log { dir: String, source: LogError },
    #[error("no quarantined room with id {0} (`ykeep-relay quarantine list` shows the ids)")]
    NoSuchId(i64),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

fn reader(relay_dir: &Path) -> Result<LogReader, QuarantineError> {
    LogReader::open(relay_dir).map_err(|source| QuarantineError::Log {
        dir: relay_dir.display().to_string(),
        source,
    })
}

/// Every quarantined room in the log under `relay_dir`, oldest first.
pub fn list(relay_dir: &Path) -> Result<Vec<QuarantineEntry>, QuarantineError> {
    reader(relay_dir)?
        .quarantined()
        .map_err(|source| QuarantineError::Log {
            dir: relay_dir.display().to_string(),
            source,
        })
}

/// One line per entry, with a header, as `list` prints it.
pub fn write_list(entries: &[QuarantineEntry], out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "id\troom\tquarantined_at_ms\trecords\tbytes\treason")?;
    for e in entries {
        writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{}",
            e.id, e.room, e.quarantined_at, e.records, e.bytes, e.reason
        )?;
    }
    Ok(())
}

/// What an export produced.
#[derive(Debug)]
pub struct Exported {
    pub entry: QuarantineEntry,
    /// The room's full state as one Yjs v1 update.
    pub update: Vec<u8>,
    /// Records that could not be read (another format, undecodable): not in `update`.
    pub unreadable: usize,
}

/// The content of quarantined room `id` as one Yjs v1 update.
pub fn export(relay_dir: &Path, id: i64) -> Result<Exported, QuarantineError> {
    let log_error = |source| QuarantineError::Log {
        dir: relay_dir.display().to_string(),
        source,
    };
    let (entry, records) = reader(relay_dir)?
        .quarantine_records(id)
        .map_err(log_error)?
        .ok_or(QuarantineError::NoSuchId(id))?;
    let doc = Doc::new();
    let room = ykeep_core::RoomName::parse(&entry.room).ok();
    let unreadable = match &room {
        Some(room) => ykeep_room::apply_records(&doc, &records, room).len(),
        None => records.len(),
    };
    let update = doc
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    Ok(Exported {
        entry,
        update,
        unreadable,
    })
}

/// `export` to a file, or to stdout for `-`.
pub fn export_to(relay_dir: &Path, id: i64, out: &Path) -> Result<Exported, QuarantineError> {
    let exported = export(relay_dir, id)?;
    let write_error = |source| QuarantineError::Write {
        path: out.display().to_string(),
        source,
    };
    if out == Path::new("-") {
        let mut stdout = std::io::stdout();
        stdout.write_all(&exported.update).map_err(write_error)?;
        stdout.flush().map_err(write_error)?;
    } else {
        std::fs::write(out, &exported.update).map_err(write_error)?;
    }
    Ok(exported)
}
