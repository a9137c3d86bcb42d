//! Wall-clock time in milliseconds since the Unix epoch: the unit of every timestamp in the
//! messages and tables (`accepted_at_ms`, `deadline_ms`).

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in ms since the Unix epoch (0 if the clock is before 1970, which no deadline survives).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
