//! The storage engine: per-partition segmented logs of Kafka record batches.
//!
//! - [`batch`]: the v2 record batch header, validation (CRC-32C) and the broker-owned fields.
//! - [`partition_log`]: one partition's log: append, read, time lookup, roll, retention.
//! - `flusher`: the process-wide pool of threads that does every log's fsyncs (group commit,
//!   interval, never).
//! - `recovery`: opening a log: segment listing, index checks, active-segment recovery.
//! - `retention`: the pure decision of which segments retention deletes.
//! - `reader`: reading whole batches out of a segment file without the log lock.
//! - `shared_state`: what a log shares with the flush pool (segments and offsets under one lock,
//!   the lock serialising its flushes, the durability watches).
//! - `segment`: one `.log` file with its indexes; recovery of the active segment on open.
//! - `offset_index` / `time_index`: sparse, memory-mapped indexes over `index_file`.
//! - `producer_state`: idempotent-producer sequence checks, rebuilt from the log at open.
//! - [`config`]: segment, retention and flush settings.

pub mod batch;
pub mod config;
pub mod error;
mod flusher;
mod index_file;
mod offset_index;
pub mod partition_log;
mod producer_state;
mod reader;
mod recovery;
mod retention;
mod segment;
mod shared_state;
mod time_index;

pub use batch::{BatchBuilder, BatchError, BatchHeader, Record};
pub use config::{FlushPolicy, LogConfig, TimestampType};
pub use error::LogError;
pub use partition_log::{
    AppendInfo, FlushCounter, OpenReport, PartitionLog, ReadResult, RetentionReport, SyncOnOpen,
    WriteStatus,
};
pub use producer_state::ProducerError;
pub use segment::Recovery;
