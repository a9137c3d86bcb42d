//! Accept loops, one per listener: they share one cap on concurrent connections (a semaphore,
//! and a count per client address, so one client cannot take every slot) and run each
//! connection as a task of the node, after its TLS handshake on a TLS listener. On shutdown
//! they stop accepting; every connection stops after its current request (they watch the same
//! token), and the node waits for them through its task tracker.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use shared::shutdown::Tasks;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use tokio_rustls::TlsAcceptor;

use super::connection;
use crate::listeners::Endpoint;
use crate::metrics::ClosedBecause;
use crate::state::Broker;
use crate::tls::{certificate_principal, HANDSHAKE_TIMEOUT};

/// Open connections per client address. Invariant: an address is in the map only while it has
/// at least one connection, each counted by one live [`AddressSlot`].
#[derive(Debug, Default)]
struct PerAddress(Mutex<HashMap<IpAddr, usize>>);

/// One connection's place in its address's count; given back on drop.
pub(crate) struct AddressSlot {
    counts: Arc<PerAddress>,
    ip: IpAddr,
}

impl PerAddress {
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<AddressSlot> {
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            counts: self.clone(),
            ip,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// What every listener shares: the connection cap, in all and per client address, and the TLS
/// acceptor of the TLS listeners.
struct Admission {
    limit: Arc<Semaphore>,
    per_address: Arc<PerAddress>,
    max_per_address: usize,
    /// Connections of SASL listeners that have not logged in yet, per address.
    unauthenticated: Arc<PerAddress>,
    max_unauthenticated: usize,
    tls: Option<TlsAcceptor>,
}

/// One bound listener and what its connections are told about it.
pub(crate) struct Bound {
    pub(crate) socket: TcpListener,
    pub(crate) endpoint: Arc<Endpoint>,
}

/// Accepts connections on every listener until the token of `tasks` is cancelled.
pub(crate) async fn serve(
    listeners: Vec<Bound>,
    tls: Option<TlsAcceptor>,
    broker: Arc<Broker>,
    tasks: &Tasks,
) {
    let admission = Arc::new(Admission {
        limit: Arc::new(Semaphore::new(broker.config.max_connections)),
        per_address: Arc::new(PerAddress::default()),
        max_per_address: broker.config.max_connections_per_address,
        unauthenticated: Arc::new(PerAddress::default()),
        max_unauthenticated: broker.config.max_unauthenticated_connections_per_address,
        tls,
    });
    futures_util::future::join_all(
        listeners
            .into_iter()
            .map(|l| accept_loop(l, admission.clone(), broker.clone(), tasks)),
    )
    .await;
}

async fn accept_loop(
    listener: Bound,
    admission: Arc<Admission>,
    broker: Arc<Broker>,
    tasks: &Tasks,
) {
    let token = tasks.token().clone();
    let Bound {
        socket: listener,
        endpoint,
    } = listener;
    loop {
        let permit = tokio::select! {
            p = admission.limit.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = token.cancelled() => break,
        };
        let (socket, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = token.cancelled() => break,
        };
        let max_per_address = admission.max_per_address;
        let Some(slot) = admission.per_address.take(peer.ip(), max_per_address) else {
            // Closed unread: the client sees the connection reset and backs off; its other
            // connections keep working.
            tracing::warn!(%peer, max_per_address, "too many connections from this address; closing the new one");
            broker
                .metrics
                .closed_by_broker(ClosedBecause::PerAddressLimit);
            drop(socket);
            continue;
        };
        // On a SASL listener the connection also holds a place among its address's connections
        // that have not logged in; it gives it back once it has (or closes).
        let unauthenticated = if endpoint.protocol.sasl() {
            let max = admission.max_unauthenticated;
            match admission.unauthenticated.take(peer.ip(), max) {
                Some(slot) => Some(slot),
                None => {
                    tracing::warn!(%peer, max, "too many connections from this address that have not logged in; closing the new one");
                    broker
                        .metrics
                        .closed_by_broker(ClosedBecause::UnauthenticatedLimit);
                    drop(socket);
                    continue;
                }
            }
        } else {
            None
        };
        let broker = broker.clone();
        let stop = token.clone();
        let endpoint = endpoint.clone();
        let tls = if endpoint.protocol.tls() {
            admission.tls.clone()
        } else {
            None
        };
        tasks.spawn(async move {
            broker.metrics.connection_opened();
            let _ = socket.set_nodelay(true);
            match tls {
                None => {
                    connection::run(&broker, socket, peer, endpoint, None, unauthenticated, stop)
                        .await
                }
                Some(tls) => {
                    // The handshake runs in the connection's task, never in the accept loop:
                    // a slow client must not hold up the others.
                    let handshake = tokio::select! {
                        r = tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(socket)) => r,
                        _ = stop.cancelled() => Ok(Err(std::io::Error::other("shutting down"))),
                    };
                    match handshake {
                        Ok(Ok(stream)) => {
                            let principal = stream
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(|c| c.first())
                                .and_then(|c| certificate_principal(c));
                            connection::run(
                                &broker,
                                stream,
                                peer,
                                endpoint,
                                principal,
                                unauthenticated,
                                stop,
                            )
                            .await
                        }
                        Ok(Err(e)) => {
                            // A Kafka request where a ClientHello should be starts with a zero
                            // byte, which rustls reports as an invalid content type.
                            let hint = if e.to_string().contains("InvalidContentType") {
                                " (a plaintext client on a TLS listener?)"
                            } else {
                                ""
                            };
                            tracing::info!(%peer, listener = %endpoint.name, error = %e, "TLS handshake failed{hint}");
                            broker.metrics.closed_by_broker(ClosedBecause::TlsHandshake);
                        }
                        Err(_) => {
                            tracing::info!(%peer, listener = %endpoint.name, "TLS handshake timed out");
                            broker.metrics.closed_by_broker(ClosedBecause::TlsHandshake);
                        }
                    }
                }
            }
            broker.metrics.connection_closed();
            drop(slot);
            drop(permit);
        });
    }
}
