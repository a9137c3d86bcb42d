//! The fixed 61-byte header of a v2 batch: parsing, validation (framing, magic, CRC-32C, record
//! count) and the fields the broker owns and rewrites (base offset, leader epoch, LogAppendTime).

use thiserror::Error;

/// Bytes of the fixed batch header.
pub const HEADER_LEN: usize = 61;
/// Bytes before `batchLength` counts: baseOffset + batchLength itself.
pub const LOG_OVERHEAD: usize = 12;
/// The only record format this broker stores.
pub const MAGIC_V2: i8 = 2;
/// The leader epoch this single-node broker writes into every batch (it never changes leaders).
pub const LEADER_EPOCH: i32 = 0;

pub(super) const OFF_BASE_OFFSET: usize = 0;
pub(super) const OFF_LENGTH: usize = 8;
pub(super) const OFF_LEADER_EPOCH: usize = 12;
pub(super) const OFF_MAGIC: usize = 16;
pub(super) const OFF_CRC: usize = 17;
pub(super) const OFF_ATTRIBUTES: usize = 21;
pub(super) const OFF_LAST_OFFSET_DELTA: usize = 23;
pub(super) const OFF_BASE_TIMESTAMP: usize = 27;
pub(super) const OFF_MAX_TIMESTAMP: usize = 35;
pub(super) const OFF_PRODUCER_ID: usize = 43;
pub(super) const OFF_PRODUCER_EPOCH: usize = 51;
pub(super) const OFF_BASE_SEQUENCE: usize = 53;
pub(super) const OFF_RECORDS_COUNT: usize = 57;

pub(super) const ATTR_COMPRESSION_MASK: i16 = 0x07;
pub(super) const ATTR_TIMESTAMP_TYPE: i16 = 0x08;
pub(super) const ATTR_TRANSACTIONAL: i16 = 0x10;
pub(super) const ATTR_CONTROL: i16 = 0x20;

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

pub(super) fn read_i16(buf: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([buf[at], buf[at + 1]])
}

pub(super) fn read_i32(buf: &[u8], at: usize) -> i32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[at..at + 4]);
    i32::from_be_bytes(b)
}

pub(super) fn read_i64(buf: &[u8], at: usize) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    i64::from_be_bytes(b)
}
