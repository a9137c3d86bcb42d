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

use thiserror::Error;

/// Bytes of the fixed batch header.
pub const HEADER_LEN: usize = 61;
/// Bytes before `batchLength` counts: baseOffset + batchLength itself.
pub const LOG_OVERHEAD: usize = 12;
/// The only record format this broker stores.
pub const MAGIC_V2: i8 = 2;
/// The leader epoch this single-node broker writes into every batch (it never changes leaders).
pub const LEADER_EPOCH: i32 = 0;

const OFF_BASE_OFFSET: usize = 0;
const OFF_LENGTH: usize = 8;
const OFF_LEADER_EPOCH: usize = 12;
const OFF_MAGIC: usize = 16;
const OFF_CRC: usize = 17;
const OFF_ATTRIBUTES: usize = 21;
const OFF_LAST_OFFSET_DELTA: usize = 23;
const OFF_BASE_TIMESTAMP: usize = 27;
const OFF_MAX_TIMESTAMP: usize = 35;
const OFF_PRODUCER_ID: usize = 43;
const OFF_PRODUCER_EPOCH: usize = 51;
const OFF_BASE_SEQUENCE: usize = 53;
const OFF_RECORDS_COUNT: usize = 57;

const ATTR_COMPRESSION_MASK: i16 = 0x07;
const ATTR_TIMESTAMP_TYPE: i16 = 0x08;
const ATTR_TRANSACTIONAL: i16 = 0x10;
const ATTR_CONTROL: i16 = 0x20;

/// Why a batch was refused. Every variant means "not stored".
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BatchError {
    #[error("record batch truncated: need {needed} bytes, have {available}")]
    Truncated { needed: usize, available: usize },
    #[error("record batch length field {0} is out of range")]
    BadLength(i32),
    #[error("unsupported record batch magic {0} (only v2 is accepted)")]
    BadMagic(i8),
    #[error("record batch CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    #[error("record batch has {count} records but lastOffsetDelta {last_offset_delta}")]
    BadRecordCount { count: i32, last_offset_delta: i32 },
    #[error("record batch of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("empty record set")]
    Empty,
}

/// The header fields of one batch, read from its first 61 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Reads the header from the start of `buf`. Checks only that 61 bytes are there and that the
    /// length field is plausible; [`validate_batch`] does the full check.
    pub fn parse(buf: &[u8]) -> Result<Self, BatchError> {
        if buf.len() < HEADER_LEN {
            return Err(BatchError::Truncated {
                needed: HEADER_LEN,
                available: buf.len(),
            });
        }
        let h = BatchHeader {
            base_offset: read_i64(buf, OFF_BASE_OFFSET),
            batch_length: read_i32(buf, OFF_LENGTH),
            partition_leader_epoch: read_i32(buf, OFF_LEADER_EPOCH),
            magic: buf[OFF_MAGIC] as i8,
            crc: read_i32(buf, OFF_CRC) as u32,
            attributes: read_i16(buf, OFF_ATTRIBUTES),
            last_offset_delta: read_i32(buf, OFF_LAST_OFFSET_DELTA),
            base_timestamp: read_i64(buf, OFF_BASE_TIMESTAMP),
            max_timestamp: read_i64(buf, OFF_MAX_TIMESTAMP),
            producer_id: read_i64(buf, OFF_PRODUCER_ID),
            producer_epoch: read_i16(buf, OFF_PRODUCER_EPOCH),
            base_sequence: read_i32(buf, OFF_BASE_SEQUENCE),
            records_count: read_i32(buf, OFF_RECORDS_COUNT),
        };
        if (h.batch_length as i64) < (HEADER_LEN - LOG_OVERHEAD) as i64 {
            return Err(BatchError::BadLength(h.batch_length));
        }
        Ok(h)
    }

    /// Whole size of the batch on disk and on the wire.
    pub fn total_len(&self) -> usize {
        self.batch_length as usize + LOG_OVERHEAD
    }

    /// Offset of the last record in the batch.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }

    /// Offset the next batch gets.
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }

    /// Compression codec id (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    pub fn compression(&self) -> i16 {
        self.attributes & ATTR_COMPRESSION_MASK
    }

    pub fn is_log_append_time(&self) -> bool {
        self.attributes & ATTR_TIMESTAMP_TYPE != 0
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    /// Producer sequence of the last record (wraps at i32::MAX like Kafka's).
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return self.base_sequence;
        }
        let last = self.base_sequence as i64 + self.last_offset_delta as i64;
        if last > i32::MAX as i64 {
            (last - i32::MAX as i64 - 1) as i32
        } else {
            last as i32
        }
    }
}

/// CRC-32C over the checked part of a whole batch (`buf` holds exactly one batch).
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[OFF_ATTRIBUTES..])
}

