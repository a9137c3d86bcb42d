//! One client connection: reads length-prefixed frames, answers each in order (Kafka clients
//! match answers FIFO). Requests of one connection run one after the other, with one exception:
//! a Produce is appended at once and its answer waits for the fsync while the connection reads
//! on, so the next Produce (a client keeps up to 5 in flight) is appended meanwhile and the
//! two share an fsync, or run beside each other on two partitions. Taking them one at a time,
//! every request of a producer's connection waited for the fsyncs of all those before it. Any
//! other request waits until the answers before it are out, so it runs as it would alone.
//! Different connections run concurrently, so a parked Fetch blocks only its own connection.
//!
//! Shutdown: a connection stops at the next frame boundary. A request already read is finished
//! and answered (a Produce waits for its fsync); one still parked [`SHUTDOWN_GRACE`] after the
//! shutdown began (a Fetch long poll of up to 30 s) is dropped with its connection, as a broker
//! going away would: the client retries.
//!
//! The socket is a TCP stream or TLS over one ([`Socket`]); the accept loop did the handshake.
//!
//! Authentication: on a SASL listener, the connection starts unauthenticated and serves only
//! ApiVersions, SaslHandshake and SaslAuthenticate until an exchange succeeds ([`AuthState`]);
//! any other request closes it, as Kafka does. A failed exchange is answered, then closed. The
//! principal it ends with is the one the ACLs check for every later request ([`RequestContext`]).

use std::net::SocketAddr;
use std::sync::Arc;

use std::time::{Duration, Instant};

use std::future::Future;
use std::pin::Pin;

use bytes::BytesMut;
use futures_util::stream::{FuturesOrdered, StreamExt};
use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::frames::{FrameEnd, Frames};
use super::listener::AddressSlot;
use crate::acl::Authorizer;
use crate::auth::{Exchange, Principal};
use crate::listeners::Endpoint;
use crate::metrics::ClosedBecause;
use crate::protocol::sasl_authenticate::{self, Outcome};
use crate::protocol::{self, sasl_handshake, Authorization, Handled, Request, RequestContext};
use crate::state::Broker;
use kafka_protocol::messages::{RequestKind, ResponseKind};

/// Where a connection stands with SASL.
#[derive(Debug)]
enum AuthState {
    /// A listener without SASL: everyone is trusted (and may use admin APIs). The principal is
    /// the subject of the client's TLS certificate, or `ANONYMOUS`.
    Trusted(String),
    /// Waiting for SaslHandshake.
    AwaitHandshake,
    /// Handshake done; SaslAuthenticate steps of this exchange.
    Exchanging(Exchange),
    Authenticated(Principal),
}

impl AuthState {
    fn new(listener: &Endpoint, tls_principal: Option<String>) -> Self {
        if listener.protocol.sasl() {
            AuthState::AwaitHandshake
        } else {
            AuthState::Trusted(tls_principal.unwrap_or_else(|| ANONYMOUS.to_string()))
        }
    }

    /// The largest request frame read in this state. Before authentication only ApiVersions and
    /// the SASL exchange may come, all small: a frame above Kafka's
    /// `sasl.server.max.receive.size` (512 KiB) closes the connection there, before anything is
    /// allocated for it, so an anonymous client cannot make the broker hold (or echo back, as a
    /// SCRAM nonce) the 100 MiB an authenticated Produce may send.
    fn max_frame_bytes(&self, authenticated_max: usize) -> usize {
        match self {
            AuthState::Trusted(_) | AuthState::Authenticated(_) => authenticated_max,
            AuthState::AwaitHandshake | AuthState::Exchanging(_) => {
                authenticated_max.min(MAX_FRAME_BEFORE_AUTHENTICATION)
            }
        }
    }

    /// May the request of `api` be served now?
    fn allows(&self, api: ApiKey) -> bool {
        match self {
            AuthState::Trusted(_) | AuthState::Authenticated(_) => true,
            AuthState::AwaitHandshake | AuthState::Exchanging(_) => matches!(
                api,
                ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
            ),
        }
    }

    /// Who the requests of this connection come from, and whose rules decide them: the ACLs
    /// once SASL users are configured (on every listener, as Kafka's authorizer applies to
    /// every listener), else none.
    fn context(&self, ctx: &mut RequestContext, authorizer: Option<&Arc<Authorizer>>) {
        let principal = match self {
            AuthState::Trusted(p) => p.as_str(),
            AuthState::Authenticated(p) => p.name.as_str(),
            AuthState::AwaitHandshake | AuthState::Exchanging(_) => ANONYMOUS,
        };
        ctx.principal = format!("User:{principal}");
        ctx.authorization = match (self, authorizer) {
            (AuthState::AwaitHandshake | AuthState::Exchanging(_), _) => Authorization::Nothing,
            (_, None) => Authorization::Everything,
            (_, Some(a)) => Authorization::Acls(a.clone()),
        };
    }
}

