//! The wall clock, in the units the stores and the relay record: the one place that reads
//! `SystemTime` (not `ykeep-core`, which also builds for wasm32-unknown-unknown where
//! `SystemTime::now()` panics).

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 for a clock set before 1970).
pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Seconds since the Unix epoch (0 for a clock set before 1970), as token `exp` claims count.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn both_units_read_the_same_clock() {
        let ms = super::unix_ms();
        let s = super::now_unix();
        // After 2020-01-01 and within a second of each other.
        assert!(ms > 1_577_836_800_000, "{ms}");
        assert!((ms / 1000).abs_diff(s as i64) <= 1, "{ms} ms vs {s} s");
    }
}
