//! Handing the memory sleeping rooms free back to the system.
//!
//! A room that falls asleep frees its doc, but glibc keeps freed memory in its arenas, where
//! it still counts in the relay's RSS. `malloc_trim` gives back the free pages inside them.
//! Rooms fall asleep in waves (`--room-sleep-ms` after their clients go quiet), so one trim
//! runs [`WAVE`] after the first room of a wave falls asleep, off the async threads.

use std::time::Duration;

/// How long after the first room of a wave falls asleep the trim runs.
pub const WAVE: Duration = Duration::from_secs(5);

/// A room fell asleep: trim within [`WAVE`] unless a trim is already due.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn trim_soon() {
    use std::sync::atomic::{AtomicBool, Ordering};
    static DUE: AtomicBool = AtomicBool::new(false);
    if DUE.swap(true, Ordering::AcqRel) {
        return;
    }
    tokio::spawn(async {
        tokio::time::sleep(WAVE).await;
        DUE.store(false, Ordering::Release);
        // SAFETY: malloc_trim only returns free memory of glibc's own arenas to the system.
        let _ = tokio::task::spawn_blocking(|| unsafe { libc::malloc_trim(0) }).await;
    });
}

/// Other allocators return memory on their own terms.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim_soon() {}
