//! The Kafka wire protocol: turning a request frame into a typed request, dispatching it to the
//! handler of its API (one file per API), and encoding the answer. No I/O here: the connection
//! layer moves frames; this layer only transforms them, so it is tested and fuzzed without sockets.

mod alter_configs;
mod api_versions;
mod configs;
mod create_acls;
mod create_partitions;
mod create_topics;
mod delete_acls;
mod delete_groups;
mod delete_records;
mod delete_topics;
mod describe_acls;
mod describe_cluster;
mod describe_configs;
mod describe_groups;
mod describe_log_dirs;
mod error;
mod fetch;
mod find_coordinator;
mod heartbeat;
mod incremental_alter_configs;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_groups;
mod list_offsets;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod offset_for_leader_epoch;
mod produce;
pub(crate) mod sasl_authenticate;
pub(crate) mod sasl_handshake;
mod sync_group;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{decode_request_header_from_buffer, Encodable, StrBytes};
use thiserror::Error;

pub use kafka_protocol::messages::ApiKey;

use std::sync::Arc;

use crate::acl::{Authorizer, Caller, Operation, ResourceType};
use crate::listeners::Endpoint;
use crate::state::Broker;

/// Runs a request's blocking file work on tokio's blocking pool instead of the runtime worker
/// that polls the request. `None` if the work panicked (the caller answers with an error).
///
/// Where the line is drawn, and why (measured on this 2-core machine):
/// - A worker stuck on the disk stalls every connection it would run, and the runtime has one
///   worker per core. Creating a 100-partition topic (a few hundred file creations and syncs,
///   200-400 ms) on a worker under the registry's write lock held Metadata at p99 400 ms and
///   Produce at p99 472 ms for another client (`tests/wire/responsiveness.rs`). So topic
///   creation and deletion, producer-id blocks (an fsync), timestamp lookups, Produce appends
///   that roll a segment (file creation) and Fetch reads of data not in the page cache go here.
/// - The hop is not free: ~18 us per call (`cargo bench -p broker --bench offload`: a 1 KiB
///   append 1.9 us in place, 19.7 us through the pool; a 16 KiB read 4.8 vs 23.7 us), and with
///   every append and read hopping, kcat's acks=all throughput with 10 KB requests fell from
///   253-354k to 219-290k msg/s. So the page-cache fast path stays in place: appends that do not
///   roll (a copy into the page cache; the fsyncs are the flush pool's), and Fetch reads that
///   `preadv2(RWF_NOWAIT)` can serve from the page cache, which is what a consumer keeping up
///   reads. What it still leaves: a page-cache write can block under dirty-page throttling,
///   which the fsync policy's continuous flushing keeps from building up.
pub(crate) async fn off_runtime<T, F>(work: F) -> Option<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::error!(error = %e, "blocking work of a request failed");
            None
        }
    }
}

/// One API this broker serves: what ApiVersions advertises, what the decoder accepts, and the
/// name its metrics and logs use.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ApiSpec {
    pub(crate) key: ApiKey,
    /// Kafka's own name for the API.
    pub(crate) name: &'static str,
    /// Advertised range.
    pub(crate) min: i16,
    pub(crate) max: i16,
    /// Lowest version actually decoded, where it is above the advertised minimum.
    pub(crate) parse_min: i16,
    /// Handled by the connection, which owns the authentication state (SaslHandshake,
    /// SaslAuthenticate); advertised only when SASL is on.
    pub(crate) sasl: bool,
}