/// Kafka's name for a client that did not authenticate.
const ANONYMOUS: &str = "ANONYMOUS";

/// Kafka's `sasl.server.max.receive.size` default: the largest frame an unauthenticated
/// connection may send.
pub(crate) const MAX_FRAME_BEFORE_AUTHENTICATION: usize = 512 * 1024;

/// The answer to a SASL request, and whether the connection closes once it is sent.
struct SaslAnswer {
    response: ResponseKind,
    close: bool,
}

/// Runs one SaslHandshake or SaslAuthenticate request against the connection's state. `None`:
/// the listener has no SASL, so the request is one for an API it does not serve: close.
async fn sasl_request(
    broker: &Broker,
    state: &mut AuthState,
    peer: SocketAddr,
    body: RequestKind,
) -> Option<SaslAnswer> {
    if matches!(state, AuthState::Trusted(_)) {
        return None;
    }
    let sasl_arc = broker.sasl.clone()?;
    let sasl = sasl_arc.as_ref();
    let metrics = &broker.metrics;
    let answer = match body {
        RequestKind::SaslHandshake(req) => {
            if !matches!(state, AuthState::AwaitHandshake) {
                metrics.sasl_failure("unsupported", "illegal_state");
                return Some(SaslAnswer {
                    response: sasl_handshake::illegal_state(sasl).into(),
                    close: true,
                });
            }
            let (resp, chosen) = sasl_handshake::handle(sasl, &req);
            match chosen {
                Some(m) => *state = AuthState::Exchanging(Exchange::start(m)),
                None => {
                    tracing::info!(%peer, mechanism = %req.mechanism.as_str(), "SASL mechanism not enabled");
                    metrics.sasl_failure("unsupported", "unsupported_mechanism");
                }
            }
            SaslAnswer {
                close: chosen.is_none(),
                response: resp.into(),
            }
        }
        RequestKind::SaslAuthenticate(req) => {
            let AuthState::Exchanging(_) = state else {
                metrics.sasl_failure("unsupported", "illegal_state");
                return Some(SaslAnswer {
                    response: sasl_authenticate::illegal_state(
                        "SaslAuthenticate without a SaslHandshake first, or after authentication",
                    )
                    .into(),
                    close: true,
                });
            };
            // Take the exchange out for the step; it goes back only if the exchange goes on.
            let AuthState::Exchanging(mut exchange) =
                std::mem::replace(state, AuthState::AwaitHandshake)
            else {
                return None;
            };
            let mechanism = exchange.mechanism().name();
            // A PLAIN step derives PBKDF2 (4096 rounds) to check the password: milliseconds of
            // CPU that must not hold a runtime worker (one per core) while other connections
            // wait. The SCRAM steps are cheap, but one hop per login costs nothing that matters.
            let cfg = sasl_arc.clone();
            let stepped = protocol::off_runtime(move || {
                let (resp, outcome) = sasl_authenticate::handle(&cfg, &mut exchange, &req);
                (resp, outcome, exchange)
            })
            .await;
            let Some((resp, outcome, exchange)) = stepped else {
                metrics.sasl_failure(mechanism, "internal");
                return Some(SaslAnswer {
                    response: sasl_authenticate::illegal_state("internal error").into(),
                    close: true,
                });
            };
            let close = match outcome {
                Outcome::Continue => {
                    *state = AuthState::Exchanging(exchange);
                    false
                }
                Outcome::Authenticated(p) => {
                    tracing::debug!(%peer, principal = %p.name, mechanism, "authenticated");
                    metrics.sasl_success(mechanism);
                    *state = AuthState::Authenticated(p);
                    false
                }
                Outcome::Failed(e) => {
                    tracing::info!(%peer, mechanism, error = %e, "SASL authentication failed");
                    let reason = match e {
                        crate::auth::AuthError::InvalidCredentials { .. } => "invalid_credentials",
                        crate::auth::AuthError::Malformed { .. } => "malformed",
                        crate::auth::AuthError::IllegalState(_) => "illegal_state",
                        crate::auth::AuthError::Internal(_) => "internal",
                    };
                    metrics.sasl_failure(mechanism, reason);
                    true
                }
            };
            SaslAnswer {
                response: resp.into(),
                close,
            }
        }
        _ => return None,
    };
    Some(answer)
}

/// How long a connection that failed authentication stays open after the answer (Kafka's
/// `connection.failed.authentication.delay.ms` is 100 ms by default). Closing at once lost the
/// answer for kafka-python 3.0.12: when one `recv` loop sees the answer and the end of stream
/// together, it drops the data and reports "socket disconnected" instead of error 58. Waiting
/// for the client to close first (it does once it has read the error) avoids that; the delay
/// also slows password guessing a little.
const FAILED_AUTH_CLOSE_DELAY: Duration = Duration::from_millis(500);

