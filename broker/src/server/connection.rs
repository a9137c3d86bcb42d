//! One client connection: reads length-prefixed frames, answers each in order. Requests of one
//! connection are processed one after the other (Kafka clients match answers FIFO); different
//! connections run concurrently, so a parked Fetch blocks only its own connection.

use std::net::SocketAddr;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::broadcast;

use super::Broker;
use crate::protocol::{self, Request};

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
        let answer = match protocol::decode_request(frame.freeze()) {
            Ok(Request::Known { header, api, body }) => {
                let version = header.request_api_version;
                match protocol::handle(broker, api, version, *body).await {
                    Some(resp) => {
                        protocol::encode_response(header.correlation_id, api, version, &resp)
                    }
                    None => continue,
                }
            }
            Ok(Request::ApiVersionsTooNew { header }) => {
                protocol::encode_api_versions_too_new(header.correlation_id)
            }
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
            }
            Err(e) => {
                tracing::error!(%peer, error = %e, "cannot encode response; closing connection");
                return;
            }
        }
    }
}
