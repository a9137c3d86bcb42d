//! `broker`: the single-node Kafka-protocol log broker. Parses flags (each also an env var) into
//! a [`NodeConfig`], runs the [`Node`] until SIGTERM or Ctrl-C, then finishes in-flight requests,
//! flushes and exits 0. `broker groups ...` inspects a running broker instead.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use std::sync::Arc;

use anyhow::Context;
use broker::acl::Acl;
use broker::auth::{Mechanism, SaslConfig, Users};
use broker::group::CoordinatorConfig;
use broker::listeners::{self, ListenerConfig, SecurityProtocol};
use broker::log::{FlushPolicy, LogConfig};
use broker::tls::{ClientAuth, TlsFiles};
use broker::topics::TopicLimits;
use broker::{AuthorizationConfig, Node, NodeConfig};
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
    /// Address of the one listener for Kafka clients (default 127.0.0.1:9092). Its protocol
    /// follows from what is configured: SASL with users, TLS with a certificate. For several
    /// listeners use --listeners instead.
    #[arg(long, env = "BROKER_LISTEN", conflicts_with = "listeners")]
    listen: Option<SocketAddr>,
    /// host:port announced to clients of --listen in Metadata (default: the listen address).
    #[arg(long, env = "BROKER_ADVERTISED", conflicts_with = "listeners")]
    advertised: Option<String>,
    /// Kafka's `listeners`: NAME://HOST:PORT,... e.g.
    /// INTERNAL://0.0.0.0:9092,EXTERNAL://0.0.0.0:9094 (an empty host: every interface).
    #[arg(long, env = "BROKER_LISTENERS")]
    listeners: Option<String>,
    /// Kafka's `advertised.listeners`: NAME://HOST:PORT,... what each listener's clients are
    /// told to connect to (default: its bound address).
    #[arg(long, env = "BROKER_ADVERTISED_LISTENERS", requires = "listeners")]
    advertised_listeners: Option<String>,
    /// Kafka's `listener.security.protocol.map`: NAME:PROTOCOL,... (PLAINTEXT, SSL,
    /// SASL_PLAINTEXT, SASL_SSL). Default: each protocol's name stands for itself.
    #[arg(
        long,
        env = "BROKER_LISTENER_SECURITY_PROTOCOL_MAP",
        requires = "listeners"
    )]
    listener_security_protocol_map: Option<String>,
    /// PEM certificate (chain) of the SSL and SASL_SSL listeners; reloaded when the file
    /// changes.
    #[arg(long, env = "BROKER_SSL_CERTIFICATE_FILE", requires = "ssl_key_file")]
    ssl_certificate_file: Option<PathBuf>,
    /// PEM private key of that certificate.
    #[arg(long, env = "BROKER_SSL_KEY_FILE", requires = "ssl_certificate_file")]
    ssl_key_file: Option<PathBuf>,
    /// PEM CAs that client certificates must chain to (mutual TLS; the principal is the
    /// certificate's subject).
    #[arg(
        long,
        env = "BROKER_SSL_CLIENT_CA_FILE",
        requires = "ssl_certificate_file"
    )]
    ssl_client_ca_file: Option<PathBuf>,
    /// Kafka's `ssl.client.auth`: none, requested or required (default: required with a
    /// client CA file, none without).
    #[arg(long, env = "BROKER_SSL_CLIENT_AUTH", requires = "ssl_client_ca_file")]
    ssl_client_auth: Option<ClientAuth>,
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
    /// Most record bytes in one Fetch answer, whatever the client asks (Kafka's fetch.max.bytes).
    #[arg(long, env = "BROKER_FETCH_MAX_BYTES", default_value_t = broker::config::DEFAULT_FETCH_MAX_BYTES)]
    fetch_max_bytes: usize,
    /// Most record bytes of one partition in one Fetch answer, whatever the client asks.
    #[arg(long, env = "BROKER_FETCH_PARTITION_MAX_BYTES", default_value_t = broker::config::DEFAULT_FETCH_PARTITION_MAX_BYTES)]
    fetch_partition_max_bytes: usize,
    /// Concurrent client connections (more wait in the accept queue).
    #[arg(long, env = "BROKER_MAX_CONNECTIONS", default_value_t = 10_000)]
    max_connections: usize,
    /// Concurrent connections from one IP address (more are closed at once).
    #[arg(
        long,
        env = "BROKER_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 1000
    )]
    max_connections_per_address: usize,
    /// Connections from one IP address not yet logged in (SASL listeners); more are closed.
    #[arg(
        long,
        env = "BROKER_MAX_UNAUTHENTICATED_CONNECTIONS_PER_ADDRESS",
        default_value_t = 50
    )]
    max_unauthenticated_connections_per_address: usize,
    /// How long a failed login waits before its answer (Kafka's
    /// connection.failed.authentication.delay.ms).
    #[arg(
        long,
        env = "BROKER_FAILED_AUTHENTICATION_DELAY_MS",
        default_value_t = 1000
    )]
    failed_authentication_delay_ms: u64,
    /// A connection idle this long is closed (Kafka's connections.max.idle.ms).
    #[arg(long, env = "BROKER_IDLE_TIMEOUT_MS", default_value_t = 600_000)]
    idle_timeout_ms: u64,
    /// Most topics clients may create.
    #[arg(long, env = "BROKER_MAX_TOPICS", default_value_t = 1000)]
    max_topics: usize,
    /// Most partitions of all topics together.
    #[arg(long, env = "BROKER_MAX_PARTITIONS", default_value_t = 10_000)]
    max_partitions: usize,
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
    /// SASL users file, one NAME:ROLE:PASSWORD per line (ROLE admin or user; see
    /// docs/kafka-compat.md). Any user (file or --sasl-user) turns SASL authentication on.
    #[arg(long, env = "BROKER_SASL_USERS_FILE")]
    sasl_users_file: Option<PathBuf>,
    /// A SASL user, NAME:ROLE:PASSWORD; repeatable, or several separated by `;` (env).
    #[arg(
        long = "sasl-user",
        env = "BROKER_SASL_USERS",
        value_delimiter = ';',
        hide_env_values = true
    )]
    sasl_users: Vec<String>,
    /// Kafka's `super.users`: principals that may do everything, `;`-separated
    /// (`User:admin;User:ANONYMOUS`). Users of role admin are super users too. Used once SASL
    /// users are configured (the ACLs decide then, on every listener).
    #[arg(long, env = "BROKER_SUPER_USERS", value_delimiter = ';')]
    super_users: Vec<String>,
    /// Kafka's `allow.everyone.if.no.acl.found`: a resource without any ACL is open to
    /// everyone (default: refused).
    #[arg(long, env = "BROKER_ALLOW_EVERYONE_IF_NO_ACL_FOUND", default_value_t = false, action = ArgAction::Set)]
    allow_everyone_if_no_acl_found: bool,
    /// An ACL to have from the start (added when missing, never removed by a restart):
    /// PRINCIPAL;ALLOW|DENY;OPERATIONS;RESOURCE_TYPE;LITERAL|PREFIXED;NAME[;HOST], e.g.
    /// `User:orders-api;ALLOW;WRITE,DESCRIBE;TOPIC;LITERAL;seckill`. Repeatable; several
    /// separated by `|` in the env form.
    #[arg(long = "acl", env = "BROKER_ACLS", value_delimiter = '|')]
    acls: Vec<String>,
    /// A file of such ACLs, one per line (`#` comments), added at start like --acl.
    #[arg(long, env = "BROKER_ACLS_FILE")]
    acls_file: Option<PathBuf>,
    /// SASL mechanisms offered when SASL is on.
    #[arg(
        long,
        env = "BROKER_SASL_MECHANISMS",
        value_delimiter = ',',
        default_value = "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"
    )]
    sasl_mechanisms: Vec<Mechanism>,
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
    shared::telemetry::init_tracing();
    let args = Args::parse();
    if let Some(Command::Groups { admin, action }) = &args.command {
        return match action {
            GroupsAction::List => groups_cli::list(admin),
            GroupsAction::Describe { group } => groups_cli::describe(admin, group),
        };
    }
    let config = args.node_config()?;
    let node = Node::bind(config, shared::shutdown::on_signal())
        .await
        .context("start the broker")?;
    node.run().await;
    Ok(())
}

