//! The services' binaries as a deployment runs them: flags and env parsed, bad settings refused
//! at start with a clear message, `/healthz` `/readyz` `/metrics`, SIGTERM exits 0, and the
//! inference worker process killed with SIGKILL in the middle of a request (the order binaries
//! are crashed the same way by the chaos command, `loadtest/tests/chaos.rs`).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{api, broker, wait_for_rows, TestDb};
use serde_json::json;
use services::api::auth::TokenKeys;
use services::api::ApiConfig;
use services::inference::replies::ReplyConfig;

const SECRET: &str = "test-secret-test-secret-test-secret!";

/// A child process killed when dropped (a failing test leaves none behind).
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    fn sigterm(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let status = self.0.wait().unwrap();
        std::mem::forget(self);
        status
    }

    fn sigkill(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        std::mem::forget(self);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs a binary that must refuse to start; returns its stderr.
fn refuses(bin: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = Command::new(bin)
        .args(args)
        .env_remove("DATABASE_URL")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(!out.status.success(), "{bin} {args:?} started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_settings_are_refused_at_start_with_the_reason() {
    let api = env!("CARGO_BIN_EXE_order-api");
    let url = ("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none");
    let err = refuses(api, &[], &[url, ("JWT_SECRET", "short")]);
    assert!(err.contains("at least 32 bytes"), "{err}");
    let err = refuses(
        api,
        &["--enqueue-timeout-ms", "5"],
        &[url, ("JWT_SECRET", SECRET)],
    );
    assert!(err.contains("enqueue timeout"), "{err}");
    let err = refuses(
        api,
        &["--listen", "not-an-address"],
        &[url, ("JWT_SECRET", SECRET)],
    );
    assert!(err.contains("--listen"), "{err}");
    let err = refuses(
        api,
        &["--rate-per-user", "5/0"],
        &[url, ("JWT_SECRET", SECRET)],
    );
    assert!(err.contains("RATE/BURST"), "{err}");
    let err = refuses(
        api,
        &["--purchase-token-ttl-ms", "0"],
        &[url, ("JWT_SECRET", SECRET)],
    );
    assert!(err.contains("purchase token lifetime"), "{err}");
    let err = refuses(
        api,
        &["--infer-producer-linger-ms", "5000"],
        &[url, ("JWT_SECRET", SECRET)],
    );
    assert!(err.contains("inference producer linger"), "{err}");
    let err = refuses(
        api,
        &["--header-read-timeout-ms", "0"],
        &[url, ("JWT_SECRET", SECRET)],
    );
    assert!(err.contains("header read timeout"), "{err}");
    let err = refuses(
        api,
        &["--max-connections", "0"],
        &[url, ("JWT_SECRET", SECRET)],
    );
    assert!(err.contains("open connections cap"), "{err}");
    let err = refuses(
        env!("CARGO_BIN_EXE_order-worker"),
        &["--max-batch", "0"],
        &[url],
    );
    assert!(err.contains("--max-batch"), "{err}");
    let err = refuses(
        env!("CARGO_BIN_EXE_inference-worker"),
        &["--model", "command"],
        &[url],
    );
    assert!(err.contains("--model-command"), "{err}");
    let err = refuses(env!("CARGO_BIN_EXE_migrate"), &[], &[url]);
    assert!(err.contains("connect"), "{err}");
}

fn inference_worker(db: &TestDb, bootstrap: &str, metrics: u16, latency_ms: u64) -> Proc {
    Proc(
        Command::new(env!("CARGO_BIN_EXE_inference-worker"))
            .env("DATABASE_URL", &db.url)
            .env("KAFKA_BOOTSTRAP", bootstrap)
            .env("DEMO_LOAD_MS", "0")
            .env("DEMO_LATENCY_MS", latency_ms.to_string())
            .env("INFER_MAX_BATCH", "4")
            .env("INFER_METRICS_LISTEN", format!("127.0.0.1:{metrics}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

async fn get(client: &reqwest::Client, url: String) -> (u16, String) {
    match client.get(url).send().await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

async fn wait_ready(client: &reqwest::Client, metrics: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = get(client, format!("http://127.0.0.1:{metrics}/readyz")).await;
        if status == 200 {
            return;
        }
        assert!(Instant::now() < deadline, "never ready: {status} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inference_worker_binary_serves_survives_sigkill_and_exits_0_on_sigterm() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path());
    let api = api(
        ApiConfig {
            bootstrap: b.addr.clone(),
            jwt_secret: SECRET.into(),
            replies: ReplyConfig::new(&b.addr),
            limits: services::api::limits::RateLimits::off(),
            ..ApiConfig::default()
        },
        db.pool.clone(),
    )
    .await;
    api.state.replies.ready().await;
    let client = reqwest::Client::new();
    let token = TokenKeys::new(SECRET.as_bytes()).mint(1, 600);
    let infer = |n: i64, wait_ms: u64| {
        client
            .post(format!("{}/infer?wait_ms={wait_ms}", api.url()))
            .bearer_auth(&token)
            .json(&json!({"input": {"n": n}}))
            .send()
    };

    // A slow model (1 s a micro-batch), killed with SIGKILL while it holds requests.
    let metrics = free_port();
    let first = inference_worker(&db, &b.addr, metrics, 1000);
    wait_ready(&client, metrics).await;
    let (status, body) = get(&client, format!("http://127.0.0.1:{metrics}/healthz")).await;
    assert_eq!((status, body.trim()), (200, "ok"));
    let mut ids = Vec::new();
    for n in 0..8 {
        let r: serde_json::Value = infer(n, 0).await.unwrap().json().await.unwrap();
        ids.push(r["id"].as_str().unwrap().to_string());
    }
    // It has claimed some (counted an attempt durably) and is running the model on them.
    wait_for_rows(
        &db.pool,
        "SELECT count(*) FROM inference_requests WHERE attempts > 0",
        Duration::from_secs(30),
        "the worker claimed nothing",
    )
    .await;
    first.sigkill();

    // Its successor (same metrics port, so the same static member id) finishes every request.
    let second = inference_worker(&db, &b.addr, metrics, 10);
    wait_ready(&client, metrics).await;
    for id in &ids {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, body) = get(&client, format!("{}/infer/{id}", api.url())).await;
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            if v["status"] == "done" {
                break;
            }
            assert!(Instant::now() < deadline, "{id} not finished: {body}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let (status, body) = get(&client, format!("http://127.0.0.1:{metrics}/metrics")).await;
    assert_eq!(status, 200);
    assert!(body.contains("inference_worker_done_total"), "{body}");
    // A request while it serves, answered within the wait.
    let r: serde_json::Value = infer(99, 10_000).await.unwrap().json().await.unwrap();
    assert_eq!(r["status"], "done", "{r}");

    let status = second.sigterm();
    assert!(status.success(), "SIGTERM: {status}");
    api.stop().await;
    db.drop_db().await;
}

/// The order path from an empty broker that, like Kafka's consumers, creates no topics for
/// anyone: the API and the worker binaries create what they need at start, and every buy
/// becomes an order. (Before, the API's buys were refused for want of a topic and the worker
/// subscribed to nothing until librdkafka's next metadata refresh, five minutes later.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_order_binaries_work_from_an_empty_broker_that_creates_no_topics() {
    let db = TestDb::new().await;
    db.item(6001, 1000).await;
    let dir = tempfile::tempdir().unwrap();
    let b = broker::EmbeddedBroker::start(broker::NodeConfig {
        auto_create_topics: false,
        groups: broker::group::CoordinatorConfig {
            initial_rebalance_delay: Duration::from_millis(300),
            ..Default::default()
        },
        ..broker::NodeConfig::local(dir.path())
    })
    .unwrap();
    assert!(b.broker().topics.get("seckill").is_none());
    let metrics = free_port();
    let worker = Proc(
        Command::new(env!("CARGO_BIN_EXE_order-worker"))
            .env("DATABASE_URL", &db.url)
            .env("KAFKA_BOOTSTRAP", &b.addr)
            .env("WORKER_METRICS_LISTEN", format!("127.0.0.1:{metrics}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let port = free_port();
    let api = Proc(
        Command::new(env!("CARGO_BIN_EXE_order-api"))
            .env("DATABASE_URL", &db.url)
            .env("KAFKA_BOOTSTRAP", &b.addr)
            .env("JWT_SECRET", SECRET)
            .env("API_LISTEN", format!("127.0.0.1:{port}"))
            .env("API_RATE_PER_ADDRESS", "off")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _) = get(&client, format!("{base}/readyz")).await;
        let created = b.broker().topics.get("seckill").is_some();
        if status == 200 && created {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not ready: {status}, topic {created}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Created with the services' default partitions (not the broker's 1), and the dead-letter
    // topic beside it.
    assert_eq!(
        b.broker().topics.get("seckill").unwrap().partitions().len(),
        6
    );
    assert!(b.broker().topics.get("seckill.dlq").is_some());

    let keys = TokenKeys::new(SECRET.as_bytes());
    for user in 1..=50 {
        let r = client
            .post(format!("{base}/buy"))
            .bearer_auth(keys.mint(user, 600))
            .json(&json!({"item_id": 6001}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders WHERE item_id = 6001")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        if orders == 50 {
            break;
        }
        assert!(Instant::now() < deadline, "{orders} of 50 orders written");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(db.stock(6001).await, 950);
    assert!(api.sigterm().success());
    assert!(worker.sigterm().success());
    db.drop_db().await;
}

/// The three service binaries against `b`, each with the Kafka settings `common` plus its own
/// (`api`, `worker`, `inference`): 20 buys of `item` must become 20 orders and an inference
/// request must be answered. Stops all three with SIGTERM (each must exit 0).
async fn three_services_serve(
    db: &TestDb,
    b: &broker::EmbeddedBroker,
    common: &[(&str, &str)],
    [api_env, worker_env, inference_env]: [&[(&str, &str)]; 3],
    item: i64,
) {
    let spawn = |bin: &str, own: &[(&str, &str)], env: &[(&str, String)]| {
        Proc(
            Command::new(bin)
                .env("DATABASE_URL", &db.url)
                .env("KAFKA_BOOTSTRAP", &b.addr)
                .envs(common.iter().copied())
                .envs(own.iter().copied())
                .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let (worker_metrics, infer_metrics, port) = (free_port(), free_port(), free_port());
    let worker = spawn(
        env!("CARGO_BIN_EXE_order-worker"),
        worker_env,
        &[(
            "WORKER_METRICS_LISTEN",
            format!("127.0.0.1:{worker_metrics}"),
        )],
    );
    let inference = spawn(
        env!("CARGO_BIN_EXE_inference-worker"),
        inference_env,
        &[
            ("DEMO_LOAD_MS", "0".into()),
            ("DEMO_LATENCY_MS", "10".into()),
            ("INFER_METRICS_LISTEN", format!("127.0.0.1:{infer_metrics}")),
        ],
    );
    let api = spawn(
        env!("CARGO_BIN_EXE_order-api"),
        api_env,
        &[
            ("JWT_SECRET", SECRET.into()),
            ("API_LISTEN", format!("127.0.0.1:{port}")),
            ("API_RATE_PER_ADDRESS", "off".into()),
            ("API_DASHBOARD", "true".into()),
        ],
    );
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&client, worker_metrics).await;
    wait_ready(&client, infer_metrics).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while get(&client, format!("{base}/readyz")).await.0 != 200 {
        assert!(Instant::now() < deadline, "the API never got ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let keys = TokenKeys::new(SECRET.as_bytes());
    for user in 1..=20 {
        let r = client
            .post(format!("{base}/buy"))
            .bearer_auth(keys.mint(user, 600))
            .json(&json!({"item_id": item}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    }
    wait_for_rows(
        &db.pool,
        &format!("SELECT count(*) - 19 FROM orders WHERE item_id = {item}"),
        Duration::from_secs(60),
        "not every buy became an order",
    )
    .await;
    assert_eq!(db.stock(item).await, 980);
    let r: serde_json::Value = client
        .post(format!("{base}/infer?wait_ms=20000"))
        .bearer_auth(keys.mint(1, 600))
        .json(&json!({"input": {"n": 7}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["status"], "done", "{r}");
    // The dashboard's look at the queue (the order workers' committed offsets and members,
    // read over Kafka as the API's user) shows up in its event stream.
    let mut events = client
        .get(format!("{base}/dashboard/events"))
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = String::new();
    'ticks: loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, events.chunk()).await;
        let Ok(Ok(Some(chunk))) = chunk else {
            panic!("no dashboard tick with the queue's backlog and workers; last: {seen}");
        };
        seen.push_str(&String::from_utf8_lossy(&chunk));
        for line in seen.lines().filter_map(|l| l.strip_prefix("data:")) {
            let tick: serde_json::Value = serde_json::from_str(line.trim()).unwrap_or_default();
            if tick["backlog"].is_number() && tick["workers"]["alive"].as_u64() >= Some(1) {
                break 'ticks;
            }
        }
        if let Some(end) = seen.rfind("\n\n") {
            seen.drain(..end);
        }
    }
    drop(events);
    for p in [api, worker, inference] {
        assert!(p.sigterm().success());
    }
}

/// A broker for the services with SASL users `users` (NAME:ROLE:PASSWORD) and `acls`.
fn sasl_broker(
    dir: &std::path::Path,
    users: &[&str],
    acls: Vec<broker::acl::Acl>,
) -> broker::NodeConfig {
    let mut u = broker::auth::Users::empty();
    u.add_entries(users.iter().copied(), "test").unwrap();
    let mut config = broker::NodeConfig::local(dir);
    config.listeners[0].protocol = broker::listeners::SecurityProtocol::SaslPlaintext;
    config.sasl = Some(std::sync::Arc::new(broker::auth::SaslConfig {
        users: u,
        mechanisms: broker::auth::Mechanism::ALL.to_vec(),
    }));
    config.authorization.acls = acls;
    config.groups.initial_rebalance_delay = Duration::from_millis(300);
    config
}

/// The three services over TLS with SCRAM, configured as a deployment would be
/// (`KAFKA_SECURITY_PROTOCOL=SASL_SSL`, `KAFKA_SASL_MECHANISM=SCRAM-SHA-512`,
/// `KAFKA_SSL_CA_LOCATION`), against a broker whose only listener is SASL_SSL. Before
/// librdkafka was built with OpenSSL, the services refused SASL_SSL and SCRAM at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_three_binaries_work_over_sasl_ssl_with_scram() {
    let db = TestDb::new().await;
    db.item(6101, 1000).await;
    let dir = tempfile::tempdir().unwrap();
    let pki = broker::test_pki::TestPki::generate(dir.path(), "services").unwrap();
    let mut config = sasl_broker(dir.path(), &["services:admin:svc-secret"], Vec::new());
    config.listeners[0].protocol = broker::listeners::SecurityProtocol::SaslSsl;
    config.tls = Some(broker::tls::TlsFiles {
        certificate: pki.broker.cert.clone(),
        key: pki.broker.key.clone(),
        client_ca: None,
        client_auth: broker::tls::ClientAuth::None,
    });
    let b = broker::EmbeddedBroker::start(config).unwrap();
    let ca = pki.ca.to_str().unwrap().to_string();
    let common = [
        ("KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
        ("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
        ("KAFKA_SASL_USERNAME", "services"),
        ("KAFKA_SASL_PASSWORD", "svc-secret"),
        ("KAFKA_SSL_CA_LOCATION", ca.as_str()),
    ];
    three_services_serve(&db, &b, &common, [&[], &[], &[]], 6101).await;
    db.drop_db().await;
}

/// docker-compose.yml's least privilege, with its own ACLs file (deploy/broker-acls.txt): each
/// service logs in as its own user, none an admin, and everything works; and each user can do
/// nothing beyond its part: the order worker and the inference worker cannot write buys to
/// `seckill` (the forged-orders finding of issue 34), the API cannot join `order-workers` (the
/// lost-orders finding), the order worker cannot read inference requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_acls_give_each_service_what_it_needs_and_nothing_more() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::producer::{FutureProducer, FutureRecord};
    use rdkafka::types::RDKafkaErrorCode;

    let db = TestDb::new().await;
    db.item(6102, 1000).await;
    let dir = tempfile::tempdir().unwrap();
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/broker-acls.txt");
    let acls = broker::acl::parse_file(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let config = sasl_broker(
        dir.path(),
        &[
            "orders-api:user:api-pw",
            "order-worker:user:worker-pw",
            "inference-worker:user:inference-pw",
        ],
        acls,
    );
    let b = broker::EmbeddedBroker::start(config).unwrap();
    let common = [
        ("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT"),
        ("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
    ];
    let login = |user: &'static str, pw: &'static str| {
        [("KAFKA_SASL_USERNAME", user), ("KAFKA_SASL_PASSWORD", pw)]
    };
    three_services_serve(
        &db,
        &b,
        &common,
        [
            &login("orders-api", "api-pw"),
            &login("order-worker", "worker-pw"),
            &login("inference-worker", "inference-pw"),
        ],
        6102,
    )
    .await;

    let client = |user: &str, pw: &str| {
        let mut c = rdkafka::config::ClientConfig::new();
        c.set("bootstrap.servers", &b.addr)
            .set("security.protocol", "SASL_PLAINTEXT")
            .set("sasl.mechanism", "SCRAM-SHA-512")
            .set("sasl.username", user)
            .set("sasl.password", pw)
            .set("message.timeout.ms", "5000");
        c
    };
    for (user, pw) in [
        ("order-worker", "worker-pw"),
        ("inference-worker", "inference-pw"),
    ] {
        let p: FutureProducer = client(user, pw).create().unwrap();
        let e = p
            .send(
                FutureRecord::<(), _>::to("seckill").payload(r#"{"forged":1}"#),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .expect_err("a worker's user wrote a buy");
        assert_eq!(
            e.rdkafka_error_code(),
            Some(RDKafkaErrorCode::TopicAuthorizationFailed),
            "{user}: {e}"
        );
    }
    let joins = |user: &str, pw: &str, group: &str, topic: &str| {
        let c: BaseConsumer = client(user, pw).set("group.id", group).create().unwrap();
        c.subscribe(&[topic]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(Err(e)) = c.poll(Duration::from_millis(200)) {
                return e.rdkafka_error_code();
            }
            assert!(
                Instant::now() < deadline,
                "{user} got no error joining {group}"
            );
        }
    };
    assert_eq!(
        joins("orders-api", "api-pw", "order-workers", "seckill"),
        Some(RDKafkaErrorCode::GroupAuthorizationFailed)
    );
    assert_eq!(
        joins(
            "order-worker",
            "worker-pw",
            "inference-workers",
            "inference.requests"
        ),
        Some(RDKafkaErrorCode::GroupAuthorizationFailed)
    );
    db.drop_db().await;
}