/// Validates the batch at the start of `buf` and returns its header. `buf` may hold more bytes
/// after the batch. Checks: complete header, length within `buf`, magic 2, CRC-32C, and a record
/// count that matches `lastOffsetDelta` (producers always number records 0..n-1).
pub fn validate_batch(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(buf)?;
    let total = header.total_len();
    if total > buf.len() {
        return Err(BatchError::Truncated {
            needed: total,
            available: buf.len(),
        });
    }
    if header.magic != MAGIC_V2 {
        return Err(BatchError::BadMagic(header.magic));
    }
    let computed = compute_crc(&buf[..total]);
    if computed != header.crc {
        return Err(BatchError::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    if header.records_count < 1
        || header.last_offset_delta < 0
        || header.last_offset_delta != header.records_count - 1
    {
        return Err(BatchError::BadRecordCount {
            count: header.records_count,
            last_offset_delta: header.last_offset_delta,
        });
    }
    Ok(header)
}

/// Validates every batch in a record set (batches back to back, nothing left over).
pub fn validate_record_set(buf: &[u8]) -> Result<Vec<BatchHeader>, BatchError> {
    if buf.is_empty() {
        return Err(BatchError::Empty);
    }
    let mut headers = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let header = validate_batch(&buf[pos..])?;
        pos += header.total_len();
        headers.push(header);
    }
    Ok(headers)
}

/// Writes the broker-owned, CRC-free fields: base offset and partition leader epoch.
pub fn assign_offset(batch: &mut [u8], base_offset: i64) {
    batch[OFF_BASE_OFFSET..OFF_BASE_OFFSET + 8].copy_from_slice(&base_offset.to_be_bytes());
    batch[OFF_LEADER_EPOCH..OFF_LEADER_EPOCH + 4].copy_from_slice(&LEADER_EPOCH.to_be_bytes());
}

/// Turns a batch into a `LogAppendTime` batch stamped `now_ms`, as Kafka does for topics with
/// `message.timestamp.type=LogAppendTime`. The changed fields are CRC-covered, so the CRC is redone.
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) {
    let attributes = read_i16(batch, OFF_ATTRIBUTES) | ATTR_TIMESTAMP_TYPE;
    batch[OFF_ATTRIBUTES..OFF_ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[OFF_MAX_TIMESTAMP..OFF_MAX_TIMESTAMP + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = compute_crc(batch);
    batch[OFF_CRC..OFF_CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

fn read_i16(buf: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([buf[at], buf[at + 1]])
}

fn read_i32(buf: &[u8], at: usize) -> i32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[at..at + 4]);
    i32::from_be_bytes(b)
}

fn read_i64(buf: &[u8], at: usize) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    i64::from_be_bytes(b)
}

/// One record to put in a batch built by [`BatchBuilder`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// Builds uncompressed v2 batches. The broker uses it for the records it writes itself (internal
/// topics) and tests and benchmarks use it to make producer-identical input.
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    records: Vec<Record>,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchBuilder {
    pub fn new() -> Self {
        BatchBuilder {
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            records: Vec::new(),
        }
    }

    /// Marks the batch as coming from an idempotent producer.
    pub fn idempotent(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    pub fn push(&mut self, record: Record) -> &mut Self {
        self.records.push(record);
        self
    }

    /// Adds a record with just a value and a timestamp.
    pub fn push_value(&mut self, timestamp: i64, value: &[u8]) -> &mut Self {
        self.push(Record {
            timestamp,
            key: None,
            value: Some(value.to_vec()),
            headers: Vec::new(),
        })
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Encodes the batch (base offset 0, leader epoch -1, as a producer would send it).
    /// Panics on an empty builder: an empty batch is not a valid v2 batch.
    pub fn build(&self) -> Vec<u8> {
        assert!(
            !self.records.is_empty(),
            "a record batch needs at least one record"
        );
        let base_ts = self.records.iter().map(|r| r.timestamp).min().unwrap_or(0);
        let max_ts = self.records.iter().map(|r| r.timestamp).max().unwrap_or(0);
        let mut body = Vec::with_capacity(self.records.len() * 32);
        let mut rec = Vec::new();
        for (i, r) in self.records.iter().enumerate() {
            rec.clear();
            rec.push(0); // record attributes
            put_varlong(&mut rec, r.timestamp - base_ts);
            put_varlong(&mut rec, i as i64);
            put_bytes(&mut rec, r.key.as_deref());
            put_bytes(&mut rec, r.value.as_deref());
            put_varlong(&mut rec, r.headers.len() as i64);
            for (k, v) in &r.headers {
                put_bytes(&mut rec, Some(k.as_bytes()));
                put_bytes(&mut rec, v.as_deref());
            }
            put_varlong(&mut body, rec.len() as i64);
            body.extend_from_slice(&rec);
        }
        let mut out = Vec::with_capacity(HEADER_LEN + body.len());
        let batch_length = (HEADER_LEN - LOG_OVERHEAD + body.len()) as i32;
        out.extend_from_slice(&0i64.to_be_bytes());
        out.extend_from_slice(&batch_length.to_be_bytes());
        out.extend_from_slice(&(-1i32).to_be_bytes());
        out.push(MAGIC_V2 as u8);
        out.extend_from_slice(&0u32.to_be_bytes()); // crc, filled below
        out.extend_from_slice(&0i16.to_be_bytes());
        out.extend_from_slice(&((self.records.len() - 1) as i32).to_be_bytes());
        out.extend_from_slice(&base_ts.to_be_bytes());
        out.extend_from_slice(&max_ts.to_be_bytes());
        out.extend_from_slice(&self.producer_id.to_be_bytes());
        out.extend_from_slice(&self.producer_epoch.to_be_bytes());
        out.extend_from_slice(&self.base_sequence.to_be_bytes());
        out.extend_from_slice(&(self.records.len() as i32).to_be_bytes());
        out.extend_from_slice(&body);
        let crc = compute_crc(&out);
        out[OFF_CRC..OFF_CRC + 4].copy_from_slice(&crc.to_be_bytes());
        out
    }
}

fn put_varlong(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => put_varlong(out, -1),
        Some(b) => {
            put_varlong(out, b.len() as i64);
            out.extend_from_slice(b);
        }
    }
}

/// Timestamps of the records of an uncompressed batch, in order; `None` for a compressed batch
/// (its records would have to be decompressed) or for records that do not parse.
pub fn record_timestamps(batch: &[u8]) -> Option<Vec<i64>> {
    let header = BatchHeader::parse(batch).ok()?;
    if header.compression() != 0 || batch.len() < header.total_len() {
        return None;
    }
    // The count comes from the batch; every record takes at least 7 bytes, so a count beyond
    // what the bytes can hold is corrupt (and must not size an allocation: found by fuzzing).
    let count = header.records_count.max(0) as usize;
    if count > (header.total_len() - HEADER_LEN) / 7 {
        return None;
    }
    if header.is_log_append_time() {
        return Some(vec![header.max_timestamp; count]);
    }
    let mut pos = HEADER_LEN;
    let end = header.total_len();
    let mut out = Vec::with_capacity(count);
    for _ in 0..header.records_count {
        let (len, n) = get_varlong(&batch[pos..end])?;
        let rec_start = pos + n;
        let rec_end = rec_start.checked_add(usize::try_from(len).ok()?)?;
        if rec_end > end {
            return None;
        }
        let rec = &batch[rec_start..rec_end];
        // attributes (1 byte), then timestampDelta.
        let (delta, _) = get_varlong(rec.get(1..)?)?;
        out.push(header.base_timestamp + delta);
        pos = rec_end;
    }
    Some(out)
}

/// Decodes the records of an uncompressed batch the broker wrote itself (internal logs such as
/// committed offsets); `None` for a compressed batch or one that does not parse.
pub fn decode_records(batch: &[u8]) -> Option<Vec<Record>> {
    let header = BatchHeader::parse(batch).ok()?;
    let end = header.total_len();
    let count = header.records_count.max(0) as usize;
    if header.compression() != 0 || batch.len() < end || count > (end - HEADER_LEN) / 7 {
        return None;
    }
    let mut cur = Cursor {
        buf: &batch[..end],
        pos: HEADER_LEN,
    };
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let len = usize::try_from(cur.varlong()?).ok()?;
        let rec_end = cur.pos.checked_add(len)?;
        if rec_end > end {
            return None;
        }
        let mut r = Cursor {
            buf: &batch[..rec_end],
            pos: cur.pos,
        };
        r.pos += 1; // attributes
        let timestamp = header.base_timestamp + r.varlong()?;
        r.varlong()?; // offset delta
        let key = r.bytes()?;
        let value = r.bytes()?;
        let n_headers = usize::try_from(r.varlong()?).ok()?;
        let mut headers = Vec::with_capacity(n_headers.min(len));
        for _ in 0..n_headers {
            let k = String::from_utf8(r.bytes()??).ok()?;
            headers.push((k, r.bytes()?));
        }
        out.push(Record {
            timestamp,
            key,
            value,
            headers,
        });
        cur.pos = rec_end;
    }
    Some(out)
}

/// Reads varints and length-prefixed bytes from a record.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn varlong(&mut self) -> Option<i64> {
        let (v, n) = get_varlong(self.buf.get(self.pos..)?)?;
        self.pos += n;
        Some(v)
    }

    /// `Some(None)` for a null (-1 length) field.
    fn bytes(&mut self) -> Option<Option<Vec<u8>>> {
        let len = self.varlong()?;
        if len < 0 {
            return Some(None);
        }
        let end = self.pos.checked_add(usize::try_from(len).ok()?)?;
        let b = self.buf.get(self.pos..end)?.to_vec();
        self.pos = end;
        Some(Some(b))
    }
}

fn get_varlong(buf: &[u8]) -> Option<(i64, usize)> {
    let mut z: u64 = 0;
    for (i, b) in buf.iter().enumerate().take(10) {
        z |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            return Some((((z >> 1) as i64) ^ -((z & 1) as i64), i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
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
