//! A crowd of connections arriving at once is queued, not dropped: with the standard backlog
//! (128) the connections past it wait for a SYN retransmission a second later.

use std::time::Duration;

use tokio::net::TcpStream;

/// Connections opened together while nothing accepts: more than the standard library's 128.
const CROWD: usize = 600;

#[tokio::test]
async fn a_crowd_connecting_at_once_is_queued_while_the_server_is_busy() {
    let listener = shared::listener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    // Nothing accepts: the server is busy. Every connection must still complete its handshake
    // at once, well before the 1 s a dropped SYN costs.
    let connects: Vec<_> = (0..CROWD)
        .map(|_| {
            tokio::spawn(async move {
                tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(addr)).await
            })
        })
        .collect();
    let mut open = Vec::new();
    let mut late = 0;
    for c in connects {
        match c.await.unwrap() {
            Ok(Ok(s)) => open.push(s),
            _ => late += 1,
        }
    }
    assert_eq!(
        late, 0,
        "{late} of {CROWD} connections did not complete within 500 ms"
    );
    // And they are all there to be accepted.
    for _ in 0..CROWD {
        tokio::time::timeout(Duration::from_secs(1), listener.accept())
            .await
            .unwrap()
            .unwrap();
    }
    drop(open);
}

#[tokio::test]
async fn both_address_families_bind() {
    let v4 = shared::listener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    assert!(v4.local_addr().unwrap().is_ipv4());
    // IPv6 may be disabled on a machine; where it is there, it binds.
    if std::net::TcpListener::bind("[::1]:0").is_ok() {
        let v6 = shared::listener::bind("[::1]:0".parse().unwrap()).unwrap();
        assert!(v6.local_addr().unwrap().is_ipv6());
    }
}
