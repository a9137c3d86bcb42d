//! `broker`: the single-node Kafka-protocol log broker. Parses flags (each also an env var), opens
//! the data directory, serves until SIGTERM or Ctrl-C, then finishes in-flight requests, flushes
//! and exits 0.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use broker::clock::SystemClock;
use broker::log::{FlushPolicy, LogConfig};
use broker::server::{serve, Broker, BrokerConfig};
use broker::topics::TopicRegistry;
use clap::{ArgAction, Parser, Subcommand};

mod groups_cli;

/// See broker::alloc: a wire frame must not be able to abort the process through the decoder.
#[global_allocator]
static ALLOC: broker::alloc::NoReserveHugeAlloc = broker::alloc::NoReserveHugeAlloc;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Single-node log broker speaking the Apache Kafka wire protocol"
)]
struct Args {
    /// Without a command the broker serves; with one it inspects a running broker.
    #[command(subcommand)]
    command: Option<Command>,
    /// Address to listen on for Kafka clients.
    #[arg(long, env = "BROKER_LISTEN", default_value = "127.0.0.1:9092")]
    listen: SocketAddr,
    /// host:port announced to clients in Metadata (default: the listen address).
    #[arg(long, env = "BROKER_ADVERTISED")]
    advertised: Option<String>,
    /// Directory of topics and their logs.
    #[arg(long, env = "BROKER_DATA_DIR", default_value = "data/broker")]
    data_dir: PathBuf,
    /// Partitions of auto-created topics and of CreateTopics with -1.
    #[arg(long, env = "BROKER_DEFAULT_PARTITIONS", default_value_t = 1)]
    default_partitions: i32,
    /// Create unknown topics requested in Metadata.
    #[arg(long, env = "BROKER_AUTO_CREATE_TOPICS", default_value_t = true, action = ArgAction::Set)]
    auto_create_topics: bool,
    /// fsync | interval:<ms> | never (see README: what each promises).
    #[arg(long, env = "BROKER_FLUSH", default_value = "fsync")]
    flush: FlushPolicy,
    #[arg(long, env = "BROKER_SEGMENT_BYTES", default_value_t = broker::log::config::DEFAULT_SEGMENT_BYTES)]
    segment_bytes: u64,
    #[arg(long, env = "BROKER_SEGMENT_MS", default_value_t = broker::log::config::DEFAULT_SEGMENT_MS)]
    segment_ms: i64,
    /// -1 keeps forever.
    #[arg(long, env = "BROKER_RETENTION_MS", default_value_t = broker::log::config::DEFAULT_RETENTION_MS)]
    retention_ms: i64,
    /// -1 means no size limit.
    #[arg(long, env = "BROKER_RETENTION_BYTES", default_value_t = -1)]
    retention_bytes: i64,
    #[arg(long, env = "BROKER_MAX_MESSAGE_BYTES", default_value_t = broker::log::config::DEFAULT_MAX_MESSAGE_BYTES)]
    max_message_bytes: usize,
    /// Largest request frame accepted.
    #[arg(long, env = "BROKER_MAX_FRAME_BYTES", default_value_t = 100 * 1024 * 1024)]
    max_frame_bytes: usize,
    /// Address of the admin HTTP port (`/healthz`, `/metrics`).
    #[arg(long, env = "BROKER_ADMIN_LISTEN", default_value = "127.0.0.1:9644")]
    admin_listen: SocketAddr,
    /// How long an empty group waits for more members before its first rebalance completes.
    #[arg(
        long,
        env = "BROKER_GROUP_INITIAL_REBALANCE_DELAY_MS",
        default_value_t = 3000
    )]
    group_initial_rebalance_delay_ms: u64,
    /// How often retention runs.
    #[arg(long, env = "BROKER_RETENTION_CHECK_MS", default_value_t = 60_000)]
    retention_check_ms: u64,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Consumer groups of a running broker, read from its admin port.
    Groups {
        /// The broker's admin address (its --admin-listen).
        #[arg(
            long,
            env = "BROKER_ADMIN",
            default_value = "127.0.0.1:9644",
            global = true
        )]
        admin: String,
        #[command(subcommand)]
        action: GroupsAction,
    },
}

