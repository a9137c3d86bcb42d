//! The Kafka TCP server over the shared [`Broker`](crate::state::Broker) state.
//!
//! - `listener`: accept loops (one per listener), connection limits, TLS handshakes, graceful
//!   shutdown.
//! - `connection`: one client: requests in, answers out in order (a Produce's answer waits for
//!   its fsync while the next request is read).
//! - `frames`: whole request frames off the socket, cancel-safe.

mod connection;
mod frames;
mod listener;

pub(crate) use listener::{serve, Bound};

/// What an unauthenticated SASL connection makes of `input` as its socket's bytes: the sizes of
/// the whole frames it reads under the limit before authentication (Kafka's
/// `sasl.server.max.receive.size`, 512 KiB), whether it stopped on a size prefix out of range,
/// and the most buffer room it held meanwhile. For the fuzz target `pre_auth_frames` (and its
/// invariant: no frame and no buffer past the limit, plus one read's chunk, whatever the bytes).
#[cfg(feature = "harness")]
pub fn frames_before_authentication(input: &[u8]) -> (Vec<usize>, bool, usize) {
    let max = connection::MAX_FRAME_BEFORE_AUTHENTICATION;
    let mut socket = input;
    let mut reader = frames::Frames::default();
    let (mut sizes, mut most) = (Vec::new(), 0);
    // A slice never makes a read wait, so each step completes when first polled.
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    loop {
        let step =
            std::future::Future::poll(std::pin::pin!(reader.next(&mut socket, max)), &mut cx);
        most = most.max(reader.capacity());
        match step {
            std::task::Poll::Ready(Ok(frame)) => sizes.push(frame.len()),
            std::task::Poll::Ready(Err(frames::FrameEnd::BadSize(_))) => {
                return (sizes, true, most)
            }
            std::task::Poll::Ready(Err(frames::FrameEnd::Closed { .. }))
            | std::task::Poll::Pending => return (sizes, false, most),
        }
    }
}

#[cfg(all(test, feature = "harness"))]
mod tests {
    #[test]
    fn a_frame_past_the_pre_authentication_limit_is_refused_before_it_is_read() {
        let mut input = 100i32.to_be_bytes().to_vec();
        input.extend([0u8; 100]);
        input.extend((512i32 * 1024 + 1).to_be_bytes());
        input.extend(vec![0u8; 600 * 1024]);
        let (sizes, bad, most) = super::frames_before_authentication(&input);
        assert_eq!(sizes, [100]);
        assert!(bad);
        assert!(most < 64 * 1024, "{most} bytes held for a refused frame");
    }
}
