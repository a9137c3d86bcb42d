//! Any bytes as a record set: validation and timestamp scanning must not panic, and whatever
//! validates must have consistent framing.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The broker binary's allocator, so fuzzing sees what the broker does with huge array counts.
#[global_allocator]
static ALLOC: broker::alloc::NoReserveHugeAlloc = broker::alloc::NoReserveHugeAlloc;

fuzz_target!(|data: &[u8]| {
    if let Ok(headers) = broker::log::batch::validate_record_set(data) {
        let total: usize = headers.iter().map(|h| h.total_len()).sum();
        assert_eq!(total, data.len());
    }
    let _ = broker::log::batch::record_timestamps(data);
});