#[derive(Debug, Subcommand)]
enum GroupsAction {
    /// Every group with its state, members and total lag.
    List,
    /// Per partition: committed offset, log end offset, lag and owning member.
    Describe { group: String },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    match &args.command {
        Some(Command::Groups { admin, action }) => {
            return match action {
                GroupsAction::List => groups_cli::list(admin),
                GroupsAction::Describe { group } => groups_cli::describe(admin, group),
            };
        }
        None => {}
    }

    let defaults = LogConfig {
        segment_bytes: args.segment_bytes,
        segment_ms: args.segment_ms,
        retention_ms: args.retention_ms,
        retention_bytes: args.retention_bytes,
        max_message_bytes: args.max_message_bytes,
        flush: args.flush,
        ..LogConfig::default()
    };
    defaults.validate().context("invalid log settings")?;
    anyhow::ensure!(
        (1..=broker::topics::MAX_PARTITIONS).contains(&args.default_partitions),
        "--default-partitions must be within 1..={}",
        broker::topics::MAX_PARTITIONS
    );
    anyhow::ensure!(
        args.max_frame_bytes >= 1024,
        "--max-frame-bytes must be >= 1024"
    );
    anyhow::ensure!(
        args.retention_check_ms >= 1,
        "--retention-check-ms must be >= 1"
    );

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("bind {}", args.listen))?;
    let local = listener.local_addr()?;
    let admin_listener = tokio::net::TcpListener::bind(args.admin_listen)
        .await
        .with_context(|| format!("bind admin port {}", args.admin_listen))?;
    let admin_addr = admin_listener.local_addr()?;

    let (host, port) = match &args.advertised {
        Some(a) => {
            let (h, p) = a
                .rsplit_once(':')
                .with_context(|| format!("--advertised {a:?} is not host:port"))?;
            (
                h.to_string(),
                p.parse()
                    .with_context(|| format!("--advertised port in {a:?}"))?,
            )
        }
        None => (local.ip().to_string(), local.port()),
    };
    let topics = TopicRegistry::open(&args.data_dir, defaults, Arc::new(SystemClock))
        .with_context(|| format!("open data dir {}", args.data_dir.display()))?;
    let producer_ids = broker::producer_ids::ProducerIdAllocator::open(&args.data_dir)
        .context("open producer id allocator")?;
    let offsets =
        broker::group::OffsetStore::open(&args.data_dir, args.flush, Arc::new(SystemClock))
            .context("open committed offsets")?;
    let groups = broker::group::GroupCoordinator::new(
        broker::group::CoordinatorConfig {
            initial_rebalance_delay: Duration::from_millis(args.group_initial_rebalance_delay_ms),
            ..Default::default()
        },
        offsets,
    );
    let broker = Arc::new(Broker {
        config: BrokerConfig {
            advertised_host: host,
            advertised_port: port,
            auto_create_topics: args.auto_create_topics,
            default_partitions: args.default_partitions,
            max_frame_bytes: args.max_frame_bytes,
            ..BrokerConfig::default()
        },
        topics,
        producer_ids,
        metrics: broker::metrics::Metrics::new(),
        groups: groups.clone(),
    });

    let retention = {
        let broker = broker.clone();
        let every = Duration::from_millis(args.retention_check_ms);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let b = broker.clone();
                let _ = tokio::task::spawn_blocking(move || b.topics.enforce_retention()).await;
            }
        })
    };

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let admin = {
        let router = broker::admin::router(broker.clone());
        let stop = stopped(stop_rx.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(admin_listener, router)
                .with_graceful_shutdown(stop)
                .await
            {
                tracing::error!(error = %e, "admin server failed");
            }
        })
    };
    tracing::info!(admin = %admin_addr, "admin HTTP listening");
    let expiry =
        tokio::spawn(groups.run_expiry(Duration::from_millis(250), stopped(stop_rx.clone())));
    tracing::info!(listen = %local, advertised = %format!("{}:{}", broker.config.advertised_host, broker.config.advertised_port), data_dir = %args.data_dir.display(), flush = %args.flush, "broker listening");
    serve(listener, broker, stopped(stop_rx)).await;
    retention.abort();
    let _ = admin.await;
    let _ = expiry.await;
    Ok(())
}

/// Resolves once the stop flag is set (or its sender is gone).
async fn stopped(mut rx: tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received");
}
