//! When the browser cache folds its update log into the compacted state record.
//!
//! Compaction goes by bytes, not by update count: the log is folded when it holds more bytes
//! than the compacted state it sits on, or more than a floor (so a tiny document does not
//! compact on every keystroke). Bounded this way, cache bytes stay below
//! `state + max(state, floor)` plus the outbox.

/// Default floor: a log under 64 KiB is never compacted.
pub const DEFAULT_FLOOR_BYTES: u64 = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactionPolicy {
    pub floor_bytes: u64,
}

impl Default for CompactionPolicy {
    fn default() -> Self {
        CompactionPolicy {
            floor_bytes: DEFAULT_FLOOR_BYTES,
        }
    }
}

impl CompactionPolicy {
    /// True when a log of `log_bytes` over a compacted state of `state_bytes` should be folded.
    pub fn should_compact(&self, state_bytes: u64, log_bytes: u64) -> bool {
        log_bytes > state_bytes.max(self.floor_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compacts_past_the_larger_of_state_and_floor() {
        let p = CompactionPolicy::default();
        assert!(!p.should_compact(0, 0));
        assert!(!p.should_compact(0, DEFAULT_FLOOR_BYTES));
        assert!(p.should_compact(0, DEFAULT_FLOOR_BYTES + 1));
        assert!(!p.should_compact(1_000_000, 999_999));
        assert!(p.should_compact(1_000_000, 1_000_001));
        let tiny = CompactionPolicy { floor_bytes: 10 };
        assert!(tiny.should_compact(5, 11));
    }
}
