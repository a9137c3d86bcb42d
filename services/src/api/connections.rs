//! The API's HTTP connections, accepted here rather than by `axum::serve`, for the two limits a
//! server facing a crowd needs and `axum::serve` does not set:
//! - **a header read timeout**: a connection that has sent part of a request's headers, or sits
//!   idle between keep-alive requests, is closed after [`ConnectionLimits::header_read_timeout`].
//!   (hyper has the timeout, but it fires only with a timer, and `axum::serve` gives it none:
//!   partial headers and idle keep-alives stayed open for ever, and 21,000 of them took every
//!   file descriptor from the buyers.)
//! - **at most [`ConnectionLimits::max_connections`] open at once**: past it a new connection is
//!   answered 503 `busy` with `Retry-After: 1` and closed, so the descriptors a process has are
//!   never all held by clients that do not finish their requests.
//!
//! Shutdown is axum's: stop accepting, let requests in flight finish, close idle connections.
//! A request body that arrives too slowly is bounded by the router (`body_deadline.rs`).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// The limits of [`serve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// How long a connection may take to send a request's headers, counted from when it is
    /// ready for the next request (so also how long an idle keep-alive connection stays open).
    pub header_read_timeout: Duration,
    /// Open connections at most; past it a new one gets 503 `busy` and is closed.
    pub max_connections: usize,
    /// How long a request's body may take to arrive once its headers have (`body_deadline.rs`):
    /// past it, 408 and the connection is closed.
    pub body_read_timeout: Duration,
}

impl Default for ConnectionLimits {
    /// 10 s for headers is ample for a client on a slow link (a buy's request is a few hundred
    /// bytes) and short for one that holds a connection without using it. 10,000 connections
    /// is far more than a load balancer opens to one instance, and far below a container's
    /// descriptor limit.
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            body_read_timeout: Duration::from_secs(10),
        }
    }
}

/// The answer to a connection past the cap: written whole, then the connection is closed.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
retry-after: 1\r\nconnection: close\r\ncontent-length: 68\r\n\r\n\
{\"error\":\"busy\",\"detail\":\"too many open connections; retry shortly\"}";

/// Serves `app` on `listener` until `shutdown` resolves, then finishes the requests in flight.
/// Each request carries its client's `ConnectInfo<SocketAddr>`, as with axum's
/// `into_make_service_with_connect_info`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors, or a connection reset before it was accepted: the
                    // listener itself is fine; wait a moment rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tokio::spawn(refuse(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = app
            .clone()
            .map_request(move |mut req: axum::http::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                req
            });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Answers a connection past the cap with [`BUSY`] and closes it. What the client sent first
/// is read (briefly) before closing, so the close does not reset the connection under the
/// answer.
async fn refuse(mut stream: TcpStream) {
    let _ = stream.write_all(BUSY).await;
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_millis(200), async {
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busy_answer_says_its_length_right() {
        let text = std::str::from_utf8(BUSY).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"], "busy");
    }
}
