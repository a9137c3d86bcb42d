//! Types the seckill services share: topic names and the messages that travel on them.
//!
//! - [`topics`]: the names of the topics every service agrees on.
//! - [`messages`]: the JSON payloads of those topics, with their validation.

// Library code never unwraps: anything from outside gets a typed error instead.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod messages;
pub mod topics;