/// Sends nothing more, lets the client read the failure answer, and ends the connection once the
/// client closes or [`FAILED_AUTH_CLOSE_DELAY`] has passed; anything it sends meanwhile is
/// dropped unread.
async fn close_after_failed_auth<S: Socket>(socket: &mut S) {
    let _ = socket.flush().await;
    let mut sink = [0u8; 1024];
    let _ = tokio::time::timeout(FAILED_AUTH_CLOSE_DELAY, async {
        while let Ok(n) = socket.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// How long a request in hand may take once shutdown began.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Resolves [`SHUTDOWN_GRACE`] after `shutdown` is cancelled.
async fn grace_after(shutdown: &CancellationToken) {
    shutdown.cancelled().await;
    tokio::time::sleep(SHUTDOWN_GRACE).await;
}

/// Produce answers one connection may have waiting for their fsync at once. Kafka clients keep
/// at most 5 requests in flight (idempotence requires it); the bound caps what a connection
/// holds in memory beyond that.
const MAX_PIPELINED: usize = 8;

/// An answer ready to go out: its API and when its request was read (for the metrics), and its
/// bytes.
type Answer = (ApiKey, Instant, Result<BytesMut, protocol::ProtocolError>);

/// The answers of requests already run, in the order they were read.
type Pending = FuturesOrdered<Pin<Box<dyn Future<Output = Answer> + Send>>>;

/// Writes one answer and counts it; false if the connection is done (write failed, or the
/// answer could not be encoded).
async fn send<S: Socket>(
    socket: &mut S,
    broker: &Broker,
    peer: SocketAddr,
    answer: Answer,
) -> bool {
    let (api, started, bytes) = answer;
    match bytes {
        Ok(bytes) => {
            // The flush is what sends a TLS record on its way (a no-op on a plain socket).
            if socket.write_all(&bytes).await.is_err() || socket.flush().await.is_err() {
                return false;
            }
            broker
                .metrics
                .record_request(protocol::api_name(api), started.elapsed());
            true
        }
        Err(e) => {
            tracing::error!(%peer, error = %e, "cannot encode response; closing connection");
            false
        }
    }
}

/// Sends the pending answers in order, each as soon as it is ready; gives up on those still
/// waiting [`SHUTDOWN_GRACE`] after shutdown began. False if the connection is done.
async fn send_pending<S: Socket>(
    socket: &mut S,
    broker: &Broker,
    peer: SocketAddr,
    pending: &mut Pending,
    shutdown: &CancellationToken,
) -> bool {
    loop {
        let answer = tokio::select! {
            a = pending.next() => match a {
                Some(a) => a,
                None => return true,
            },
            _ = grace_after(shutdown) => {
                tracing::debug!(%peer, waiting = pending.len(), "answers still waiting at shutdown; closing");
                return false;
            }
        };
        if !send(socket, broker, peer, answer).await {
            return false;
        }
    }
}

/// What a connection runs over: a TCP socket, or TLS over one.
pub(crate) trait Socket: AsyncRead + AsyncWrite + Unpin + Send {}
impl<S: AsyncRead + AsyncWrite + Unpin + Send> Socket for S {}

/// Serves one client until it closes, fails, idles out or shutdown. `listener` is the one it
/// came in on; `tls_principal` the subject of its TLS client certificate, if it showed one.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run<S: Socket>(
    broker: &Arc<Broker>,
    mut socket: S,
    peer: SocketAddr,
    listener: Arc<Endpoint>,
    tls_principal: Option<String>,
    mut unauthenticated: Option<AddressSlot>,
    shutdown: CancellationToken,
) {
    let authenticated_max = broker.config.max_frame_bytes;
    let idle = broker.config.idle_timeout;
    let mut auth = AuthState::new(&listener, tls_principal);
    let mut frames = Frames::default();
    // Produce answers waiting for their fsync. Produce requests in a row are appended without
    // waiting for the previous one's fsync, so one fsync can cover several of them (or run
    // beside another partition's); any other request first waits for these to be answered, so
    // it runs exactly as if the connection took one request at a time.
    let mut pending = Pending::new();
    loop {
        let next = tokio::select! {
            biased;
            Some(answer) = pending.next(), if !pending.is_empty() => {
                if !send(&mut socket, broker, peer, answer).await {
                    return;
                }
                continue;
            }
            _ = shutdown.cancelled() => {
                send_pending(&mut socket, broker, peer, &mut pending, &shutdown).await;
                return;
            }
            r = frames.next(&mut socket, auth.max_frame_bytes(authenticated_max)), if pending.len() < MAX_PIPELINED => r,
            // Counted between requests only: a parked Fetch or a slow fsync is not idleness.
            _ = tokio::time::sleep(idle), if pending.is_empty() && frames.is_empty() => {
                tracing::debug!(%peer, ?idle, "connection idle; closing");
                broker.metrics.closed_by_broker(ClosedBecause::Idle);
                return;
            }
        };
        let frame = match next {
            Ok(frame) => frame,
            Err(end) => {
                match end {
                    FrameEnd::BadSize(size) => {
                        let max = auth.max_frame_bytes(authenticated_max);
                        tracing::warn!(%peer, size, max, "invalid frame size; closing connection")
                    }
                    FrameEnd::Closed { mid_frame: true } => {
                        tracing::debug!(%peer, "connection closed mid-frame")
                    }
                    FrameEnd::Closed { mid_frame: false } => {} // closed by the client
                }
                // What was already run is still answered, if the client still reads.
                send_pending(&mut socket, broker, peer, &mut pending, &shutdown).await;
                return;
            }
        };
        // Once a request is read it is finished and answered even if shutdown starts meanwhile.
        let started = Instant::now();
        let decoded = protocol::decode_request(frame);
        let pipelined = matches!(
            &decoded,
            Ok(Request::Known {
                api: ApiKey::Produce,
                ..
            })
        );
        if !pipelined && !send_pending(&mut socket, broker, peer, &mut pending, &shutdown).await {
            return;
        }
        let (api, answer) = match decoded {
            Ok(Request::Known { header, api, body }) => {
                let version = header.request_api_version;
                if !auth.allows(api) {
                    tracing::warn!(%peer, ?api, "request before SASL authentication; closing connection");
                    broker
                        .metrics
                        .sasl_failure("unsupported", "unauthenticated_request");
                    return;
                }
                if matches!(api, ApiKey::SaslHandshake | ApiKey::SaslAuthenticate) {
                    let Some(answer) = sasl_request(broker, &mut auth, peer, *body).await else {
                        tracing::warn!(%peer, ?api, "SASL request but SASL is off; closing connection");
                        return;
                    };
                    if answer.close && api == ApiKey::SaslAuthenticate {
                        // A failed login is answered only after the delay: the guesser's
                        // connection (one of few its address may have unauthenticated) is held.
                        tokio::select! {
                            _ = tokio::time::sleep(broker.config.failed_authentication_delay) => {}
                            _ = shutdown.cancelled() => {}
                        }
                    }
                    let bytes = protocol::encode_response(
                        header.correlation_id,
                        api,
                        version,
                        &answer.response,
                    );
                    if !send(&mut socket, broker, peer, (api, started, bytes)).await {
                        return;
                    }
                    if answer.close {
                        close_after_failed_auth(&mut socket).await;
                        return;
                    }
                    if matches!(auth, AuthState::Authenticated(_)) {
                        // Logged in: no longer among the address's unauthenticated connections.
                        unauthenticated.take();
                    }
                    continue;
                }
                let mut ctx = RequestContext {
                    client_id: header
                        .client_id
                        .as_ref()
                        .map(|c| c.to_string())
                        .unwrap_or_default(),
                    client_host: format!("/{}", peer.ip()),
                    host: peer.ip().to_string(),
                    listener: listener.clone(),
                    ..RequestContext::default()
                };
                auth.context(&mut ctx, broker.authorizer.as_ref());
                let handled = tokio::select! {
                    r = protocol::handle_pipelined(broker, &ctx, api, version, *body) => r,
                    _ = grace_after(&shutdown) => {
                        tracing::debug!(%peer, ?api, "request still parked at shutdown; closing");
                        return;
                    }
                };
                match handled {
                    Handled::Now(Some(resp)) => (
                        api,
                        protocol::encode_response(header.correlation_id, api, version, &resp),
                    ),
                    Handled::Now(None) => {
                        broker
                            .metrics
                            .record_request(protocol::api_name(api), started.elapsed());
                        continue;
                    }
                    Handled::WhenDurable(resp) => {
                        let correlation_id = header.correlation_id;
                        pending.push_back(Box::pin(async move {
                            let resp = resp.await;
                            let bytes =
                                protocol::encode_response(correlation_id, api, version, &resp);
                            (api, started, bytes)
                        }));
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
                send_pending(&mut socket, broker, peer, &mut pending, &shutdown).await;
                return;
            }
        };
        // Only a request other than Produce gets here (a Produce's answer is pending, or it has
        // none), so the answers before it went out above: this one is next in order.
        debug_assert!(pending.is_empty());
        if !send(&mut socket, broker, peer, (api, started, answer)).await {
            return;
        }
    }
}