/// Builds the table of APIs and the dispatch to their handlers from one list, so an API is
/// served exactly when it is advertised. Each handler is `handle(broker, ctx, version, request)`
/// in the file named after the API; `sync`/`async` say how it is called, `optional` that it may
/// return `None` (no answer at all: Produce with acks=0), `connection` that the connection
/// answers it itself (SASL: it owns the authentication state).
///
/// Authorization (the ACLs, `crate::acl`) is one attribute per row. `acl` after the module: the
/// module's `needs(&request)` lists what the request needs (an operation on a resource, or one
/// of several), and a caller lacking any of it gets the module's `denied(version, request)`
/// instead of `handle`: the API's own answer with TOPIC_, GROUP_ or CLUSTER_AUTHORIZATION_FAILED
/// where its response puts errors. Such a request is refused whole. The APIs without the word
/// check per topic inside `handle` (Produce, Fetch and Metadata serve the topics allowed beside
/// errors for the others, as Kafka does), or need nothing (ApiVersions, the SASL APIs).
macro_rules! kafka_apis {
    ($( $api:ident $min:literal ..= $max:literal $(parsed from $parse:literal)? => $how:ident $module:ident $($admin:ident)? ),* $(,)?) => {
        /// Every API this broker serves, in ApiVersions order.
        pub(crate) const APIS: &[ApiSpec] = &[$(
            ApiSpec {
                key: ApiKey::$api,
                name: stringify!($api),
                min: $min,
                max: $max,
                parse_min: kafka_apis!(@parse $min $($parse)?),
                sasl: kafka_apis!(@sasl $how),
            },
        )*];

        /// Runs a request. `None` means "send nothing" (Produce with acks=0).
        pub async fn handle(
            broker: &Arc<Broker>,
            ctx: &RequestContext,
            api: ApiKey,
            version: i16,
            body: RequestKind,
        ) -> Option<ResponseKind> {
            match body {
                $( RequestKind::$api(r) => {
                    kafka_apis!(@guard broker ctx version r $module $($admin)?);
                    kafka_apis!(@call $how $module (broker, ctx, version, r))
                } )*
                other => {
                    // decode_request only lets through the APIs in the table, all matched above.
                    tracing::error!(?api, "no handler for {:?}", std::mem::discriminant(&other));
                    None
                }
            }
        }
    };
    (@parse $min:literal) => { $min };
    (@parse $min:literal $parse:literal) => { $parse };
    (@sasl connection) => { true };
    (@sasl $how:ident) => { false };
    (@guard $broker:ident $ctx:ident $version:ident $r:ident $module:ident) => {};
    (@guard $broker:ident $ctx:ident $version:ident $r:ident $module:ident acl) => {
        if let Some(need) = $ctx.lacks(&$module::needs($broker, &$r)) {
            tracing::info!(principal = %$ctx.principal, api = stringify!($module), ?need, "refused by the ACLs");
            let lacking = need.clone();
            return Some(ResponseKind::from($module::denied($version, $r, &lacking)));
        }
    };
    (@call sync $module:ident $args:tt) => { Some(ResponseKind::from($module::handle $args)) };
    (@call async $module:ident $args:tt) => { Some(ResponseKind::from($module::handle $args.await)) };
    (@call optional $module:ident $args:tt) => { $module::handle $args.await.map(ResponseKind::from) };
    (@call connection $module:ident $args:tt) => {{
        // The connection answers these before dispatch (server/connection.rs).
        let _ = $args;
        tracing::error!(api = stringify!($module), "SASL request reached the dispatch");
        None
    }};
}

