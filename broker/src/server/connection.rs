//! One client connection: reads length-prefixed frames, answers each in order. Requests of one
//! connection are processed one after the other (Kafka clients match answers FIFO); different
//! connections run concurrently, so a parked Fetch blocks only its own connection.

use std::net::SocketAddr;

use std::time::Instant;

use bytes::BytesMut;
use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::broadcast;

use super::Broker;
use crate::protocol::{self, Request, RequestContext};

pub(crate) async fn run(
    broker: &Broker,
    mut socket: TcpStream,
    peer: SocketAddr,
    mut shutdown: broadcast::Receiver<()>,
) {
    let _ = socket.set_nodelay(true);
    let max = broker.config.max_frame_bytes;
    loop {
        let size = tokio::select! {
            r = socket.read_i32() => match r {
                Ok(n) => n,
                Err(_) => return, // closed by the client
            },
            _ = shutdown.recv() => return,
        };
        if size <= 0 || size as usize > max {
            tracing::warn!(%peer, size, max, "invalid frame size; closing connection");
            return;
        }
        let mut frame = BytesMut::zeroed(size as usize);
        if let Err(e) = socket.read_exact(&mut frame).await {
            tracing::debug!(%peer, error = %e, "connection closed mid-frame");
            return;
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
                match protocol::handle(broker, &ctx, api, version, *body).await {
                    Some(resp) => (
                        api,
                        protocol::encode_response(header.correlation_id, api, version, &resp),
                    ),
                    None => {
                        broker
                            .metrics
                            .record_request(api_name(api), started.elapsed());
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
                    .record_request(api_name(api), started.elapsed());
            }
            Err(e) => {
                tracing::error!(%peer, error = %e, "cannot encode response; closing connection");
                return;
            }
        }
    }
}

/// Metric label of an API: Kafka's own name for it.
fn api_name(api: ApiKey) -> &'static str {
    match api {
        ApiKey::Produce => "Produce",
        ApiKey::Fetch => "Fetch",
        ApiKey::ListOffsets => "ListOffsets",
        ApiKey::Metadata => "Metadata",
        ApiKey::ApiVersions => "ApiVersions",
        ApiKey::CreateTopics => "CreateTopics",
        ApiKey::DeleteTopics => "DeleteTopics",
        ApiKey::InitProducerId => "InitProducerId",
        ApiKey::OffsetForLeaderEpoch => "OffsetForLeaderEpoch",
        ApiKey::FindCoordinator => "FindCoordinator",
        ApiKey::JoinGroup => "JoinGroup",
        ApiKey::SyncGroup => "SyncGroup",
        ApiKey::Heartbeat => "Heartbeat",
        ApiKey::LeaveGroup => "LeaveGroup",
        ApiKey::OffsetCommit => "OffsetCommit",
        ApiKey::OffsetFetch => "OffsetFetch",
        ApiKey::ListGroups => "ListGroups",
        ApiKey::DescribeGroups => "DescribeGroups",
        _ => "Other",
    }
}