impl Args {
    /// SASL settings: on when any user is configured.
    fn sasl(&self) -> anyhow::Result<Option<Arc<SaslConfig>>> {
        let mut users = Users::empty();
        if let Some(path) = &self.sasl_users_file {
            users.load_file(path)?;
        }
        users.add_entries(self.sasl_users.iter().map(String::as_str), "--sasl-user")?;
        if users.is_empty() {
            if self.sasl_users_file.is_some() {
                anyhow::bail!("the SASL users file lists no users");
            }
            return Ok(None);
        }
        let mut mechanisms = self.sasl_mechanisms.clone();
        mechanisms.dedup();
        tracing::info!(users = users.len(), ?mechanisms, "SASL authentication on");
        Ok(Some(Arc::new(SaslConfig { users, mechanisms })))
    }

    fn tls(&self) -> Option<TlsFiles> {
        let (certificate, key) = (
            self.ssl_certificate_file.clone()?,
            self.ssl_key_file.clone()?,
        );
        let client_ca = self.ssl_client_ca_file.clone();
        let client_auth = self.ssl_client_auth.unwrap_or(match client_ca {
            Some(_) => ClientAuth::Required,
            None => ClientAuth::None,
        });
        Some(TlsFiles {
            certificate,
            key,
            client_ca,
            client_auth,
        })
    }

