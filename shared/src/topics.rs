//! Topic names. One place, so a producer and its consumers cannot drift apart.

/// Buy requests accepted by the ingest API, keyed by item id.
pub const SECKILL_ORDERS: &str = "seckill";
/// Messages the order worker could not decode, with the reason.
pub const SECKILL_DEAD_LETTER: &str = "seckill.dlq";
/// Inference requests, keyed by request UUID.
pub const INFERENCE_REQUESTS: &str = "inference.requests";
/// Inference replies, keyed by request UUID; each API instance reads the partition it named as
/// its reply address.
pub const INFERENCE_REPLIES: &str = "inference.replies";
/// Inference requests that kept crashing workers, or could not be decoded, with the reason.
pub const INFERENCE_DEAD_LETTER: &str = "inference.dlq";
