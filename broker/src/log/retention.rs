//! The retention decision, apart from any file: given the segments' sizes and newest
//! timestamps, how many of the oldest ones go. The log applies it under its lock and deletes
//! the files afterwards.
//!
//! Rules (Kafka's): only whole sealed segments are deleted, oldest first, and the active (last)
//! segment never is. A segment goes when its newest record is older than `retention_ms`, or while
//! the log without it would still be at least `retention_bytes`. A negative setting disables
//! that rule; a segment with no timestamp (-1) is never too old. Deletion stops at the first
//! segment that may stay, so the log stays contiguous.

use super::config::LogConfig;

/// What retention looks at in one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SegmentStats {
    pub(super) size: u64,
    /// Newest record timestamp, -1 if none.
    pub(super) max_timestamp: i64,
}

/// How many of the oldest segments to delete (never the last one).
pub(super) fn segments_to_delete(
    segments: &[SegmentStats],
    now_ms: i64,
    config: &LogConfig,
) -> usize {
    let Some((_active, sealed)) = segments.split_last() else {
        return 0;
    };
    let mut total: u64 = segments.iter().map(|s| s.size).sum();
    let mut n = 0;
    for seg in sealed {
        let too_old = config.retention_ms >= 0
            && seg.max_timestamp >= 0
            && now_ms - seg.max_timestamp > config.retention_ms;
        let too_big =
            config.retention_bytes >= 0 && total - seg.size >= config.retention_bytes as u64;
        if !(too_old || too_big) {
            break;
        }
        total -= seg.size;
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(size: u64, max_timestamp: i64) -> SegmentStats {
        SegmentStats {
            size,
            max_timestamp,
        }
    }

    fn config(retention_ms: i64, retention_bytes: i64) -> LogConfig {
        LogConfig {
            retention_ms,
            retention_bytes,
            ..LogConfig::default()
        }
    }

    #[test]
    fn the_active_segment_is_never_deleted() {
        let all_old = [seg(10, 0), seg(10, 0)];
        assert_eq!(segments_to_delete(&all_old, 1_000_000, &config(1, 0)), 1);
        assert_eq!(
            segments_to_delete(&[seg(10, 0)], 1_000_000, &config(1, 0)),
            0
        );
        assert_eq!(segments_to_delete(&[], 1_000_000, &config(1, 0)), 0);
    }

    #[test]
    fn by_time_oldest_first_and_stops_at_the_first_young_segment() {
        let segs = [seg(1, 100), seg(1, 900), seg(1, 150), seg(1, 1000)];
        // 100 is older than 500 ms at t=1000; 900 is not, so 150 behind it stays too.
        assert_eq!(segments_to_delete(&segs, 1000, &config(500, -1)), 1);
        // Exactly at the limit is kept (strictly older goes).
        assert_eq!(segments_to_delete(&segs, 600, &config(500, -1)), 0);
    }

    #[test]
    fn by_size_keeps_at_least_the_limit() {
        let segs = [seg(100, -1), seg(100, -1), seg(100, -1), seg(50, -1)];
        // 350 in all: dropping the first leaves 250 >= 200, the second would leave 150 < 200.
        assert_eq!(segments_to_delete(&segs, 0, &config(-1, 200)), 1);
        assert_eq!(segments_to_delete(&segs, 0, &config(-1, 0)), 3);
        assert_eq!(segments_to_delete(&segs, 0, &config(-1, -1)), 0);
    }

    #[test]
    fn segments_without_timestamps_never_expire_by_time() {
        let segs = [seg(1, -1), seg(1, -1)];
        assert_eq!(segments_to_delete(&segs, i64::MAX, &config(0, -1)), 0);
    }
}
