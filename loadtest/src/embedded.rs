//! The in-process broker the demo and the perf tools run: the `broker` binary's server code, with
//! the default `fsync` flush (an acknowledgement means on disk) and a short initial rebalance
//! delay, since their consumers start together.

use std::path::Path;
use std::time::Duration;

use broker::log::{FlushPolicy, LogConfig};
use broker::server::EmbeddedBroker;

pub fn fsync_broker(dir: &Path) -> anyhow::Result<EmbeddedBroker> {
    Ok(EmbeddedBroker::start_with(
        dir,
        LogConfig {
            flush: FlushPolicy::Fsync,
            ..LogConfig::default()
        },
        broker::group::CoordinatorConfig {
            initial_rebalance_delay: Duration::from_millis(300),
            ..Default::default()
        },
    )?)
}
