//! Accept loop: caps concurrent connections with a semaphore and runs each connection as a task
//! of the node. On shutdown it stops accepting; every connection stops after its current request
//! (they watch the same token), and the node waits for them through its task tracker.

use std::sync::Arc;

use shared::shutdown::Tasks;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::connection;
use crate::state::Broker;

/// Accepts connections until the token of `tasks` is cancelled.
pub(crate) async fn serve(listener: TcpListener, broker: Arc<Broker>, tasks: &Tasks) {
    let limit = Arc::new(Semaphore::new(broker.config.max_connections));
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
        let broker = broker.clone();
        let stop = token.clone();
        tasks.spawn(async move {
            broker.metrics.connection_opened();
            connection::run(&broker, socket, peer, stop).await;
            broker.metrics.connection_closed();
            drop(permit);
        });
    }
}
