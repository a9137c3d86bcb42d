//! One client connection: reads length-prefixed frames, answers each in order. Requests of one
//! connection are processed one after the other (Kafka clients match answers FIFO); different
//! connections run concurrently, so a parked Fetch blocks only its own connection.
//!
//! Shutdown: a connection stops at the next frame boundary. A request already read is finished
//! and answered (a Produce waits for its fsync); one still parked [`SHUTDOWN_GRACE`] after the
//! shutdown began (a Fetch long poll of up to 30 s) is dropped with its connection, as a broker
//! going away would: the client retries.

use std::net::SocketAddr;
use std::sync::Arc;

use std::time::{Duration, Instant};

use bytes::BytesMut;
use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::metrics::ClosedBecause;
use crate::protocol::{self, Request, RequestContext};
use crate::state::Broker;

/// How long a request in hand may take once shutdown began.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Resolves [`SHUTDOWN_GRACE`] after `shutdown` is cancelled.
async fn grace_after(shutdown: &CancellationToken) {
    shutdown.cancelled().await;
    tokio::time::sleep(SHUTDOWN_GRACE).await;
}

pub(crate) async fn run(
    broker: &Arc<Broker>,
    mut socket: TcpStream,
    peer: SocketAddr,
    shutdown: CancellationToken,
) {
    let _ = socket.set_nodelay(true);
    let max = broker.config.max_frame_bytes;
    let idle = broker.config.idle_timeout;
    loop {
        let size = tokio::select! {
            r = socket.read_i32() => match r {
                Ok(n) => n,
                Err(_) => return, // closed by the client
            },
            _ = shutdown.cancelled() => return,
            // Counted between requests only: a parked Fetch or a slow fsync is not idleness.
            _ = tokio::time::sleep(idle) => {
                tracing::debug!(%peer, ?idle, "connection idle; closing");
                broker.metrics.closed_by_broker(ClosedBecause::Idle);
                return;
            }
        };
        if size <= 0 || size as usize > max {
            tracing::warn!(%peer, size, max, "invalid frame size; closing connection");
            return;
        }
        let mut frame = BytesMut::zeroed(size as usize);
        // A request is only taken on once it is whole: a client that stops half-way must not
        // hold the broker's shutdown.
        tokio::select! {
            r = socket.read_exact(&mut frame) => if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "connection closed mid-frame");
                return;
            },
            _ = shutdown.cancelled() => return,
        }
        // Once a request is read it is finished and answered even if shutdown starts meanwhile.
        let started = Instant::now();
        let (api, answer) = match protocol::decode_request(frame.freeze()) {
            Ok(Request::Known { header, api, body }) => {
                let version = header.request_api_version;
                let ctx = RequestContext {
                    client_id: header
                        .client_id
                        .as_ref()
                        .map(|c| c.to_string())
                        .unwrap_or_default(),
                    client_host: format!("/{}", peer.ip()),
                };
                let handled = tokio::select! {
                    r = protocol::handle(broker, &ctx, api, version, *body) => r,
                    _ = grace_after(&shutdown) => {
                        tracing::debug!(%peer, ?api, "request still parked at shutdown; closing");
                        return;
                    }
                };
                match handled {
                    Some(resp) => (
                        api,
                        protocol::encode_response(header.correlation_id, api, version, &resp),
                    ),
                    None => {
                        broker
                            .metrics
                            .record_request(protocol::api_name(api), started.elapsed());
                        continue;
                    }
                }
            }
            Ok(Request::ApiVersionsTooNew { header }) => (
                ApiKey::ApiVersions,
                protocol::encode_api_versions_too_new(header.correlation_id),
            ),
            Err(e) => {
                tracing::warn!(%peer, error = %e, "bad request; closing connection");
                return;
            }
        };
        match answer {
            Ok(bytes) => {
                if socket.write_all(&bytes).await.is_err() {
                    return;
                }
                broker
                    .metrics
                    .record_request(protocol::api_name(api), started.elapsed());
            }
            Err(e) => {
                tracing::error!(%peer, error = %e, "cannot encode response; closing connection");
                return;
            }
        }
    }
}
