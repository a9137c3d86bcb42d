//! Any bytes as a request frame: decoding must return a request or an error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The broker binary's allocator, so fuzzing sees what the broker does with huge array counts.
#[global_allocator]
static ALLOC: broker::alloc::NoReserveHugeAlloc = broker::alloc::NoReserveHugeAlloc;

fuzz_target!(|data: &[u8]| {
    let _ = broker::protocol::decode_request(bytes::Bytes::copy_from_slice(data));
});