// The one list of served APIs: name, advertised versions, handler. Produce is advertised from
// v0 although v0-2 are refused: librdkafka enables compression only when the range contains
// Produce v0 (KAFKA-18659; see docs/kafka-compat.md). The other lower bounds are the oldest
// versions the `kafka-protocol` codec parses. SaslHandshake likewise is advertised from v0 but
// only v1 is served: librdkafka before 2.11 enables SASL handshakes only when the range contains
// v0 (a point check), then uses v1 (protocol/sasl_handshake.rs). `acl`: the request is checked
// against the ACLs as a whole before it runs (see `kafka_apis!`).
kafka_apis! {
    Produce              0..=10 parsed from 3 => optional produce,
    Fetch                4..=12               => async fetch,
    ListOffsets          1..=10               => async list_offsets acl,
    Metadata             0..=12               => async metadata,
    ApiVersions          0..=4                => sync api_versions,
    CreateTopics         2..=7                => async create_topics acl,
    DeleteTopics         1..=6                => async delete_topics acl,
    InitProducerId       0..=4                => async init_producer_id,
    OffsetForLeaderEpoch 2..=4                => sync offset_for_leader_epoch acl,
    OffsetCommit         2..=9                => async offset_commit acl,
    OffsetFetch          1..=9                => sync offset_fetch acl,
    FindCoordinator      0..=4                => sync find_coordinator acl,
    JoinGroup            0..=9                => async join_group acl,
    Heartbeat            0..=4                => sync heartbeat acl,
    LeaveGroup           0..=5                => sync leave_group acl,
    SyncGroup            0..=5                => async sync_group acl,
    DescribeGroups       0..=5                => sync describe_groups acl,
    ListGroups           0..=4                => sync list_groups,
    DescribeConfigs      1..=4                => sync describe_configs acl,
    AlterConfigs         0..=2                => async alter_configs acl,
    IncrementalAlterConfigs 0..=1             => async incremental_alter_configs acl,
    CreatePartitions     0..=3                => async create_partitions acl,
    DeleteRecords        0..=2                => async delete_records acl,
    DescribeCluster      0..=2                => sync describe_cluster acl,
    DescribeLogDirs      1..=4                => sync describe_log_dirs acl,
    DeleteGroups         0..=2                => async delete_groups acl,
    OffsetDelete         0..=0                => async offset_delete acl,
    DescribeAcls         1..=3                => sync describe_acls acl,
    CreateAcls           1..=3                => async create_acls acl,
    DeleteAcls           1..=3                => async delete_acls acl,
    SaslHandshake        0..=1 parsed from 1  => connection sasl_handshake,
    SaslAuthenticate     0..=2                => connection sasl_authenticate,
}

/// How a request ran, for a connection that keeps its next request from waiting on an fsync.
pub(crate) enum Handled {
    /// Answered (`None`: send nothing, Produce with acks=0). Boxed: a response is large, and
    /// this is moved once per request.
    Now(Option<Box<ResponseKind>>),
    /// A Produce whose batches are appended; the answer resolves once they are durable. Its
    /// effects are in the logs already, so the connection may read and run the next request
    /// meanwhile (the answers still go out in order).
    WhenDurable(std::pin::Pin<Box<dyn std::future::Future<Output = ResponseKind> + Send>>),
}

/// Like [`handle`], except that a Produce needing an answer returns as soon as its batches are
/// appended, with its answer still to come ([`Handled::WhenDurable`]).
pub(crate) async fn handle_pipelined(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    api: ApiKey,
    version: i16,
    body: RequestKind,
) -> Handled {
    match body {
        RequestKind::Produce(r) if r.acks != 0 => {
            let appended = produce::append(broker, ctx, r).await;
            Handled::WhenDurable(Box::pin(async move {
                ResponseKind::from(appended.durable().await)
            }))
        }
        other => Handled::Now(handle(broker, ctx, api, version, other).await.map(Box::new)),
    }
}

/// The table entry of `key`, if this broker serves it.
pub(crate) fn spec(key: ApiKey) -> Option<&'static ApiSpec> {
    APIS.iter().find(|a| a.key == key)
}

/// Metric label of an API: Kafka's own name for it ("Other" for one we do not serve).
pub fn api_name(key: ApiKey) -> &'static str {
    spec(key).map_or("Other", |a| a.name)
}

