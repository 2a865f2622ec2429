//! Counters and gauges, rendered as Prometheus text at `/metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! metrics {
    ($($name:ident: $kind:literal, $help:literal;)*) => {
        /// Process-wide counters (relaxed atomics: they are statistics, not synchronisation).
        #[derive(Debug, Default)]
        pub struct Metrics {
            $(pub $name: AtomicU64,)*
        }

        impl Metrics {
            /// Prometheus text exposition format.
            pub fn render(&self) -> String {
                let mut out = String::new();
                $(
                    let name = concat!("ykeep_", stringify!($name));
                    let _ = writeln!(out, "# HELP {name} {}", $help);
                    let _ = writeln!(out, "# TYPE {name} {}", $kind);
                    let _ = writeln!(out, "{name} {}", self.$name.load(Ordering::Relaxed));
                )*
                out
            }
        }
    };
}

metrics! {
    rooms: "gauge", "Rooms in memory.";
    rooms_asleep: "gauge", "Rooms in memory asleep: idle for --room-sleep-ms and saved, their doc dropped until the next event rebuilds it from the local log.";
    room_wakes_total: "counter", "Sleeping rooms woken (their records read from the local log and replayed).";
    room_wake_micros_total: "counter", "Time spent waking sleeping rooms (log read + replay), microseconds.";
    connections: "gauge", "Open WebSocket connections.";
    updates_total: "counter", "Yjs updates accepted and committed to the local log.";
    update_bytes_total: "counter", "Bytes of accepted Yjs updates.";
    log_commits_total: "counter", "Group commits of the local log (one per room batch).";
    saves_ok_total: "counter", "Successful snapshot saves.";
    saves_failed_total: "counter", "Failed snapshot saves (room stays dirty).";
    saves_refused_total: "counter", "Saves the store answered with an error other than a conflict or resource_deleted (a wrong URL, a 404 page, a 5xx...): logged with the URL, status and body head; the room stays dirty.";
    rooms_quarantined_total: "counter", "Rooms whose store resource was deleted (resource_deleted): their local log moved to the quarantine.";
    quarantine_purged_total: "counter", "Quarantined rooms deleted after --deleted-retention.";
    saves_too_large_total: "counter", "Saves refused because the snapshot is over the limit.";
    save_conflicts_total: "counter", "Saves that met a 409 and merged the store's snapshot.";
    saved_bytes_total: "counter", "Bytes of snapshots saved.";
    save_seconds_sum_micros: "counter", "Total save latency in microseconds.";
    save_seconds_count: "counter", "Saves timed (ok and failed).";
    refused_connections_total: "counter", "WebSocket connections refused (room, auth).";
    malformed_frames_total: "counter", "Frames refused as malformed or oversized.";
    slow_reader_closes_total: "counter", "Readers closed (1013) because their backlog grew over the limit.";
    cold_starts_total: "counter", "Rooms loaded from the local log and the store.";
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        // Most counts of a room's step are 0: skip the atomic write (a shared cache line).
        if n > 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn dec(counter: &AtomicU64) {
        counter.fetch_sub(1, Ordering::Relaxed);
    }
}
