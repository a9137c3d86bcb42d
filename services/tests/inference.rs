//! Request/reply through the real broker, real HTTP and a real PostgreSQL: several API instances
//! and workers, a killed worker, a caller that stops waiting, expiry, model errors, a poison
//! request, and the command adapter with the example Python model.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{api, broker, spawn_until_aborted, wait_for_rows, TestDb};
use serde_json::{json, Value};
use services::api::auth::TokenKeys;
use services::api::{ApiConfig, RunningApi};
use services::inference::handler::{InferenceConfig, InferenceHandler, InferenceStats};
use services::inference::model::command::{CommandConfig, CommandModel};
use services::inference::model::demo::{DemoConfig, DemoModel};
use services::inference::model::{Model, ModelError};
use services::inference::replies::ReplyConfig;
use services::worker::{Worker, WorkerConfig, WorkerError};

const SECRET: &str = "test-secret-test-secret-test-secret!";

type WorkerTask = tokio::task::JoinHandle<Result<(), WorkerError>>;

/// An inference worker built the way the binary builds it.
async fn inference_worker<M: Model>(
    bootstrap: &str,
    pool: sqlx::PgPool,
    model: M::Config,
    max_batch: usize,
) -> (Worker<InferenceHandler<M>>, Arc<InferenceStats>) {
    let handler = InferenceHandler::<M>::load(InferenceConfig::new(model), pool)
        .await
        .unwrap();
    let stats = handler.stats();
    let config = WorkerConfig {
        max_batch,
        session_timeout_ms: 6000,
        ..WorkerConfig::inference(bootstrap)
    };
    (Worker::start(config, handler).await.unwrap(), stats)
}

struct Stack {
    db: TestDb,
    _dir: tempfile::TempDir,
    broker: broker::EmbeddedBroker,
    /// The API instances, their reply partitions, and their base URLs.
    running: Vec<RunningApi>,
    partitions: Vec<Option<i32>>,
    apis: Vec<String>,
    token: String,
    client: reqwest::Client,
}

async fn stack(api_instances: i32) -> Stack {
    stack_with(api_instances, Some).await
}

/// API instances that all read partition 0 of the replies topic.
async fn stack_sharing_partition(api_instances: i32) -> Stack {
    stack_with(api_instances, |_| Some(0)).await
}

/// The API config of instance `i`, its reply partition chosen by `partition`.
fn api_config(bootstrap: &str, partition: Option<i32>) -> ApiConfig {
    ApiConfig {
        bootstrap: bootstrap.into(),
        jwt_secret: SECRET.into(),
        replies: ReplyConfig {
            partition,
            ..ReplyConfig::new(bootstrap)
        },
        limits: services::api::limits::RateLimits::off(),
        ..ApiConfig::default()
    }
}

async fn stack_with(api_instances: i32, partition: impl Fn(i32) -> Option<i32>) -> Stack {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path());
    let mut running = Vec::new();
    let mut partitions = Vec::new();
    for i in 0..api_instances {
        // By default distinct partitions, so the test shows replies crossing to the right one.
        let a = api(api_config(&b.addr, partition(i)), db.pool.clone()).await;
        a.state.replies.ready().await;
        partitions.push(partition(i));
        running.push(a);
    }
    Stack {
        db,
        _dir: dir,
        broker: b,
        apis: running.iter().map(RunningApi::url).collect(),
        running,
        partitions,
        token: TokenKeys::new(SECRET.as_bytes()).mint(1, 600),
        client: reqwest::Client::new(),
    }
}

impl Stack {
    /// Stops API instance `i` (its requests in flight finish) and starts a new one in its place
    /// (a new port: as another process would be).
    async fn restart_api(&mut self, i: usize) {
        let old = self.running.remove(i);
        old.stop().await;
        let a = api(
            api_config(&self.broker.addr, self.partitions[i]),
            self.db.pool.clone(),
        )
        .await;
        a.state.replies.ready().await;
        self.apis[i] = a.url();
        self.running.insert(i, a);
    }

