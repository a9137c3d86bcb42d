//! Idempotent-producer state of one partition: per producer id, its epoch, the last sequence
//! appended and the last few batches, so a retried batch is recognised and answered with its
//! original offset instead of being appended twice.
//!
//! Invariants: the table reflects exactly the batches in the log it was built from (plus those
//! appended since), in log order. It is rebuilt from batch headers when the log opens, so it
//! survives restarts without a file of its own; only the newest segments are scanned, because a
//! client retries only recent batches.

use std::collections::{HashMap, VecDeque};

use thiserror::Error;

use super::batch::BatchHeader;

/// Batches remembered per producer: Kafka clients keep at most 5 requests in flight.
const RECENT_BATCHES: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ProducerError {
    #[error("producer {producer_id} epoch {epoch} is older than the current epoch {current}")]
    InvalidEpoch {
        producer_id: i64,
        epoch: i16,
        current: i16,
    },
    #[error("producer {producer_id}: out of order sequence {got}, expected {expected}")]
    OutOfOrderSequence {
        producer_id: i64,
        expected: i32,
        got: i32,
    },
}

/// What to do with an incoming batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SequenceCheck {
    /// Not idempotent, or the next batch in sequence: append it.
    Append,
    /// Already in the log: answer with where it went.
    Duplicate { base_offset: i64, last_offset: i64 },
}

#[derive(Debug, Clone, Copy)]
struct CachedBatch {
    first_seq: i32,
    last_seq: i32,
    base_offset: i64,
    last_offset: i64,
}

#[derive(Debug, Clone, Default)]
struct ProducerEntry {
    epoch: i16,
    recent: VecDeque<CachedBatch>,
}

impl ProducerEntry {
    fn last_seq(&self) -> Option<i32> {
        self.recent.back().map(|b| b.last_seq)
    }
}

#[derive(Debug, Default)]
pub(crate) struct ProducerStateTable {
    producers: HashMap<i64, ProducerEntry>,
}

fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

impl ProducerStateTable {
    /// Checks a batch as received (its base offset not yet assigned).
    pub(crate) fn check(&self, h: &BatchHeader) -> Result<SequenceCheck, ProducerError> {
        if h.producer_id < 0 || h.base_sequence < 0 {
            return Ok(SequenceCheck::Append);
        }
        let Some(entry) = self.producers.get(&h.producer_id) else {
            // Unknown producer (new, or its state aged out of the scanned segments): accept.
            return Ok(SequenceCheck::Append);
        };
        if h.producer_epoch < entry.epoch {
            return Err(ProducerError::InvalidEpoch {
                producer_id: h.producer_id,
                epoch: h.producer_epoch,
                current: entry.epoch,
            });
        }
        if h.producer_epoch > entry.epoch {
            return if h.base_sequence == 0 {
                Ok(SequenceCheck::Append)
            } else {
                Err(ProducerError::OutOfOrderSequence {
                    producer_id: h.producer_id,
                    expected: 0,
                    got: h.base_sequence,
                })
            };
        }
        if let Some(dup) = entry
            .recent
            .iter()
            .find(|b| b.first_seq == h.base_sequence && b.last_seq == h.last_sequence())
        {
            return Ok(SequenceCheck::Duplicate {
                base_offset: dup.base_offset,
                last_offset: dup.last_offset,
            });
        }
        let expected = entry.last_seq().map_or(h.base_sequence, next_seq);
        if h.base_sequence == expected {
            Ok(SequenceCheck::Append)
        } else {
            Err(ProducerError::OutOfOrderSequence {
                producer_id: h.producer_id,
                expected,
                got: h.base_sequence,
            })
        }
    }

    /// Records a batch now in the log (its header carries the assigned base offset).
    pub(crate) fn record(&mut self, h: &BatchHeader) {
        if h.producer_id < 0 || h.base_sequence < 0 {
            return;
        }
        let entry = self.producers.entry(h.producer_id).or_default();
        if h.producer_epoch != entry.epoch {
            entry.epoch = h.producer_epoch;
            entry.recent.clear();
        }
        if entry.recent.len() == RECENT_BATCHES {
            entry.recent.pop_front();
        }
        entry.recent.push_back(CachedBatch {
            first_seq: h.base_sequence,
            last_seq: h.last_sequence(),
            base_offset: h.base_offset,
            last_offset: h.last_offset(),
        });
    }

