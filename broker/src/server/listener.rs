//! Accept loop: caps concurrent connections with a semaphore, and on shutdown stops accepting,
//! tells every connection to stop after its current request, and waits for them.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{broadcast, Semaphore};
use tokio::task::JoinSet;

use super::{connection, Broker};

/// Serves until `shutdown` resolves, then drains connections and flushes every log.
pub async fn serve(listener: TcpListener, broker: Arc<Broker>, shutdown: impl Future<Output = ()>) {
    let limit = Arc::new(Semaphore::new(broker.config.max_connections));
    let (stop_tx, _) = broadcast::channel::<()>(1);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
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
            _ = &mut shutdown => break,
        };
        let broker = broker.clone();
        let stop = stop_tx.subscribe();
        connections.spawn(async move {
            broker.metrics.connection_opened();
            connection::run(&broker, socket, peer, stop).await;
            broker.metrics.connection_closed();
            drop(permit);
        });
        // Reap finished connections so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
    }
    tracing::info!("shutting down: no new connections; finishing in-flight requests");
    drop(listener);
    let _ = stop_tx.send(());
    while connections.join_next().await.is_some() {}
    if let Err(e) = broker.topics.flush_all() {
        tracing::error!(error = %e, "final flush failed");
    }
    if let Err(e) = broker.groups.offsets().flush() {
        tracing::error!(error = %e, "final flush of committed offsets failed");
    }
    tracing::info!("broker stopped");
}