    async fn worker(&self, latency_ms: u64) -> (WorkerTask, Arc<InferenceStats>) {
        let model = DemoConfig {
            load_time: Duration::ZERO,
            latency: Duration::from_millis(latency_ms),
            ..DemoConfig::default()
        };
        let (w, stats) =
            inference_worker::<DemoModel>(&self.broker.addr, self.db.pool.clone(), model, 8).await;
        (spawn_until_aborted(w), stats)
    }

    /// POST /infer on API instance `api`; (status, body).
    async fn infer(&self, api: usize, body: Value, wait_ms: u64) -> (u16, Value) {
        let r = self
            .client
            .post(format!("{}/infer?wait_ms={wait_ms}", self.apis[api]))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    async fn get(&self, id: &str) -> (u16, Value) {
        let r = self
            .client
            .get(format!("{}/infer/{id}", self.apis[0]))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// Polls GET /infer/{id} until a request a Kafka client produced (no row before a worker
    /// claims it) is finished.
    async fn kafka_outcome(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, body) = self.get(id).await;
            if status == 200 && body["status"] != "pending" {
                return body;
            }
            assert!(status == 200 || status == 404, "{status}: {body}");
            assert!(Instant::now() < deadline, "not finished: {body}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls GET /infer/{id} until it is no longer pending.
    async fn outcome(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, body) = self.get(id).await;
            assert_eq!(status, 200, "{body}");
            if body["status"] != "pending" {
                return body;
            }
            assert!(Instant::now() < deadline, "still pending: {body}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Produces each value to the request topic as a Kafka client of its own would (key "k"),
    /// each acknowledged before the next.
    async fn produce_requests(&self, values: &[String]) {
        use rdkafka::producer::{FutureProducer, FutureRecord};
        let producer: FutureProducer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &self.broker.addr)
            .create()
            .unwrap();
        for value in values {
            producer
                .send(
                    FutureRecord::to("inference.requests")
                        .key("k")
                        .payload(value),
                    Duration::from_secs(10),
                )
                .await
                .map_err(|(e, _)| e)
                .unwrap();
        }
    }

    fn topic_records(&self, topic: &str) -> i64 {
        self.broker
            .broker()
            .topics
            .get(topic)
            .map(|t| t.partitions().iter().map(|p| p.high_watermark()).sum())
            .unwrap_or(0)
    }
}

/// Fires `n` concurrent requests `{"n": i}` over the API instances; checks each 200 carries the
/// echo of its own input.
async fn fire(s: &Arc<Stack>, n: usize, wait_ms: u64) {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                let (status, body) = s
                    .infer(i % s.apis.len(), json!({"input": {"n": i}}), wait_ms)
                    .await;
                (i, status, body)
            })
        })
        .collect();
    for t in tasks {
        let (i, status, body) = t.await.unwrap();
        assert_eq!(status, 200, "request {i}: {body}");
        assert_eq!(body["status"], "done", "request {i}: {body}");
        assert_eq!(
            body["output"]["echo"],
            json!({"n": i}),
            "request {i} got another's reply"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_apis_two_workers_every_caller_gets_its_own_reply() {
    let s = Arc::new(stack(2).await);
    let (w1, _) = s.worker(100).await;
    let (w2, _) = s.worker(100).await;
    fire(&s, 200, 30_000).await;
    let done: i64 =
        sqlx::query_scalar("SELECT count(*) FROM inference_requests WHERE status = 'done'")
            .fetch_one(&s.db.pool)
            .await
            .unwrap();
    assert_eq!(done, 200, "every result stored");
    w1.abort();
    w2.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_while_holding_requests_leaves_them_to_the_other() {
    let s = Arc::new(stack(1).await);
    let (w1, _) = s.worker(300).await;
    let burst = {
        let s = s.clone();
        tokio::spawn(async move { fire(&s, 60, 40_000).await })
    };
    // Kill the worker once it holds a micro-batch it has claimed in the database (its model is
    // running: 300 ms), not yet answered nor committed. It is the only worker so far, so the
    // claim is its own.
    wait_for_rows(
        &s.db.pool,
        "SELECT count(*) FROM inference_requests WHERE attempts >= 1 AND status <> 'done'",
        Duration::from_secs(30),
        "worker 1 claimed nothing",
    )
    .await;
    w1.abort();
    let _ = w1.await;
    // The other worker takes the partitions over once the killed one's session expires.
    let (w2, _) = s.worker(300).await;
    // Every request still gets its own answer (`fire` checks each reply)...
    burst.await.unwrap();
    // ...each stored once as done, and the ones the killed worker held were run again by the
    // other: their attempt count shows the second run.
    let (done, rerun): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'done'), count(*) FILTER (WHERE attempts >= 2) \
         FROM inference_requests",
    )
    .fetch_one(&s.db.pool)
    .await
    .unwrap();
    assert_eq!(done, 60);
    assert!(
        rerun >= 1,
        "no request was taken over from the killed worker"
    );
    w2.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_instances_sharing_a_reply_partition_get_only_their_own_replies() {
    // Both instances read partition 0 of inference.replies: each sees the other's replies too
    // and must hand every caller its own.
    let s = Arc::new(stack_sharing_partition(2).await);
    let (w, _) = s.worker(20).await;
    fire(&s, 120, 30_000).await;
    w.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_survives_the_restart_of_its_api_instance() {
    let mut s = stack(1).await;
    let (status, body) = s.infer(0, json!({"input": {"q": "across"}}), 0).await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    // The instance that took it goes away before any worker answered; a new one comes up.
    s.restart_api(0).await;
    let (w, _) = s.worker(20).await;
    let out = s.outcome(&id).await;
    assert_eq!(out["status"], "done", "{out}");
    assert_eq!(out["output"]["echo"], json!({"q": "across"}));
    w.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_stops_waiting_gets_202_and_the_result_later() {
    let s = stack(1).await;
    let (w, _) = s.worker(500).await;
    let (status, body) = s.infer(0, json!({"input": {"q": "slow"}}), 50).await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    assert_eq!(body["status_url"], format!("/infer/{id}"));
    let out = s.outcome(&id).await;
    assert_eq!(out["status"], "done");
    assert_eq!(out["output"]["echo"], json!({"q": "slow"}));

    // No wait at all is a 202 too; unknown and malformed ids are 404 and 400.
    let (status, _) = s.infer(0, json!({"input": 1}), 0).await;
    assert_eq!(status, 202);
    assert_eq!(s.get(&uuid::Uuid::new_v4().to_string()).await.0, 404);
    assert_eq!(s.get("not-a-uuid").await.0, 400);
    // Bad requests.
    let no_token = s
        .client
        .post(format!("{}/infer", s.apis[0]))
        .json(&json!({"input": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 401);
    assert_eq!(
        s.infer(0, json!({"model": "demo"}), 0).await.0,
        422,
        "input required"
    );
    assert_eq!(s.infer(0, json!({"input": 1, "extra": 2}), 0).await.0, 422);
    w.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_model_errors_unknown_models_and_a_poison_request() {
    let s = stack(1).await;
    // No worker yet: this request outlives its deadline in the queue.
    let (status, body) = s
        .infer(0, json!({"input": {"late": true}, "deadline_ms": 200}), 0)
        .await;
    assert_eq!(status, 202);
    let late = body["id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(s.get(&late).await.1["status"], "expired");

    let (w, stats) = s.worker(20).await;
    // The worker answers it expired without running the model, and stores that.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stored: String =
            sqlx::query_scalar("SELECT status::text FROM inference_requests WHERE id = $1::uuid")
                .bind(&late)
                .fetch_one(&s.db.pool)
                .await
                .unwrap();
        if stored == "expired" {
            break;
        }
        assert_eq!(stored, "pending");
        assert!(Instant::now() < deadline, "never expired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(stats.expired.get(), 1);
    assert_eq!(stats.done.get(), 0, "the model never ran on it");

    let (status, body) = s
        .infer(0, json!({"input": {"fail": "no good"}}), 20_000)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (body["status"].as_str(), body["error"].as_str()),
        (Some("failed"), Some("no good"))
    );

    let (_, body) = s
        .infer(0, json!({"input": 1, "model": "gpt-17"}), 20_000)
        .await;
    assert_eq!(body["status"], "failed");
    assert!(
        body["error"].as_str().unwrap().contains("unknown model"),
        "{body}"
    );

    // A request that crashes the model every time, sent with innocent ones: it is
    // dead-lettered after max_attempts runs, and the others are answered.
    let poison = s.infer(0, json!({"input": {"crash": true}}), 0);
    let fine = s.infer(0, json!({"input": {"ok": 1}}), 30_000);
    let ((pstatus, pbody), (fstatus, fbody)) = tokio::join!(poison, fine);
    assert_eq!(pstatus, 202);
    assert_eq!(
        (fstatus, fbody["status"].as_str()),
        (200, Some("done")),
        "{fbody}"
    );
    let out = s.outcome(pbody["id"].as_str().unwrap()).await;
    assert_eq!(out["status"], "failed");
    assert!(
        out["error"].as_str().unwrap().starts_with("poison"),
        "{out}"
    );
    assert_eq!(stats.poisoned.get(), 1);
    assert!(
        stats.model_crashes.get() >= 3,
        "{}",
        stats.model_crashes.get()
    );
    assert_eq!(s.topic_records(shared::topics::INFERENCE_DEAD_LETTER), 1);
    w.abort();
}

fn cinema_model() -> CommandConfig {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/inference/cinema_model.py"
    );
    let mut c = CommandConfig::parse(&format!("python3 {script}")).unwrap();
    c.batch_timeout = Duration::from_secs(5);
    c
}

#[tokio::test]
async fn the_command_adapter_runs_the_example_python_model() {
    let mut m = CommandModel::load(&cinema_model()).await.unwrap();
    assert_eq!(m.name(), "cinema-sql");
    let out = m
        .infer(&[
            json!({"question": "How many films are there?"}),
            json!({"question": "films directed by Agnes Varda"}),
            json!({"no_question": 1}),
        ])
        .await
        .unwrap();
    let sql = out[0].as_ref().unwrap()["sql"]
        .as_str()
        .unwrap()
        .to_lowercase();
    assert!(sql.contains("count") && sql.contains("films"), "{sql}");
    let sql = out[1].as_ref().unwrap()["sql"]
        .as_str()
        .unwrap()
        .to_lowercase();
    assert!(sql.contains("director"), "{sql}");
    assert!(out[2].is_err(), "{:?}", out[2]);
    // The program dies on this input: a crash, not a failed request.
    assert!(matches!(
        m.infer(&[json!({"crash": true})]).await,
        Err(ModelError::Crashed(_))
    ));
    // A program that is not there fails to load with the reason.
    let err = CommandModel::load(&CommandConfig::parse("/nonexistent/model").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, ModelError::Load(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_model_serves_through_the_queue() {
    let s = stack(1).await;
    let (w, _) =
        inference_worker::<CommandModel>(&s.broker.addr, s.db.pool.clone(), cinema_model(), 32)
            .await;
    let task = spawn_until_aborted(w);
    let (status, body) = s
        .infer(
            0,
            json!({"input": {"question": "what is showing in room 2?"}}),
            30_000,
        )
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("done")),
        "{body}"
    );
    assert!(
        body["output"]["sql"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("room"),
        "{body}"
    );
    task.abort();
}

/// The Python that has kafka-python: `SECKILL_PYTHON`, the project's `.venv`, or `python3`.
fn python() -> String {
    if let Ok(p) = std::env::var("SECKILL_PYTHON") {
        return p;
    }
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python3");
    if std::path::Path::new(venv).exists() {
        return venv.into();
    }
    "python3".into()
}

/// Runs examples/inference/kafka_backend.py against the broker; its one JSON line.
fn kafka_backend(bootstrap: &str, args: &[&str]) -> Value {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/inference/kafka_backend.py"
    );
    let out = std::process::Command::new(python())
        .arg(script)
        .args(["--bootstrap", bootstrap, "--timeout", "60"])
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kafka_backend.py failed ({}): {stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap()
}

/// A backend talking Kafka directly (kafka-python, the example script): its own message as is,
/// keyed by its own UUID, reply address and correlation id in the headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kafka_client_sends_its_own_message_and_gets_the_reply_by_correlation_id() {
    let s = stack(1).await;
    let (w, stats) =
        inference_worker::<CommandModel>(&s.broker.addr, s.db.pool.clone(), cinema_model(), 8)
            .await;
    let task = spawn_until_aborted(w);
    let id = "28eedc88-7bc0-42dd-8c13-91a6e2bc7754";
    let addr = s.broker.addr.clone();
    let reply = tokio::task::spawn_blocking(move || {
        kafka_backend(&addr, &["--uuid", id, "Can you tell me how much this is?"])
    })
    .await
    .unwrap();
    assert_eq!(reply["uuid"], id, "{reply}");
    assert_eq!(reply["status"], "done", "{reply}");
    assert!(
        reply["output"]["sql"].as_str().unwrap().contains("price"),
        "{reply}"
    );
    // The result is in PostgreSQL under the caller's UUID, and the API serves it.
    let (status, body) = s.get(id).await;
    assert_eq!((status, &body["output"]), (200, &reply["output"]), "{body}");
    // Without reply headers: stored only, found by UUID.
    let addr = s.broker.addr.clone();
    let sent = tokio::task::spawn_blocking(move || {
        kafka_backend(
            &addr,
            &["--no-reply", "--database", "shop", "what is this?"],
        )
    })
    .await
    .unwrap();
    let out = s.kafka_outcome(sent["uuid"].as_str().unwrap()).await;
    assert_eq!(out["status"], "failed", "{out}");
    assert!(
        out["error"].as_str().unwrap().contains("'shop'"),
        "the model says which database it knows: {out}"
    );
    assert_eq!(stats.requests.get(), 2);
    task.abort();
}

/// A malformed message on the request topic goes to the dead-letter topic with the reason; the
/// partition goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_request_is_dead_lettered_and_never_stops_the_partition() {
    let s = stack(1).await;
    let (w, stats) = s.worker(10).await;
    let good = uuid::Uuid::new_v4().to_string();
    s.produce_requests(&[
        r#"{"nature": "no uuid"}"#.to_string(),
        "not json".to_string(),
        format!(r#"{{"uuid": "{good}", "q": "fine"}}"#),
    ])
    .await;
    let out = s.kafka_outcome(&good).await;
    assert_eq!(out["status"], "done", "{out}");
    assert_eq!(out["output"]["echo"], json!({"q": "fine"}));
    assert_eq!(s.topic_records("inference.dlq"), 2);
    assert_eq!(stats.requests.get(), 1);
    w.abort();
}

/// A caller's UUID is the request's: the same UUID with the same body is the same request (no
/// second model run, on any instance); with another body it is a 409.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_uuid_is_one_request_and_another_body_is_a_conflict() {
    let s = stack(2).await;
    let (w, stats) = s.worker(10).await;
    let id = uuid::Uuid::new_v4().to_string();
    let message =
        json!({"uuid": id, "nature": "Can you tell me how much this is?", "database": "cinema"});
    let (status, first) = s.infer(0, message.clone(), 10_000).await;
    assert_eq!(
        (status, first["status"].as_str()),
        (200, Some("done")),
        "{first}"
    );
    assert_eq!(first["id"], id.as_str());
    assert_eq!(
        first["output"]["echo"],
        json!({"nature": "Can you tell me how much this is?", "database": "cinema"})
    );
    // Again, on the other instance, with the keys in another order: the same request.
    let reordered =
        json!({"database": "cinema", "nature": "Can you tell me how much this is?", "uuid": id});
    let (status, again) = s.infer(1, reordered, 10_000).await;
    assert_eq!(
        (status, &again["output"]),
        (200, &first["output"]),
        "{again}"
    );
    assert_eq!(stats.requests.get(), 1, "one model run");
    // Another body under that UUID.
    let other = json!({"uuid": id, "nature": "something else"});
    let (status, body) = s.infer(0, other, 0).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("uuid_conflict")),
        "{body}"
    );
    // The envelope form takes a uuid too.
    let id2 = uuid::Uuid::new_v4().to_string();
    let (status, body) = s
        .infer(1, json!({"uuid": id2, "input": {"q": 1}}), 10_000)
        .await;
    assert_eq!(
        (status, body["id"].as_str()),
        (200, Some(id2.as_str())),
        "{body}"
    );
    // And a bad uuid is refused with the reason.
    let (status, body) = s.infer(0, json!({"uuid": "nope", "q": 1}), 0).await;
    assert_eq!(status, 422, "{body}");
    w.abort();
}

/// The API writes the pending rows of concurrent requests in one statement. Requests handed
/// over together (one poll: all in the writer's queue before it runs) share a statement, and in
/// it a UUID sent many times is still one request: one caller is told to enqueue it, the others
/// that it exists (or, under another body, that the UUID is taken); every other request is new.
#[tokio::test]
async fn pending_rows_written_together_keep_one_request_per_uuid() {
    use services::inference::pending::PendingRows;
    use services::inference::store::Created;
    use shared::messages::InferenceRequest;

    let db = TestDb::new().await;
    let rows = PendingRows::spawn(db.pool.clone());
    let request = |id: uuid::Uuid, input: Value| InferenceRequest {
        id,
        model: None,
        input,
        deadline_ms: shared::time::now_ms() + 60_000,
        reply_to: None,
    };
    let shared_id = uuid::Uuid::new_v4();
    let mut reqs = Vec::new();
    for i in 0..40 {
        reqs.push(match i % 4 {
            0 | 1 => request(shared_id, json!({"same": true})),
            2 => request(uuid::Uuid::new_v4(), json!({"n": i})),
            _ => request(shared_id, json!({"other": i})),
        });
    }
    let created = futures_util::future::join_all(reqs.iter().map(|r| rows.create(r))).await;
    let (mut new, mut same, mut different) = (0, 0, 0);
    for (r, c) in reqs.iter().zip(created) {
        match c.unwrap() {
            Created::New => new += 1,
            Created::Same(row) => {
                assert_eq!(row.id, shared_id);
                same += 1;
            }
            Created::Different => {
                assert_eq!(r.id, shared_id);
                different += 1;
            }
        }
    }
    // The first of the shared UUID's requests (a "same" one) wins; 10 others are new.
    assert_eq!((new, same, different), (11, 19, 10));
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM inference_requests")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(count, 11);
}

/// A group the database refuses (here for one row's deadline, out of PostgreSQL's timestamp
/// range) is tried again row by row: the bad row gets its error, the others are recorded.
#[tokio::test]
async fn a_row_the_database_refuses_does_not_fail_the_rows_written_with_it() {
    use services::inference::pending::PendingRows;
    use services::inference::store::Created;
    use shared::messages::InferenceRequest;

    let db = TestDb::new().await;
    let rows = PendingRows::spawn(db.pool.clone());
    let reqs: Vec<InferenceRequest> = (0..11)
        .map(|i| InferenceRequest {
            id: uuid::Uuid::new_v4(),
            model: None,
            input: json!({"n": i}),
            deadline_ms: if i == 5 {
                i64::MAX
            } else {
                shared::time::now_ms() + 60_000
            },
            reply_to: None,
        })
        .collect();
    let created = futures_util::future::join_all(reqs.iter().map(|r| rows.create(r))).await;
    for (i, c) in created.into_iter().enumerate() {
        match (i, c) {
            (5, Err(e)) => assert!(e.to_string().contains("out of range"), "{e}"),
            (5, Ok(_)) => panic!("the out-of-range deadline was accepted"),
            (_, c) => assert!(matches!(c, Ok(Created::New)), "{i}: {c:?}"),
        }
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM inference_requests")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(count, 10);
}

/// The model process dies mid-request (killed from outside): the worker restarts it and the
/// request is run again and answered; nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_process_killed_mid_request_is_restarted_and_the_request_retried() {
    let s = stack(1).await;
    let tag = format!("tag-{}", uuid::Uuid::new_v4());
    let mut model = cinema_model();
    model.argv.push(tag.clone());
    let (w, stats) =
        inference_worker::<CommandModel>(&s.broker.addr, s.db.pool.clone(), model, 8).await;
    let task = spawn_until_aborted(w);
    // A slow question, so the process is busy with it when it is killed.
    let (status, body) = s
        .infer(
            0,
            json!({"input": {"question": "how many films?", "sleep_ms": 1500}}),
            0,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    while stats.requests.get() == 0 {
        assert!(Instant::now() < deadline, "the worker took nothing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed = std::process::Command::new("pkill")
        .args(["-KILL", "-f", &tag])
        .status()
        .unwrap();
    assert!(killed.success(), "no model process to kill");
    let out = s.outcome(&id).await;
    assert_eq!(out["status"], "done", "{out}");
    assert!(out["output"]["sql"].as_str().unwrap().contains("count"));
    assert!(stats.model_crashes.get() >= 1);
    let attempts: i32 =
        sqlx::query_scalar("SELECT attempts FROM inference_requests WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(&s.db.pool)
            .await
            .unwrap();
    assert_eq!(attempts, 2, "run once more after the crash, then done");
    task.abort();
}

/// The group writer stops while its statement is out (here: its runtime shuts down while a
/// trigger holds the INSERT). Its callers cannot know whether their rows were recorded, so they
/// are told so, as for a broken connection. Taken for "not inserted", a caller went the
/// single-row way and, when the statement had committed, found its own row and took it for an
/// existing request: the API would never have enqueued it (seen here as `Same`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_that_stops_mid_statement_leaves_its_callers_an_unknown_outcome() {
    use services::inference::pending::PendingRows;
    use shared::messages::InferenceRequest;

    let db = TestDb::new().await;
    sqlx::raw_sql(
        "CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN PERFORM pg_sleep(1); RETURN NULL; END $$; \
         CREATE TRIGGER slow_insert AFTER INSERT ON inference_requests \
         FOR EACH STATEMENT EXECUTE FUNCTION slow_insert();",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    // The writer runs on a runtime of its own, so it can be stopped alone.
    let (handle_tx, handle_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let url = db.url.clone();
    let writer_thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let pool = services::db::connect(&url, 2).await.unwrap();
            handle_tx.send(PendingRows::spawn(pool)).unwrap();
            let _ = stop_rx.await;
        });
        // Dropping the runtime drops the writer mid-statement.
    });
    let rows = handle_rx.recv().unwrap();
    let req = InferenceRequest {
        id: uuid::Uuid::new_v4(),
        model: None,
        input: json!({"n": 1}),
        deadline_ms: shared::time::now_ms() + 60_000,
        reply_to: None,
    };
    let create = tokio::spawn({
        let (rows, req) = (rows.clone(), req.clone());
        async move { rows.create(&req).await }
    });
    // Once the INSERT is out (its trigger sleeping), stop the writer.
    wait_for_rows(
        &db.pool,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND query LIKE 'INSERT INTO inference_requests%' AND state = 'active'",
        Duration::from_secs(10),
        "the group INSERT never started",
    )
    .await;
    stop_tx.send(()).unwrap();
    writer_thread.join().unwrap();
    let created = tokio::time::timeout(Duration::from_secs(30), create)
        .await
        .unwrap()
        .unwrap();
    // Whether the statement then commits depends on when PostgreSQL sees the connection go
    // (both happen here); either way "new" or "it exists" would be a guess.
    match created {
        Err(e) => assert!(e.to_string().contains("may or may not"), "{e}"),
        Ok(c) => panic!("a row whose insert may have committed was answered {c:?}"),
    }
    db.drop_db().await;
}

/// Two copies of one request in the same micro-batch (a backend that sent it twice, or an API
/// that sent again a request whose first send had an unknown outcome): the model runs once, the
/// second copy is answered from the stored result, and the partition goes on. One statement
/// that claimed both copies would touch the row twice, which PostgreSQL refuses every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_copies_of_a_request_in_one_batch_run_the_model_once() {
    let s = stack(1).await;
    let id = uuid::Uuid::new_v4().to_string();
    let after = uuid::Uuid::new_v4().to_string();
    // Before the worker starts, so that its first poll takes all three together.
    s.produce_requests(&[
        format!(r#"{{"uuid": "{id}", "q": "twice"}}"#),
        format!(r#"{{"uuid": "{id}", "q": "twice"}}"#),
        format!(r#"{{"uuid": "{after}", "q": "next"}}"#),
    ])
    .await;
    let (w, stats) = s.worker(0).await;
    let out = s.kafka_outcome(&after).await;
    assert_eq!(out["status"], "done", "{out}");
    let out = s.kafka_outcome(&id).await;
    assert_eq!(out["output"]["echo"], json!({"q": "twice"}), "{out}");
    // The copy runs after its first's result is stored, which is what the line above saw: it
    // may still be under way.
    let deadline = Instant::now() + Duration::from_secs(10);
    while stats.redelivered.get() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(stats.requests.get(), 3);
    assert_eq!(stats.done.get(), 2, "one model run per request");
    assert_eq!(
        stats.redelivered.get(),
        1,
        "the copy answered from the table"
    );
    assert_eq!(s.topic_records("inference.dlq"), 0);
    w.abort();
}

/// A request whose pending row was written but which never reached the queue: its API instance
/// died between the two, or its send ended with an unknown outcome. A retry of the same request
/// sends it again once the first send has certainly ended (the API's enqueue timeout after the
/// last send), and then gets its result; before that it only waits, so callers retrying at
/// once do not multiply the copies in the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_sends_again_a_request_that_never_reached_the_queue() {
    let mut s = stack(0).await;
    // Far longer than the worker takes to answer, so that one copy is sent while the caller
    // waits (a request still pending after another interval is sent again).
    let enqueue_timeout = Duration::from_secs(1);
    let a = api(
        ApiConfig {
            enqueue_timeout,
            ..api_config(&s.broker.addr, Some(0))
        },
        s.db.pool.clone(),
    )
    .await;
    a.state.replies.ready().await;
    s.apis.push(a.url());
    s.partitions.push(Some(0));
    s.running.push(a);
    let (w, stats) = s.worker(0).await;
    // A first request through, so the worker has joined its group and answers at once.
    let (_, body) = s.infer(0, json!({"input": {"q": "first"}}), 30_000).await;
    assert_eq!(body["status"], "done", "{body}");
    let queued = || s.topic_records("inference.requests") - 1;
    let id = uuid::Uuid::new_v4();
    let retry = json!({"uuid": id, "input": {"q": "lost"}});
    // The row as the API writes it before the send, and no send.
    let lost = shared::messages::InferenceRequest {
        id,
        model: None,
        input: json!({"q": "lost"}),
        deadline_ms: shared::time::now_ms() + 60_000,
        reply_to: None,
    };
    services::inference::store::create_pending(&s.db.pool, &lost)
        .await
        .unwrap();
    // At once: the first send could still be under way, so nothing is sent.
    let (status, _) = s.infer(0, retry.clone(), 0).await;
    assert_eq!(status, 202);
    assert_eq!(queued(), 0);
    // Later: sent again, and answered within the wait.
    tokio::time::sleep(enqueue_timeout + Duration::from_millis(100)).await;
    let (_, body) = s.infer(0, retry.clone(), 10_000).await;
    assert_eq!(body["status"], "done", "{body}");
    assert_eq!(body["output"]["echo"], json!({"q": "lost"}), "{body}");
    assert_eq!(queued(), 1);
    // A finished request is never sent again.
    tokio::time::sleep(enqueue_timeout + Duration::from_millis(100)).await;
    let (_, body) = s.infer(0, retry, 0).await;
    assert_eq!(body["status"], "done", "{body}");
    assert_eq!(queued(), 1);
    assert_eq!(stats.done.get(), 2);
    w.abort();
}
