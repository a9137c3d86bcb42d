//! Accept loop: caps concurrent connections with a semaphore (and per client address, so one
//! client cannot take every slot) and runs each connection as a task of the node. On shutdown it stops accepting; every connection stops after its current request
//! (they watch the same token), and the node waits for them through its task tracker.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use shared::shutdown::Tasks;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::connection;
use crate::metrics::ClosedBecause;
use crate::state::Broker;

/// Open connections per client address. Invariant: an address is in the map only while it has
/// at least one connection, each counted by one live [`AddressSlot`].
#[derive(Debug, Default)]
struct PerAddress(Mutex<HashMap<IpAddr, usize>>);

/// One connection's place in its address's count; given back on drop.
struct AddressSlot {
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

/// Accepts connections until the token of `tasks` is cancelled.
pub(crate) async fn serve(listener: TcpListener, broker: Arc<Broker>, tasks: &Tasks) {
    let limit = Arc::new(Semaphore::new(broker.config.max_connections));
    let per_address = Arc::new(PerAddress::default());
    let max_per_address = broker.config.max_connections_per_address;
    let token = tasks.token().clone();
    loop {
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => match p {
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
        let Some(slot) = per_address.take(peer.ip(), max_per_address) else {
            // Closed unread: the client sees the connection reset and backs off; its other
            // connections keep working.
            tracing::warn!(%peer, max_per_address, "too many connections from this address; closing the new one");
            broker
                .metrics
                .closed_by_broker(ClosedBecause::PerAddressLimit);
            drop(socket);
            continue;
        };
        let broker = broker.clone();
        let stop = token.clone();
        tasks.spawn(async move {
            broker.metrics.connection_opened();
            connection::run(&broker, socket, peer, stop).await;
            broker.metrics.connection_closed();
            drop(slot);
            drop(permit);
        });
    }
}
