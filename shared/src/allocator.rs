//! The heap allocator of every long-running binary in the workspace (the services, the broker,
//! and the benchmarks and demo that host them in-process), declared in each `main` as
//! `#[global_allocator] static ALLOC: shared::allocator::Allocator = shared::allocator::ALLOCATOR;`
//! (the broker wraps it in its huge-allocation guard, `broker::alloc`).
//!
//! Why not the system allocator: a buy allocates and frees dozens of small blocks (the request
//! head, the JSON, the event, the receipt, the answer) on whichever tokio worker runs it, and
//! many are freed on another thread. glibc's arenas handle that with locks and periodic
//! consolidation: `_int_malloc`, `_int_free` and `malloc_consolidate` were about 7% of all CPU
//! samples during `order-bench ingest`. mimalloc keeps per-thread pages and frees cross-thread
//! blocks without a lock.
//!
//! Only Rust's allocations change: librdkafka's C code keeps calling glibc's `malloc`.
//!
//! Benchmarks host the bare ceilings in the same process, so a ceiling and the path measured
//! beside it always run on the same allocator.

/// The allocator type to declare as `#[global_allocator]`.
pub type Allocator = mimalloc::MiMalloc;

/// The value to declare it with.
pub const ALLOCATOR: Allocator = mimalloc::MiMalloc;
