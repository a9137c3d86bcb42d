//! Kafka record batch v2 ("magic 2"): the unit the log stores, byte for byte as a producer sent it.
//!
//! The log never decodes records on the hot path. It reads the fixed 61-byte header, checks that the
//! batch is well formed, and rewrites only the fields the broker owns (base offset, partition leader
//! epoch and, for `LogAppendTime` topics, the timestamp type and max timestamp). Fetch then serves the
//! stored bytes unchanged.
//!
//! Header layout (big-endian), from the Kafka protocol guide:
//!
//! | off | size | field                 | covered by CRC |
//! |-----|------|-----------------------|----------------|
//! |  0  |  8   | baseOffset            | no             |
//! |  8  |  4   | batchLength           | no             |
//! | 12  |  4   | partitionLeaderEpoch  | no             |
//! | 16  |  1   | magic (= 2)           | no             |
//! | 17  |  4   | crc (CRC-32C)         | -              |
//! | 21  |  2   | attributes            | yes            |
//! | 23  |  4   | lastOffsetDelta       | yes            |
//! | 27  |  8   | baseTimestamp         | yes            |
//! | 35  |  8   | maxTimestamp          | yes            |
//! | 43  |  8   | producerId            | yes            |
//! | 51  |  2   | producerEpoch         | yes            |
//! | 53  |  4   | baseSequence          | yes            |
//! | 57  |  4   | recordsCount          | yes            |
//! | 61  |  ... | records               | yes            |
//!
//! The fields outside the CRC are checked in other ways: `batchLength` by framing (and the CRC over
//! the range it implies), `magic` by value, `partitionLeaderEpoch` against the constant the broker
//! writes, and `baseOffset` by the log's offset continuity during recovery.
//!
//! - `header`: the fixed header, validation (CRC-32C) and the fields the broker rewrites.
//! - `builder`: [`BatchBuilder`], uncompressed batches for the broker's own records, tests and
//!   benchmarks.
//! - `records`: reading the records inside an uncompressed batch (timestamps, or whole records of
//!   the broker's internal logs), behind one corruption guard.

mod builder;
mod header;
mod records;

pub use builder::{BatchBuilder, Record};
pub use header::{
    assign_offset, compute_crc, set_log_append_time, validate_batch, validate_record_set,
    BatchError, BatchHeader, HEADER_LEN, LEADER_EPOCH, LOG_OVERHEAD, MAGIC_V2,
};
pub use records::{decode_records, record_timestamps};

#[cfg(test)]
mod tests {
    use super::header::{OFF_ATTRIBUTES, OFF_LENGTH, OFF_MAGIC, OFF_RECORDS_COUNT};
    use super::*;

    fn sample() -> Vec<u8> {
        let mut b = BatchBuilder::new();
        b.push_value(1000, b"a")
            .push_value(1005, b"bb")
            .push_value(1002, b"");
        b.build()
    }

    #[test]
    fn built_batch_validates_and_reports_fields() {
        let bytes = sample();
        let h = validate_batch(&bytes).unwrap();
        assert_eq!(h.records_count, 3);
        assert_eq!(h.last_offset_delta, 2);
        assert_eq!(h.base_timestamp, 1000);
        assert_eq!(h.max_timestamp, 1005);
        assert_eq!(h.total_len(), bytes.len());
        assert_eq!(record_timestamps(&bytes).unwrap(), vec![1000, 1005, 1002]);
    }

    #[test]
    fn every_checked_byte_is_covered() {
        let bytes = sample();
        for i in OFF_ATTRIBUTES..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            assert!(validate_batch(&bad).is_err(), "flip at {i} not detected");
        }
        let mut bad = bytes.clone();
        bad[OFF_MAGIC] = 1;
        assert_eq!(validate_batch(&bad), Err(BatchError::BadMagic(1)));
    }

    #[test]
    fn truncated_and_oversized_length_are_refused() {
        let bytes = sample();
        for cut in 0..bytes.len() {
            assert!(validate_batch(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = bytes.clone();
        bad[OFF_LENGTH..OFF_LENGTH + 4].copy_from_slice(&(-5i32).to_be_bytes());
        assert_eq!(validate_batch(&bad), Err(BatchError::BadLength(-5)));
        assert_eq!(validate_record_set(&[]), Err(BatchError::Empty));
    }

    #[test]
    fn assign_offset_keeps_crc_valid_and_log_append_time_recomputes_it() {
        let mut bytes = sample();
        assign_offset(&mut bytes, 42);
        let h = validate_batch(&bytes).unwrap();
        assert_eq!(h.base_offset, 42);
        assert_eq!(h.partition_leader_epoch, LEADER_EPOCH);
        set_log_append_time(&mut bytes, 9999);
        let h = validate_batch(&bytes).unwrap();
        assert!(h.is_log_append_time());
        assert_eq!(h.max_timestamp, 9999);
        assert_eq!(record_timestamps(&bytes).unwrap(), vec![9999; 3]);
    }

    /// Regression (fuzzing, record_batch target): a record count far beyond what the batch's
    /// bytes can hold sized an allocation of gigabytes.
    #[test]
    fn an_impossible_record_count_is_refused_without_allocating() {
        let mut bytes = sample();
        bytes[OFF_RECORDS_COUNT..OFF_RECORDS_COUNT + 4]
            .copy_from_slice(&0x0800_0000i32.to_be_bytes());
        assert_eq!(record_timestamps(&bytes), None);
        set_log_append_time(&mut bytes, 5);
        assert_eq!(record_timestamps(&bytes), None);
    }

    #[test]
    fn records_decode_back_to_what_was_built() {
        let mut b = BatchBuilder::new();
        let rec = Record {
            timestamp: 1234,
            key: Some(b"k".to_vec()),
            value: None,
            headers: vec![("h".into(), Some(b"v".to_vec())), ("n".into(), None)],
        };
        b.push(rec.clone()).push_value(1240, b"second");
        let bytes = b.build();
        let got = decode_records(&bytes).unwrap();
        assert_eq!(got[0], rec);
        assert_eq!(got[1].value.as_deref(), Some(&b"second"[..]));
        assert_eq!(got[1].timestamp, 1240);
        for cut in 0..bytes.len() {
            let _ = decode_records(&bytes[..cut]);
        }
    }

    #[test]
    fn last_sequence_wraps() {
        let mut h = validate_batch(&sample()).unwrap();
        h.base_sequence = i32::MAX - 1;
        assert_eq!(h.last_sequence(), 0);
    }
}