pub(crate) fn str_bytes(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

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
    let Some(&ApiSpec {
        parse_min: min,
        max,
        ..
    }) = spec(api)
    else {
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

/// Who sent a request (for JoinGroup's member ids and DescribeGroups, and authorization).
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub client_id: String,
    pub client_host: String,
    /// Kafka's form: `User:alice`, `User:ANONYMOUS` before or without authentication, the
    /// subject of a TLS client certificate (`User:CN=...`).
    pub principal: String,
    /// The client's IP address, as ACL hosts name it.
    pub host: String,
    /// Whose rules decide what the caller may do.
    pub authorization: Authorization,
    /// The listener the request came in on: the address to advertise, whether SASL runs there.
    pub listener: Arc<Endpoint>,
}

/// What decides a request's rights.
#[derive(Debug, Clone, Default)]
pub enum Authorization {
    /// Nothing is allowed: a context built without thought is least privileged.
    #[default]
    Nothing,
    /// No authorizer runs (no SASL users configured): every client may do everything, as on a
    /// Kafka broker without `authorizer.class.name`.
    Everything,
    /// The ACLs decide.
    Acls(Arc<Authorizer>),
}

/// One thing a request needs: any one of these (operation, resource type, name) grants it
/// (CreateTopics: CREATE on the cluster or on the topic).
pub(crate) type Need = Vec<(Operation, ResourceType, String)>;

/// `op` on each of `names` of type `rt`.
pub(crate) fn on_each<'a>(
    op: Operation,
    rt: ResourceType,
    names: impl IntoIterator<Item = &'a str>,
) -> Vec<Need> {
    names
        .into_iter()
        .map(|n| vec![(op, rt, n.to_string())])
        .collect()
}

/// `group_op` on the group and READ on each of `topics`: what a request on a group's committed
/// offsets needs (OffsetCommit, OffsetDelete).
pub(crate) fn on_group_and_topics<'a>(
    group_op: Operation,
    group: &str,
    topics: impl IntoIterator<Item = &'a str>,
) -> Vec<Need> {
    let mut needs = on_each(group_op, ResourceType::Group, [group]);
    needs.extend(on_each(Operation::Read, ResourceType::Topic, topics));
    needs
}

/// `op` on the cluster.
pub(crate) fn on_cluster(op: Operation) -> Vec<Need> {
    vec![vec![(
        op,
        ResourceType::Cluster,
        crate::acl::CLUSTER.to_string(),
    )]]
}

impl RequestContext {
    /// May the caller do `op` on the resource `name` of type `rt`?
    pub fn allows(&self, op: Operation, rt: ResourceType, name: &str) -> bool {
        self.decide(|a, caller| a.allows(caller, op, rt, name))
    }

    /// May the caller do `op` on at least some resource of type `rt` (Kafka's
    /// authorizeByResourceType: InitProducerId with WRITE on any topic)?
    pub fn allows_some(&self, op: Operation, rt: ResourceType) -> bool {
        self.decide(|a, caller| a.allows_some(caller, op, rt))
    }

    /// What `Authorization` says, asking the ACLs through `ask` when they decide.
    fn decide(&self, ask: impl FnOnce(&Authorizer, Caller<'_>) -> bool) -> bool {
        match &self.authorization {
            Authorization::Nothing => false,
            Authorization::Everything => true,
            Authorization::Acls(a) => ask(
                a,
                Caller {
                    principal: &self.principal,
                    host: &self.host,
                },
            ),
        }
    }

    /// The first of `needs` the caller lacks, if any.
    pub(crate) fn lacks<'a>(&self, needs: &'a [Need]) -> Option<&'a Need> {
        needs.iter().find(|any_of| {
            !any_of
                .iter()
                .any(|(op, rt, name)| self.allows(*op, *rt, name))
        })
    }

    /// May the caller do `op` on the topic `name`?
    pub fn on_topic(&self, op: Operation, name: &str) -> bool {
        self.allows(op, ResourceType::Topic, name)
    }
}

/// Encodes a response frame, length prefix included.
pub fn encode_response(
    correlation_id: i32,
    api: ApiKey,
    version: i16,
    body: &ResponseKind,
) -> Result<BytesMut, ProtocolError> {
    // Sized once: a Fetch answer can be tens of MiB, and growing by doubling would briefly hold
    // up to twice that.
    let body_size = match body {
        ResponseKind::Fetch(r) => r.compute_size(version).unwrap_or(0),
        _ => 0,
    };
    let mut buf = BytesMut::with_capacity(body_size + 64);
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
