//! The records inside an uncompressed batch. [`raw_records`] is the one corruption guard: it
//! checks the header, the compression and that the record count can fit in the batch's bytes
//! before anything is allocated from that count (a count far beyond the bytes sized allocations
//! of gigabytes: found by fuzzing), and then hands out each record's bytes within the batch.

use super::builder::Record;
use super::header::{BatchHeader, HEADER_LEN};

/// The smallest encoded record: length, attributes, timestamp and offset deltas, key and value
/// lengths, header count (one byte each at least, the length varint counted apart).
const MIN_RECORD_BYTES: usize = 7;

/// The records of one uncompressed batch, as byte slices (each without its length prefix).
struct RawRecords<'a> {
    buf: &'a [u8],
    pos: usize,
    left: usize,
}

impl<'a> RawRecords<'a> {
    /// The next record's bytes; `Err` if the framing is corrupt, `Ok(None)` after the last one.
    fn next_record(&mut self) -> Result<Option<&'a [u8]>, ()> {
        if self.left == 0 {
            return Ok(None);
        }
        let (len, n) = get_varlong(&self.buf[self.pos..]).ok_or(())?;
        let start = self.pos + n;
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| start.checked_add(len))
            .filter(|&end| end <= self.buf.len())
            .ok_or(())?;
        self.pos = end;
        self.left -= 1;
        Ok(Some(&self.buf[start..end]))
    }
}

/// The header and records of an uncompressed, whole batch at the start of `batch`; `None` for a
/// compressed batch, a cut one, or a record count its bytes cannot hold.
fn raw_records(batch: &[u8]) -> Option<(BatchHeader, RawRecords<'_>)> {
    let header = BatchHeader::parse(batch).ok()?;
    let end = header.total_len();
    let count = header.records_count.max(0) as usize;
    if header.compression() != 0
        || batch.len() < end
        || count > (end - HEADER_LEN) / MIN_RECORD_BYTES
    {
        return None;
    }
    let records = RawRecords {
        buf: &batch[..end],
        pos: HEADER_LEN,
        left: count,
    };
    Some((header, records))
}

/// Timestamps of the records of an uncompressed batch, in order; `None` for a compressed batch
/// (its records would have to be decompressed) or for records that do not parse.
pub fn record_timestamps(batch: &[u8]) -> Option<Vec<i64>> {
    let (header, mut records) = raw_records(batch)?;
    if header.is_log_append_time() {
        return Some(vec![header.max_timestamp; records.left]);
    }
    let mut out = Vec::with_capacity(records.left);
    while let Some(rec) = records.next_record().ok()? {
        // attributes (1 byte), then timestampDelta.
        let (delta, _) = get_varlong(rec.get(1..)?)?;
        out.push(header.base_timestamp + delta);
    }
    Some(out)
}

/// Decodes the records of an uncompressed batch the broker wrote itself (internal logs such as
/// committed offsets); `None` for a compressed batch or one that does not parse.
pub fn decode_records(batch: &[u8]) -> Option<Vec<Record>> {
    let (header, mut records) = raw_records(batch)?;
    let mut out = Vec::with_capacity(records.left);
    while let Some(rec) = records.next_record().ok()? {
        let mut r = Cursor { buf: rec, pos: 1 }; // after the attributes byte
        let timestamp = header.base_timestamp + r.varlong()?;
        r.varlong()?; // offset delta
        let key = r.bytes()?;
        let value = r.bytes()?;
        let n_headers = usize::try_from(r.varlong()?).ok()?;
        let mut headers = Vec::with_capacity(n_headers.min(rec.len()));
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
