//! Pulling other relays' saves into a live room.
//!
//! Two relays can hold the same room (a deploy, a failover): each learns the other's edits only
//! from the store. A save that meets a conflict merges the store's snapshot, but a relay whose
//! clients stopped editing never saves again, so it would never see the other relay's later
//! edits. While a room has clients it therefore asks the store every `--store-poll-ms` whether
//! the snapshot is still the one it holds (`If-None-Match`: a 304 when unchanged) and merges a
//! newer one, sending what was new to its clients.

use super::{Fatal, Pending, Room, RoomMsg, StoreMerge, StoreView};
use crate::store_client::{StoreError, StoredSnapshot};

/// What a poll brought back: `None` when the snapshot is the one the room holds, or none.
pub type Polled = Result<Option<StoredSnapshot>, StoreError>;

impl Room {
    /// When the next poll is due (None when polling is off, the room has no client, its
    /// store view is not synced yet, or a poll is in flight).
    pub(super) fn poll_due(&self) -> Option<u64> {
        let every = self.shared.config.store_poll_ms;
        if every == 0 || self.polling || self.conns.is_empty() || self.shutting_down {
            return None;
        }
        Some(self.polled_at + every)
    }

    /// Starts a poll of the store when one is due.
    pub(super) fn maybe_poll(&mut self) {
        let Some(due) = self.poll_due() else { return };
        let now = self.shared.now_ms();
        if now < due {
            return;
        }
        self.polled_at = now;
        let Some(known) = self.store.snapshot_id.clone() else {
            // No snapshot known: the first save (If-None-Match: *) meets any other relay's.
            return;
        };
        let Some(tx) = self.tx.upgrade() else { return };
        self.polling = true;
        let shared = self.shared.clone();
        let name = self.name.clone();
        tokio::spawn(async move {
            let timeout = shared.config.store_timeout();
            let load = shared.store.load_if_changed(&name, &known);
            let result = match tokio::time::timeout(timeout, load).await {
                Ok(result) => result,
                Err(_) => Err(StoreError::Unreachable(format!(
                    "no answer within {timeout:?}"
                ))),
            };
            let _ = tx
                .send(RoomMsg::Polled {
                    result: Box::new(result),
                })
                .await;
        });
    }

    /// Merges a snapshot another relay saved; what was new goes to every client.
    pub(super) async fn poll_done(&mut self, result: Polled, p: &mut Pending) -> Result<(), Fatal> {
        self.polling = false;
        let current = match result {
            Ok(Some(current)) => current,
            Ok(None) => return Ok(()),
            Err(e) => {
                tracing::warn!(room = %self.name, error = %e,
                    "asking the store for other relays' saves failed; next try in one poll interval");
                return Ok(());
            }
        };
        if self.store.snapshot_id.as_deref() == Some(current.snapshot_id.as_str()) {
            return Ok(()); // our own save landed while the poll was in flight
        }
        if let Err(e) = ykeep_core::validate_update(&current.bytes) {
            tracing::error!(room = %self.name, error = %e,
                "the store's snapshot is not a valid Yjs update; not merged");
            return Ok(());
        }
        tracing::info!(room = %self.name, snapshot = %current.snapshot_id,
            "merging a save made elsewhere (another relay)");
        let merged = self.merge_store_content(&current.bytes, p).await?;
        if merged == StoreMerge::Merged {
            // The room now contains that snapshot: the next save names it in If-Match.
            self.store = StoreView::holding(current);
        }
        Ok(())
    }
}
