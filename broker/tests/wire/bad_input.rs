//! Bad input on the wire: the offending connection is closed (or answered with the documented
//! error), and the broker keeps serving everyone else.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::harness::{kcat, BrokerProcess};

fn connect(b: &BrokerProcess) -> TcpStream {
    let s = TcpStream::connect(b.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// True when the broker closed the connection (EOF or reset) instead of answering. A read that
/// times out is not a close: a broker that hangs on the frame fails the test.
fn closed(mut s: TcpStream) -> bool {
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe
        ),
    }
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as i32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

#[test]
fn garbage_oversized_and_truncated_frames_close_only_that_connection() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &["--max-frame-bytes", "65536"]);

    // Unknown API key.
    let mut s = connect(&broker);
    s.write_all(&frame(&[0x7f, 0x7f, 0, 0, 0, 0, 0, 1, 0xff, 0xff]))
        .unwrap();
    assert!(closed(s));

    // Announced size over the limit: closed without reading (or allocating) it.
    let mut s = connect(&broker);
    s.write_all(&(1_000_000_000i32).to_be_bytes()).unwrap();
    assert!(closed(s));

    // Negative size.
    let mut s = connect(&broker);
    s.write_all(&(-5i32).to_be_bytes()).unwrap();
    assert!(closed(s));

    // Known API (Metadata v12) with a body cut short.
    let mut s = connect(&broker);
    s.write_all(&frame(&[0, 3, 0, 12, 0, 0, 0, 7, 0, 0, 0, 5]))
        .unwrap();
    assert!(closed(s));

    // Produce v2 (advertised for librdkafka's sake, but not parseable): closed.
    let mut s = connect(&broker);
    s.write_all(&frame(&[0, 0, 0, 2, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0]))
        .unwrap();
    assert!(closed(s));

    // Metadata v0 declaring 2^31-1 topics in a 17-byte frame: the decoder sizes a Vec from that
    // count before reading; the broker must refuse the frame, not abort (found by fuzzing).
    let mut s = connect(&broker);
    s.write_all(&frame(&[
        0, 3, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0,
    ]))
    .unwrap();
    assert!(closed(s));

    // A client that hangs up mid-frame.
    let mut s = connect(&broker);
    s.write_all(&(100i32).to_be_bytes()).unwrap();
    s.write_all(&[0, 18]).unwrap();
    drop(s);

    // Everyone else is still served.
    let meta = String::from_utf8(kcat(&broker, &["-L"], "").stdout).unwrap();
    assert!(meta.contains("1 brokers"), "{meta}");
}

#[test]
fn api_versions_at_an_unknown_version_gets_a_v0_error_answer() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let mut s = connect(&broker);
    // ApiVersions v9, correlation id 42, client id "x", empty tag section, empty body tags.
    s.write_all(&frame(&[0, 18, 0, 9, 0, 0, 0, 42, 0, 1, b'x', 0, 0]))
        .unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).unwrap();
    // Header v0: correlation id; body v0: error_code 35, [ {18, 0, 4} ].
    assert_eq!(&body[..4], &42i32.to_be_bytes());
    assert_eq!(i16::from_be_bytes([body[4], body[5]]), 35);
    assert_eq!(&body[6..10], &1i32.to_be_bytes());
    assert_eq!(&body[10..16], &[0, 18, 0, 0, 0, 4]);
    // The connection stays open: a v3 request on it is answered normally.
    s.write_all(&frame(&[
        0, 18, 0, 3, 0, 0, 0, 43, 0, 1, b'x', 0, 2, b'k', 2, b'1', 0,
    ]))
    .unwrap();
    s.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).unwrap();
    assert_eq!(&body[..4], &43i32.to_be_bytes());
    assert_eq!(i16::from_be_bytes([body[4], body[5]]), 0);
}
