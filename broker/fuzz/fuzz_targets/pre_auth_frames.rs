//! Any bytes as what an unauthenticated SASL connection reads: no frame it hands on, and no
//! buffer it holds, may exceed the limit before authentication (512 KiB, Kafka's
//! `sasl.server.max.receive.size`) by more than one read's chunk, whatever size prefixes the
//! peer sends. Issue 34 found a 50 MB SCRAM first message accepted before login (RSS 24 -> 384
//! MiB, and echoed back); the SASL target fuzzes the mechanisms' parsers, this one the limit in
//! front of them. Run with `-max_len=1100000` to cross the limit.
#![no_main]

use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 512 * 1024;
/// The reader's read chunk (`server/frames.rs`), the most it may hold beyond a frame.
const SLACK: usize = 16 * 1024 + 4;

fuzz_target!(|data: &[u8]| {
    let (sizes, _bad_size, most_held) = broker::frames_before_authentication(data);
    assert!(sizes.iter().all(|&n| n <= LIMIT), "a frame past the limit: {sizes:?}");
    assert!(
        most_held <= LIMIT + SLACK,
        "{most_held} bytes held for a connection that has not logged in"
    );
});
