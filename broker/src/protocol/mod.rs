//! The Kafka wire protocol: turning a request frame into a typed request, dispatching it to the
//! handler of its API (one file per API), and encoding the answer. No I/O here: the connection
//! layer moves frames; this layer only transforms them, so it is tested and fuzzed without sockets.

mod api_versions;
mod create_topics;
mod delete_topics;
mod error;
mod fetch;
mod find_coordinator;
mod groups_admin;
mod heartbeat;
mod init_producer_id;
mod join_group;
mod list_offsets;
mod metadata;
mod offset_commit;
mod offset_fetch;
mod offset_for_leader_epoch;
mod produce;
mod sync_group;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{decode_request_header_from_buffer, Encodable};
use thiserror::Error;

pub use kafka_protocol::messages::ApiKey;

use crate::server::Broker;

/// Why a frame cannot be answered. The connection logs it once and closes, as Kafka does.
#[derive(Debug, Error)]
pub enum ProtocolError {
    #[error("frame too short for a request header ({0} bytes)")]
    TooShort(usize),
    #[error("unknown API key {0}")]
    UnknownApi(i16),
    #[error("unsupported version {version} of {api:?}")]
    UnsupportedVersion { api: ApiKey, version: i16 },
    #[error("malformed {api:?} v{version} request: {reason}")]
    Malformed {
        api: ApiKey,
        version: i16,
        reason: String,
    },
    #[error("cannot encode response: {0}")]
    Encode(String),
}

/// A decoded request frame.
#[derive(Debug)]
pub enum Request {
    /// A request we can serve.
    Known {
        header: RequestHeader,
        api: ApiKey,
        body: Box<RequestKind>,
    },
    /// ApiVersions at a version newer than ours: answered with our range, never closed.
    ApiVersionsTooNew { header: RequestHeader },
}

/// Decodes one frame (the bytes after the 4-byte length).
pub fn decode_request(mut frame: Bytes) -> Result<Request, ProtocolError> {
    if frame.len() < 8 {
        return Err(ProtocolError::TooShort(frame.len()));
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let api = ApiKey::try_from(key).map_err(|_| ProtocolError::UnknownApi(key))?;
    let malformed = |reason: String| ProtocolError::Malformed {
        api,
        version,
        reason,
    };
    let Some((min, max)) = api_versions::parse_range(api) else {
        return Err(ProtocolError::UnsupportedVersion { api, version });
    };
    if api == ApiKey::ApiVersions && version > max {
        // Its header is still v2 (client id, then tags): safe to decode by the v3+ rule.
        let header =
            decode_request_header_from_buffer(&mut frame).map_err(|e| malformed(e.to_string()))?;
        return Ok(Request::ApiVersionsTooNew { header });
    }
    if version < min || version > max {
        return Err(ProtocolError::UnsupportedVersion { api, version });
    }
    let header =
        decode_request_header_from_buffer(&mut frame).map_err(|e| malformed(e.to_string()))?;
    let body =
        RequestKind::decode(api, &mut frame, version).map_err(|e| malformed(e.to_string()))?;
    Ok(Request::Known {
        header,
        api,
        body: Box::new(body),
    })
}

/// Who sent a request (for JoinGroup's member ids and DescribeGroups).
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub client_id: String,
    pub client_host: String,
}

/// Runs a request. `None` means "send nothing" (Produce with acks=0).
pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    api: ApiKey,
    version: i16,
    body: RequestKind,
) -> Option<ResponseKind> {
    Some(match body {
        RequestKind::ApiVersions(_) => ResponseKind::ApiVersions(api_versions::response()),
        RequestKind::Metadata(r) => ResponseKind::Metadata(metadata::handle(broker, version, r)),
        RequestKind::Produce(r) => {
            let acks = r.acks;
            let resp = produce::handle(broker, version, r).await;
            if acks == 0 {
                return None;
            }
            ResponseKind::Produce(resp)
        }
        RequestKind::Fetch(r) => ResponseKind::Fetch(fetch::handle(broker, version, r).await),
        RequestKind::ListOffsets(r) => {
            ResponseKind::ListOffsets(list_offsets::handle(broker, version, r))
        }
        RequestKind::CreateTopics(r) => {
            ResponseKind::CreateTopics(create_topics::handle(broker, version, r))
        }
        RequestKind::DeleteTopics(r) => {
            ResponseKind::DeleteTopics(delete_topics::handle(broker, version, r))
        }
        RequestKind::InitProducerId(r) => {
            ResponseKind::InitProducerId(init_producer_id::handle(broker, version, r))
        }
        RequestKind::OffsetForLeaderEpoch(r) => {
            ResponseKind::OffsetForLeaderEpoch(offset_for_leader_epoch::handle(broker, version, r))
        }
        RequestKind::FindCoordinator(r) => {
            ResponseKind::FindCoordinator(find_coordinator::handle(broker, version, r))
        }
        RequestKind::JoinGroup(r) => {
            ResponseKind::JoinGroup(join_group::handle(broker, ctx, version, r).await)
        }
        RequestKind::SyncGroup(r) => {
            ResponseKind::SyncGroup(sync_group::handle(broker, version, r).await)
        }
        RequestKind::Heartbeat(r) => {
            ResponseKind::Heartbeat(heartbeat::heartbeat(broker, version, r))
        }
        RequestKind::LeaveGroup(r) => {
            ResponseKind::LeaveGroup(heartbeat::leave(broker, version, r))
        }
        RequestKind::OffsetCommit(r) => {
            ResponseKind::OffsetCommit(offset_commit::handle(broker, version, r).await)
        }
        RequestKind::OffsetFetch(r) => {
            ResponseKind::OffsetFetch(offset_fetch::handle(broker, version, r))
        }
        RequestKind::ListGroups(r) => {
            ResponseKind::ListGroups(groups_admin::list(broker, version, r))
        }
        RequestKind::DescribeGroups(r) => {
            ResponseKind::DescribeGroups(groups_admin::describe(broker, version, r))
        }
        other => {
            // decode_request only lets through the APIs in the table, all matched above.
            tracing::error!(?api, "no handler for {:?}", std::mem::discriminant(&other));
            return None;
        }
    })
}

/// Encodes a response frame, length prefix included.
pub fn encode_response(
    correlation_id: i32,
    api: ApiKey,
    version: i16,
    body: &ResponseKind,
) -> Result<BytesMut, ProtocolError> {
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    // ApiVersions answers always use header v0, even for flexible versions (KIP-511).
    let header_version = if api == ApiKey::ApiVersions {
        0
    } else {
        api.response_header_version(version)
    };
    header
        .encode(&mut buf, header_version)
        .map_err(|e| ProtocolError::Encode(e.to_string()))?;
    body.encode(&mut buf, version)
        .map_err(|e| ProtocolError::Encode(e.to_string()))?;
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf)
}

/// The v0 ApiVersions error answer for a version we do not speak.
pub fn encode_api_versions_too_new(correlation_id: i32) -> Result<BytesMut, ProtocolError> {
    encode_response(
        correlation_id,
        ApiKey::ApiVersions,
        0,
        &ResponseKind::ApiVersions(api_versions::unsupported_version_response()),
    )
}
