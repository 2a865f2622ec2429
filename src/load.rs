//! The load chain's pure half: what each source returned, merged into one update, and the report.
//!
//! The fetching lives in the wasm-only engine; this module gets bytes (or a failure) per source
//! and never does I/O, so it is tested natively.

use yrs::updates::decoder::Decode;
use yrs::{Doc, ReadTxn, StateVector, Transact, Update};

use crate::error::KeepError;

/// The places a room's state is loaded from, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Relay,
    Store,
    Indexeddb,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Relay => "relay",
            Source::Store => "store",
            Source::Indexeddb => "indexeddb",
        }
    }
}

/// What one source gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// Bytes of a Yjs v1 update (for IndexedDB: the compacted state and the log entries).
    Data(Vec<Vec<u8>>),
    /// IndexedDB only: the cache is one compacted record of this many bytes, and no remote source
    /// has data, so the record is handed to the document as it was read, without being copied
    /// here or decoded (our own compaction wrote it from a decoded state). The caller keeps the
    /// bytes; `Merged::cache_as_is` tells it to hand them over. A caller with remote data passes
    /// `Data` instead, so that the cache takes part in the merge.
    Held(usize),
    /// The source answered `304`: it holds nothing the cache lacks (relay: the cache's state tag
    /// is the room's; store: the cache holds its current snapshot).
    Unchanged,
    /// The source answered that it has nothing (relay 404 = no live room, store 404, empty cache).
    Missing,
    /// Not asked (no URL configured, IndexedDB unavailable).
    Skipped(String),
    /// Network error, HTTP error status, timeout.
    Failed(String),
    TimedOut,
}

/// One line of the load report.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceReport {
    pub source: Source,
    /// `ok`, `unchanged`, `missing`, `skipped`, `error`, `timeout` or `corrupt`.
    pub status: &'static str,
    pub bytes: usize,
    pub ms: f64,
    pub error: Option<String>,
}

/// The result of a load: one update to hand to the `Y.Doc`, and what each source did.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadReport {
    pub sources: Vec<SourceReport>,
    /// Bytes of the merged update handed to the document.
    pub merged_bytes: usize,
    pub total_ms: f64,
    /// True when any source answered with data.
    pub loaded: bool,
}

/// The merge of all sources.
#[derive(Debug)]
pub struct Merged {
    /// One Yjs v1 update holding the union of every source that answered (empty = nothing).
    pub update: Vec<u8>,
    pub report: LoadReport,
    /// A diff of the remote sources against the cache, when they hold anything the cache lacks
    /// (to append to the cache); `None` when the cache already covers them.
    pub new_for_cache: Option<Vec<u8>>,
    /// True when the update to hand over is the cache record the caller held back
    /// ([`Fetched::Held`]); `update` is then empty.
    pub cache_as_is: bool,
}

/// Merges what the sources gave. `fetched` is `(source, outcome, ms)`; the report keeps the
/// order relay → store → IndexedDB whatever order they arrive in. A blob that does not decode
/// is reported `corrupt` and skipped; the others still load.
pub fn merge_sources(mut fetched: Vec<(Source, Fetched, f64)>) -> Merged {
    fetched.sort_by_key(|(s, _, _)| *s as u8);
    let mut reports = Vec::with_capacity(fetched.len());
    let mut cache: Vec<Vec<u8>> = Vec::new();
    let mut remote: Vec<Update> = Vec::new();
    let mut held = 0;
    for (source, outcome, ms) in fetched {
        let mut report = SourceReport {
            source,
            status: "ok",
            bytes: 0,
            ms,
            error: None,
        };
        match outcome {
            Fetched::Data(blobs) => {
                report.bytes = blobs.iter().map(Vec::len).sum();
                // A compacted cache alone (one blob, written by our own compaction) is handed
                // over without a decode here when nothing remote came (sources arrive in report
                // order, so `remote` is complete): on a repeat visit that decode would cost as much
                // as the read. The JS glue reports it `corrupt` if `Y.applyUpdate` refuses it.
                if source == Source::Indexeddb && blobs.len() == 1 && remote.is_empty() {
                    cache = blobs;
                    reports.push(report);
                    continue;
                }
                // Decode everything before using any of it: one bad blob marks the source corrupt.
                let decoded: Result<Vec<Update>, _> = blobs
                    .iter()
                    .filter(|b| !b.is_empty())
                    .map(|b| Update::decode_v1(b))
                    .collect();
                match decoded {
                    Err(e) => {
                        report.status = "corrupt";
                        report.error = Some(format!("not a Yjs v1 update: {e}"));
                    }
                    Ok(updates) if source == Source::Indexeddb => {
                        drop(updates);
                        cache = blobs;
                    }
                    Ok(updates) => remote.extend(updates),
                }
            }
            Fetched::Held(bytes) => {
                report.bytes = bytes;
                held = bytes;
            }
            Fetched::Unchanged => report.status = "unchanged",
            Fetched::Missing => report.status = "missing",
            Fetched::Skipped(why) => {
                report.status = "skipped";
                report.error = Some(why);
            }
            Fetched::Failed(why) => {
                report.status = "error";
                report.error = Some(why);
            }
            Fetched::TimedOut => {
                report.status = "timeout";
                report.error = Some("no answer before the timeout".into());
            }
        }
        reports.push(report);
    }
    let loaded = reports.iter().any(|r| r.status == "ok" && r.bytes > 0);
    if held > 0 && remote.is_empty() {
        return Merged {
            report: LoadReport {
                sources: reports,
                merged_bytes: held,
                total_ms: 0.0,
                loaded,
            },
            update: Vec::new(),
            new_for_cache: None,
            cache_as_is: true,
        };
    }
    // A held record next to remote data breaks the `Held` contract: say so rather than hand over
    // a state without the cache (which stays in IndexedDB and merges at the next load).
    if held > 0 {
        if let Some(r) = reports.iter_mut().find(|r| r.source == Source::Indexeddb) {
            r.status = "error";
            r.error = Some("the cache record was not read for the merge".into());
        }
    }
    let (update, new_for_cache) = match merge(cache, remote) {
        Ok(pair) => pair,
        Err(e) => {
            // Apply failures after a clean decode are rare; report them on every data source.
            for r in reports.iter_mut().filter(|r| r.status == "ok") {
                r.status = "corrupt";
                r.error = Some(e.to_string());
            }
            (Vec::new(), None)
        }
    };
    Merged {
        report: LoadReport {
            sources: reports,
            merged_bytes: update.len(),
            total_ms: 0.0,
            loaded,
        },
        update,
        new_for_cache,
        cache_as_is: false,
    }
}