    /// `--acl` entries and the `--acls-file`.
    fn acls(&self) -> anyhow::Result<Vec<Acl>> {
        let mut acls = Vec::new();
        for e in self.acls.iter().filter(|e| !e.trim().is_empty()) {
            acls.extend(Acl::parse_entry(e).map_err(|e| anyhow::anyhow!("--acl: {e}"))?);
        }
        if let Some(path) = &self.acls_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("read the ACLs file {}", path.display()))?;
            acls.extend(
                broker::acl::parse_file(&text)
                    .map_err(|e| anyhow::anyhow!("ACLs file {}: {e}", path.display()))?,
            );
        }
        Ok(acls)
    }

    /// `--listeners` and friends, or the one listener of `--listen`, whose protocol follows
    /// from whether SASL users and a certificate are configured.
    fn listeners(&self, sasl: bool, tls: bool) -> anyhow::Result<Vec<ListenerConfig>> {
        Ok(match &self.listeners {
            Some(l) => listeners::parse(
                l,
                self.advertised_listeners.as_deref(),
                self.listener_security_protocol_map.as_deref(),
            )?,
            None => listeners::single(
                self.listen
                    .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 9092))),
                self.advertised.as_deref(),
                SecurityProtocol::from_parts(tls, sasl),
            )?,
        })
    }

    fn node_config(&self) -> anyhow::Result<NodeConfig> {
        let sasl = self.sasl()?;
        let tls = self.tls();
        Ok(NodeConfig {
            data_dir: self.data_dir.clone(),
            listeners: self.listeners(sasl.is_some(), tls.is_some())?,
            admin_listen: self.admin_listen,
            log: LogConfig {
                segment_bytes: self.segment_bytes,
                segment_ms: self.segment_ms,
                retention_ms: self.retention_ms,
                retention_bytes: self.retention_bytes,
                max_message_bytes: self.max_message_bytes,
                flush: self.flush,
                ..LogConfig::default()
            },
            auto_create_topics: self.auto_create_topics,
            default_partitions: self.default_partitions,
            max_frame_bytes: self.max_frame_bytes,
            max_connections: self.max_connections,
            max_connections_per_address: self.max_connections_per_address,
            max_unauthenticated_connections_per_address: self
                .max_unauthenticated_connections_per_address,
            failed_authentication_delay: Duration::from_millis(self.failed_authentication_delay_ms),
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
            topic_limits: TopicLimits {
                max_topics: self.max_topics,
                max_partitions: self.max_partitions,
            },
            fetch_max_bytes: self.fetch_max_bytes,
            fetch_partition_max_bytes: self.fetch_partition_max_bytes,
            groups: CoordinatorConfig {
                initial_rebalance_delay: Duration::from_millis(
                    self.group_initial_rebalance_delay_ms,
                ),
                ..CoordinatorConfig::default()
            },
            retention_check: Duration::from_millis(self.retention_check_ms),
            sasl,
            tls,
            authorization: AuthorizationConfig {
                super_users: self
                    .super_users
                    .iter()
                    .map(|u| u.trim().to_string())
                    .filter(|u| !u.is_empty())
                    .collect(),
                allow_everyone_if_no_acl_found: self.allow_everyone_if_no_acl_found,
                acls: self.acls()?,
            },
        })
    }
}
