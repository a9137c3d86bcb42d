//! The storage engine and the topic registry, driven directly (no network): round trips across
//! segment rolls, recovery from torn and corrupt tails, retention, flush policies, topic
//! persistence. One test binary for the subject, so the suite links once.

mod common;
#[path = "../wire/loopfs.rs"]
mod loopfs;

mod durability;
mod preallocation;
mod recovery;
mod retention;
mod roundtrip;
mod topics;