fn merge(
    cache: Vec<Vec<u8>>,
    remote: Vec<Update>,
) -> Result<(Vec<u8>, Option<Vec<u8>>), KeepError> {
    let non_empty: Vec<Vec<u8>> = cache.into_iter().filter(|b| !b.is_empty()).collect();
    // Fast path (a repeat visit with a compacted cache and nothing remote): the stored state
    // is already one full update; hand it over as it is.
    if remote.is_empty() && non_empty.len() <= 1 {
        return Ok((non_empty.into_iter().next().unwrap_or_default(), None));
    }
    let doc = Doc::new();
    {
        let mut txn = doc.transact_mut();
        for blob in &non_empty {
            let u = Update::decode_v1(blob)
                .map_err(|e| ykeep_core::MergeError::Decode(e.to_string()))?;
            txn.apply_update(u)
                .map_err(|e| ykeep_core::MergeError::Apply(e.to_string()))?;
        }
    }
    let (cached_sv, cached_snapshot) = {
        let txn = doc.transact();
        (txn.state_vector(), txn.snapshot())
    };
    if !remote.is_empty() {
        let mut txn = doc.transact_mut();
        for u in remote {
            txn.apply_update(u)
                .map_err(|e| ykeep_core::MergeError::Apply(e.to_string()))?;
        }
    }
    let txn = doc.transact();
    let merged = txn.encode_state_as_update_v1(&StateVector::default());
    let after = txn.snapshot();
    let new_for_cache = if after == cached_snapshot {
        None
    } else {
        Some(txn.encode_state_as_update_v1(&cached_sv))
    };
    Ok((merged, new_for_cache))
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::{GetString, Text};

    fn doc_text(client: u64, text: &str) -> Doc {
        let d = Doc::with_client_id(client);
        d.get_or_insert_text("t")
            .insert(&mut d.transact_mut(), 0, text);
        d
    }
    fn full(d: &Doc) -> Vec<u8> {
        d.transact()
            .encode_state_as_update_v1(&StateVector::default())
    }
    fn text_of(update: &[u8]) -> String {
        let d = Doc::new();
        d.transact_mut()
            .apply_update(Update::decode_v1(update).unwrap())
            .unwrap();
        d.get_or_insert_text("t").get_string(&d.transact())
    }

    #[test]
    fn three_sources_merge_and_report_in_order() {
        let (a, b, c) = (
            doc_text(1, "relay "),
            doc_text(2, "store "),
            doc_text(3, "cache"),
        );
        let m = merge_sources(vec![
            (Source::Indexeddb, Fetched::Data(vec![full(&c)]), 1.0),
            (Source::Store, Fetched::Data(vec![full(&b)]), 2.0),
            (Source::Relay, Fetched::Data(vec![full(&a)]), 3.0),
        ]);
        let order: Vec<_> = m.report.sources.iter().map(|r| r.source).collect();
        assert_eq!(order, [Source::Relay, Source::Store, Source::Indexeddb]);
        let text = text_of(&m.update);
        for part in ["relay ", "store ", "cache"] {
            assert!(text.contains(part), "{text:?} lacks {part:?}");
        }
        assert!(m.new_for_cache.is_some());
        assert!(m.report.loaded);
    }

    #[test]
    fn corrupt_and_failed_sources_are_reported_and_skipped() {
        let c = doc_text(3, "cached");
        let m = merge_sources(vec![
            (
                Source::Relay,
                Fetched::Data(vec![b"\xff\xff\xff\xffgarbage".to_vec()]),
                1.0,
            ),
            (Source::Store, Fetched::Failed("HTTP 500".into()), 1.0),
            (Source::Indexeddb, Fetched::Data(vec![full(&c)]), 1.0),
        ]);
        let statuses: Vec<_> = m.report.sources.iter().map(|r| r.status).collect();
        assert_eq!(statuses, ["corrupt", "error", "ok"]);
        assert_eq!(text_of(&m.update), "cached");
        assert!(m.new_for_cache.is_none(), "nothing remote is new");
    }

    #[test]
    fn cache_only_is_handed_over_unchanged() {
        let c = full(&doc_text(3, "x"));
        let m = merge_sources(vec![
            (Source::Relay, Fetched::Missing, 0.0),
            (Source::Store, Fetched::TimedOut, 0.0),
            (Source::Indexeddb, Fetched::Data(vec![c.clone()]), 0.0),
        ]);
        assert_eq!(m.update, c);
        assert_eq!(m.report.sources[1].status, "timeout");
    }

    #[test]
    fn held_cache_record_is_handed_over_as_is() {
        let m = merge_sources(vec![
            (Source::Relay, Fetched::Failed("down".into()), 0.0),
            (Source::Store, Fetched::Missing, 0.0),
            (Source::Indexeddb, Fetched::Held(1234), 2.0),
        ]);
        assert!(m.cache_as_is && m.update.is_empty() && m.new_for_cache.is_none());
        assert_eq!(m.report.merged_bytes, 1234);
        assert_eq!(m.report.sources[2].status, "ok");
        assert_eq!(m.report.sources[2].bytes, 1234);
        assert!(m.report.loaded);
        // Remote data that does not decode leaves the held record the whole state.
        let m = merge_sources(vec![
            (
                Source::Relay,
                Fetched::Data(vec![b"\xff\xffjunk".to_vec()]),
                0.0,
            ),
            (Source::Indexeddb, Fetched::Held(10), 0.0),
        ]);
        assert!(m.cache_as_is);
        assert_eq!(m.report.sources[0].status, "corrupt");
    }

    #[test]
    fn held_cache_record_next_to_remote_data_is_reported() {
        let r = full(&doc_text(1, "relay"));
        let m = merge_sources(vec![
            (Source::Relay, Fetched::Data(vec![r]), 0.0),
            (Source::Indexeddb, Fetched::Held(10), 0.0),
        ]);
        assert!(!m.cache_as_is);
        assert_eq!(text_of(&m.update), "relay");
        assert_eq!(m.report.sources[1].status, "error");
    }

    #[test]
    fn unchanged_sources_leave_the_cache_record_as_is() {
        let m = merge_sources(vec![
            (Source::Relay, Fetched::Unchanged, 1.0),
            (Source::Store, Fetched::Unchanged, 1.0),
            (Source::Indexeddb, Fetched::Held(77), 1.0),
        ]);
        assert!(m.cache_as_is && m.new_for_cache.is_none());
        let statuses: Vec<_> = m.report.sources.iter().map(|r| r.status).collect();
        assert_eq!(statuses, ["unchanged", "unchanged", "ok"]);
        assert!(m.report.loaded);
    }

    #[test]
    fn remote_state_already_cached_adds_nothing() {
        let d = doc_text(4, "same");
        let m = merge_sources(vec![
            (Source::Store, Fetched::Data(vec![full(&d)]), 0.0),
            (Source::Indexeddb, Fetched::Data(vec![full(&d)]), 0.0),
        ]);
        assert!(m.new_for_cache.is_none());
        assert_eq!(text_of(&m.update), "same");
    }

    #[test]
    fn remote_delete_is_new_for_the_cache() {
        let d = doc_text(5, "abcdef");
        let before = full(&d);
        d.get_or_insert_text("t")
            .remove_range(&mut d.transact_mut(), 0, 2);
        let m = merge_sources(vec![
            (Source::Relay, Fetched::Data(vec![full(&d)]), 0.0),
            (Source::Indexeddb, Fetched::Data(vec![before]), 0.0),
        ]);
        assert_eq!(text_of(&m.update), "cdef");
        assert!(
            m.new_for_cache.is_some(),
            "a delete-only change must reach the cache"
        );
    }
}
