//! [`BatchBuilder`]: encodes uncompressed v2 batches exactly as a producer would send them.

use super::header::{compute_crc, HEADER_LEN, LOG_OVERHEAD, MAGIC_V2, OFF_CRC};

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