    pub(crate) fn len(&self) -> usize {
        self.producers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::{validate_batch, BatchBuilder};

    fn header(pid: i64, epoch: i16, seq: i32, n: usize, base_offset: i64) -> BatchHeader {
        let mut b = BatchBuilder::new().idempotent(pid, epoch, seq);
        for _ in 0..n {
            b.push_value(1, b"x");
        }
        let mut h = validate_batch(&b.build()).unwrap();
        h.base_offset = base_offset;
        h
    }

    #[test]
    fn in_sequence_duplicates_and_gaps() {
        let mut t = ProducerStateTable::default();
        let a = header(7, 0, 0, 3, 100);
        assert_eq!(t.check(&a), Ok(SequenceCheck::Append));
        t.record(&a);
        // A retry of the same batch is a duplicate with the original offsets.
        assert_eq!(
            t.check(&header(7, 0, 0, 3, -1)),
            Ok(SequenceCheck::Duplicate {
                base_offset: 100,
                last_offset: 102
            })
        );
        let b = header(7, 0, 3, 2, 103);
        assert_eq!(t.check(&b), Ok(SequenceCheck::Append));
        t.record(&b);
        assert!(matches!(
            t.check(&header(7, 0, 9, 1, -1)),
            Err(ProducerError::OutOfOrderSequence {
                expected: 5,
                got: 9,
                ..
            })
        ));
        // A newer epoch starts at 0; an older one is fenced.
        assert!(t.check(&header(7, 1, 4, 1, -1)).is_err());
        let c = header(7, 1, 0, 1, 105);
        assert_eq!(t.check(&c), Ok(SequenceCheck::Append));
        t.record(&c);
        assert!(matches!(
            t.check(&header(7, 0, 5, 1, -1)),
            Err(ProducerError::InvalidEpoch { .. })
        ));
        // Non-idempotent batches and unknown producers pass.
        assert_eq!(
            t.check(&header(-1, -1, -1, 1, -1)),
            Ok(SequenceCheck::Append)
        );
        assert_eq!(t.check(&header(8, 0, 42, 1, -1)), Ok(SequenceCheck::Append));
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        let mut t = ProducerStateTable::default();
        let a = header(1, 0, i32::MAX - 1, 2, 0);
        t.record(&a);
        assert_eq!(t.check(&header(1, 0, 0, 1, -1)), Ok(SequenceCheck::Append));
    }

    /// What cargo-mutants found unchecked: producer id 0 is a producer like any other; a
    /// batch without a sequence is never tracked; a batch that starts where a remembered one
    /// started but is longer is no retry of it; the last five batches are all remembered.
    #[test]
    fn producer_zero_partial_matches_and_the_last_five_batches() {
        let mut t = ProducerStateTable::default();
        let first = header(0, 0, 0, 2, 10);
        t.record(&first);
        assert_eq!(t.len(), 1);
        assert_eq!(
            t.check(&header(0, 0, 0, 2, -1)),
            Ok(SequenceCheck::Duplicate {
                base_offset: 10,
                last_offset: 11
            })
        );
        // Same first sequence, another length: not the batch in the log.
        assert!(matches!(
            t.check(&header(0, 0, 0, 3, -1)),
            Err(ProducerError::OutOfOrderSequence { .. })
        ));
        // Four more batches: the first is still recognised (five are kept).
        for i in 1..5 {
            t.record(&header(0, 0, i * 2, 2, 10 + i as i64 * 2));
        }
        assert!(matches!(
            t.check(&header(0, 0, 0, 2, -1)),
            Ok(SequenceCheck::Duplicate {
                base_offset: 10,
                ..
            })
        ));
        // A sixth pushes it out.
        t.record(&header(0, 0, 10, 2, 20));
        assert!(t.check(&header(0, 0, 0, 2, -1)).is_err());
        // A producer id with no sequence is not tracked, whatever it is.
        let mut untracked = header(9, 0, 0, 1, 30);
        untracked.base_sequence = -1;
        t.record(&untracked);
        assert_eq!(t.check(&untracked), Ok(SequenceCheck::Append));
        assert_eq!(t.len(), 1);
        // Also for a producer id the table knows.
        let mut known = header(0, 0, 0, 1, 31);
        known.base_sequence = -1;
        assert_eq!(t.check(&known), Ok(SequenceCheck::Append));
        t.record(&header(4, 0, 0, 1, 32));
        assert_eq!(t.len(), 2);
    }
}
