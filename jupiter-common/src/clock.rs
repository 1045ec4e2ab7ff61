//! Wall-clock helpers: timings cross process boundaries, so they travel as
//! Unix timestamps rather than `Instant`s.

use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch.
pub fn unix_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Milliseconds between two Unix-nanosecond timestamps (never negative).
pub fn ms_between(from_nanos: i64, to_nanos: i64) -> f64 {
    (to_nanos.saturating_sub(from_nanos)).max(0) as f64 / 1e6
}
