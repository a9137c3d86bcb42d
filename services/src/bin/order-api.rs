//! `order-api`: the order-ingest API (see `services::api`). Every flag also reads an environment
//! variable; SIGTERM stops accepting connections and finishes the requests in flight.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use services::api::limits::{Limit, RateLimits};
use services::api::{Api, ApiConfig};
use services::db;
use services::inference::replies::ReplyConfig;

/// The workspace's allocator (see `shared::allocator`).
#[global_allocator]
static ALLOC: shared::allocator::Allocator = shared::allocator::ALLOCATOR;

#[derive(Debug, Parser)]
#[command(about = "Seckill order-ingest API: accept buys, queue them durably, answer at once")]
struct Args {
    #[arg(long, env = "API_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    #[arg(long, env = "KAFKA_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// SASL settings of every Kafka client (KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*).
    #[command(flatten)]
    kafka_security: services::kafka::KafkaSecurity,
    /// HS256 secret of the bearer tokens (at least 32 bytes).
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    jwt_secret: String,
    /// Trust `user_id` in the body when no token is sent. For load tests only.
    #[arg(long, env = "API_LOAD_TEST_MODE", default_value_t = false)]
    load_test_mode: bool,
    /// Longest wait for the queue's acknowledgement before answering 503.
    #[arg(long, env = "API_ENQUEUE_TIMEOUT_MS", default_value_t = 5000)]
    enqueue_timeout_ms: u64,
    /// How long the producer waits to send more buys in one request (librdkafka's linger.ms).
    #[arg(long, env = "API_PRODUCER_LINGER_MS", default_value_t = 0)]
    producer_linger_ms: u64,
    /// The same for `POST /infer`'s requests (a producer of their own).
    #[arg(long, env = "API_INFER_PRODUCER_LINGER_MS", default_value_t = 0)]
    infer_producer_linger_ms: u64,
    #[arg(long, env = "API_DB_CONNECTIONS", default_value_t = 8)]
    db_connections: u32,
    /// Longest `?wait_ms=` honoured on `POST /infer`.
    #[arg(long, env = "API_INFER_MAX_WAIT_MS", default_value_t = 30_000)]
    infer_max_wait_ms: u64,
    /// Deadline of an inference request that names none.
    #[arg(long, env = "API_INFER_DEADLINE_MS", default_value_t = 60_000)]
    infer_deadline_ms: u64,
    /// The partition of `inference.replies` this instance reads (default: one at random).
    #[arg(long, env = "API_REPLY_PARTITION")]
    reply_partition: Option<i32>,
    /// Buys (and purchase tokens) per second per user, as RATE/BURST, or `off`.
    #[arg(long, env = "API_RATE_PER_USER", default_value = "5/10", value_parser = limit)]
    rate_per_user: std::option::Option<Limit>,
    /// Per client address (see --trust-forwarded-for), as RATE/BURST, or `off`.
    #[arg(long, env = "API_RATE_PER_ADDRESS", default_value = "1000/2000", value_parser = limit)]
    rate_per_address: std::option::Option<Limit>,
    /// For this whole instance, as RATE/BURST, or `off`.
    #[arg(long, env = "API_RATE_GLOBAL", default_value = "off", value_parser = limit)]
    rate_global: std::option::Option<Limit>,
    /// Order status reads (GET /orders/{id}) per client address, as RATE/BURST, or `off`.
    #[arg(long, env = "API_STATUS_RATE_PER_ADDRESS", default_value = "1000/2000", value_parser = limit)]
    status_rate_per_address: std::option::Option<Limit>,
    /// Take the client address from the last `X-Forwarded-For` entry (only behind a proxy that
    /// appends it; otherwise clients could pick their own address).
    #[arg(long, env = "API_TRUST_FORWARDED_FOR", default_value_t = false)]
    trust_forwarded_for: bool,
    /// How long a purchase token from `GET /items/{id}/token` is good for.
    #[arg(long, env = "API_PURCHASE_TOKEN_TTL_MS", default_value_t = 60_000)]
    purchase_token_ttl_ms: u64,
    /// How long a connection may take to send a request's headers; also how long an idle
    /// keep-alive connection stays open.
    #[arg(long, env = "API_HEADER_READ_TIMEOUT_MS", default_value_t = 10_000)]
    header_read_timeout_ms: u64,
    /// How long a request's body may take to arrive; past it, 408 and the connection closes.
    #[arg(long, env = "API_BODY_READ_TIMEOUT_MS", default_value_t = 10_000)]
    body_read_timeout_ms: u64,
    /// Open connections at most; past it a new connection gets 503 `busy` and is closed.
    #[arg(long, env = "API_MAX_CONNECTIONS", default_value_t = 10_000)]
    max_connections: usize,
    /// Serve the live dashboard at /dashboard (it shows the latest orders' user ids: keep it
    /// behind the operators' network).
    #[arg(long, env = "API_DASHBOARD", default_value_t = false)]
    dashboard: bool,
    /// Partitions of the order topic when this instance creates it (it exists: used as it is).
    #[arg(long, env = "API_ORDER_PARTITIONS", default_value_t = 6)]
    order_partitions: i32,
    /// Partitions of the inference topics when this instance creates them.
    #[arg(long, env = "API_INFERENCE_PARTITIONS", default_value_t = 6)]
    inference_partitions: i32,
}

/// Parses a rate limit flag. The fields spell `std::option::Option` so clap takes `None`
/// ("off") as a value rather than as "flag absent".
fn limit(s: &str) -> Result<Option<Limit>, String> {
    Limit::parse(s)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::telemetry::init_tracing();
    let _failpoints = services::failpoints::from_env();
    let args = Args::parse();
    args.kafka_security.install()?;
    let config = ApiConfig {
        listen: args.listen,
        bootstrap: args.bootstrap.clone(),
        jwt_secret: args.jwt_secret,
        load_test_mode: args.load_test_mode,
        enqueue_timeout: Duration::from_millis(args.enqueue_timeout_ms),
        producer_linger: Duration::from_millis(args.producer_linger_ms),
        infer_producer_linger: Duration::from_millis(args.infer_producer_linger_ms),
        topic_partitions: args.order_partitions,
        limits: RateLimits {
            per_user: args.rate_per_user,
            per_address: args.rate_per_address,
            global: args.rate_global,
            status_per_address: args.status_rate_per_address,
        },
        trust_forwarded_for: args.trust_forwarded_for,
        dashboard: args.dashboard,
        purchase_token_ttl: Duration::from_millis(args.purchase_token_ttl_ms),
        connections: services::api::connections::ConnectionLimits {
            header_read_timeout: Duration::from_millis(args.header_read_timeout_ms),
            max_connections: args.max_connections,
            body_read_timeout: Duration::from_millis(args.body_read_timeout_ms),
        },
        infer_max_wait: Duration::from_millis(args.infer_max_wait_ms),
        infer_deadline: Duration::from_millis(args.infer_deadline_ms),
        replies: ReplyConfig {
            partition: args.reply_partition,
            partitions: args.inference_partitions,
            ..ReplyConfig::new(&args.bootstrap)
        },
        ..ApiConfig::default()
    };
    // Checked before connecting anywhere, so a bad flag is reported at once.
    config.validate()?;
    if args.load_test_mode {
        tracing::warn!("LOAD-TEST MODE: /buy trusts user_id from the request body when no token is sent; never use this in production");
    }
    let shutdown = shared::shutdown::on_signal();
    let pool = db::connect(&args.database_url, args.db_connections)
        .await
        .context("connect to PostgreSQL")?;
    Api::bind(config, pool).await?.run(shutdown).await?;
    Ok(())
}
