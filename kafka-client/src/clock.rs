//! clock — the process-wide microsecond clock that end-to-end latency is measured with: the
//! producer stamps each value with it, the consumer subtracts.
//!
//! Owns that one clock. Must not be used for timeouts or intervals (those use `Instant`).

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch on a clock shared by the whole process: the wall clock read
/// once, advanced by a monotonic `Instant`. Producer and consumer in one process (`weir bench
/// e2e`) therefore agree exactly; across processes on one host they agree as the wall clock does.
pub fn epoch_us() -> u64 {
    static ANCHOR: OnceLock<(Instant, u64)> = OnceLock::new();
    let (instant, wall) = ANCHOR.get_or_init(|| {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        (Instant::now(), wall)
    });
    wall + instant.elapsed().as_micros() as u64
}
