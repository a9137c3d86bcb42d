//! Errors of the storage layer. The protocol layer maps each to a Kafka error code in one place.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

use super::batch::BatchError;
use super::config::InvalidConfig;
use super::producer_state::ProducerError;

#[derive(Debug, Error)]
pub enum LogError {
    /// The record set was refused; nothing of it was stored.
    #[error(transparent)]
    InvalidBatch(#[from] BatchError),
    /// A read asked for an offset below the log start or above the log end.
    #[error("offset {requested} is out of range: log holds [{log_start}, {log_end})")]
    OffsetOutOfRange {
        requested: i64,
        log_start: i64,
        log_end: i64,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// A flush failed. After a failed fsync the kernel may have dropped the dirty pages, so the
    /// log refuses further writes rather than acknowledge data it cannot promise to keep.
    #[error("log {dir} stopped accepting writes after an I/O failure: {reason}")]
    Failed { dir: PathBuf, reason: String },
    #[error("log is closed")]
    Closed,
    #[error(transparent)]
    Config(#[from] InvalidConfig),
    /// An idempotent producer's batch out of sequence or from a fenced epoch; not stored.
    #[error(transparent)]
    Producer(#[from] ProducerError),
}

impl LogError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> LogError {
        let context = context.into();
        move |source| LogError::Io { context, source }
    }
}
