//! The live dashboard in a real browser: Debian's headless Chromium, driven over WebDriver
//! (chromedriver), opens `/dashboard` of an API over the in-process broker, a real order worker
//! and a real PostgreSQL; buys arrive in two waves and the page must show the accepted count
//! rise with each and the orders land in the database (counts, the latest orders, the workers).
//! It saves a screenshot. Then the Grafana dashboard in `ops/` is held against the real
//! `/metrics` of the API, an order worker, an inference worker and the broker: every series it
//! queries must exist.

mod common;

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{api, sale_fixture};
use fantoccini::{Client, ClientBuilder};
use serde_json::{json, Value};
use services::api::auth::TokenKeys;
use services::api::limits::RateLimits;
use services::api::ApiConfig;
use services::inference::handler::{InferenceConfig, InferenceHandler};
use services::inference::model::demo::{DemoConfig, DemoModel};
use services::orders::OrderHandler;
use services::worker::{Worker, WorkerConfig};
use tokio_util::sync::CancellationToken;

const SECRET: &str = "test-secret-test-secret-test-secret!";

/// chromedriver on a free port, killed when dropped.
struct Chromedriver {
    child: Child,
    url: String,
}

impl Chromedriver {
    fn start() -> Chromedriver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(chromedriver())
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian: apt-get install chromium chromium-driver)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Chromedriver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn browser(&self) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium(),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1400,1800"],
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromedriver() -> String {
    std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into())
}

fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// The text of the element with `id`.
async fn text(browser: &Client, id: &str) -> String {
    browser
        .execute(
            "const e = document.getElementById(arguments[0]); return e ? e.textContent : null;",
            vec![json!(id)],
        )
        .await
        .unwrap()
        .as_str()
        .unwrap_or("")
        .to_string()
}

async fn number(browser: &Client, id: &str) -> Option<f64> {
    text(browser, id).await.trim().parse().ok()
}

/// Waits until `check` holds on the page (up to 30 s), saying what it last saw otherwise.
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = (bool, String)>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (ok, seen) = check().await;
        if ok {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the page never showed {what}; it showed {seen}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `n` buys, users `first..first + n`, all at once.
async fn wave(base: &str, keys: &TokenKeys, first: i64, n: i64) {
    let c = reqwest::Client::new();
    let answers = futures_util::future::join_all((first..first + n).map(|user| {
        c.post(format!("{base}/buy"))
            .bearer_auth(keys.mint(user, 600))
            .json(&json!({"item_id": 5001 + user % 2}))
            .send()
    }))
    .await;
    for a in answers {
        assert_eq!(a.unwrap().status(), 202);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_sale_live_in_a_browser() {
    let (db, _dir, b) = sale_fixture(&[(5001, 500), (5002, 500)], 3).await;
    let stop = CancellationToken::new();
    let worker = Worker::start(
        WorkerConfig {
            metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
            // Slower than the waves arrive, so there is a backlog to see.
            max_rate: Some(400),
            ..WorkerConfig::orders(&b.addr)
        },
        OrderHandler::new(db.pool.clone()),
    )
    .await
    .unwrap();
    let worker_metrics = worker.metrics_addr().unwrap();
    let worker = tokio::spawn(worker.run(stop.clone()));
    let a = api(
        ApiConfig {
            bootstrap: b.addr.clone(),
            jwt_secret: SECRET.into(),
            items_refresh: Duration::from_millis(100),
            limits: RateLimits::off(),
            dashboard: true,
            ..ApiConfig::default()
        },
        db.pool.clone(),
    )
    .await;
    let keys = TokenKeys::new(SECRET.as_bytes());

    let driver = Chromedriver::start();
    let browser = driver.browser().await;
    browser
        .goto(&format!("{}/dashboard", a.url()))
        .await
        .unwrap();
    until("the stream live", || async {
        let c = text(&browser, "connection").await;
        (c.trim() == "live", c)
    })
    .await;
    until("no buys yet", || async {
        let n = number(&browser, "accepted-total").await;
        (n == Some(0.0), format!("{n:?}"))
    })
    .await;

    // Two waves: the page follows each.
    wave(&a.url(), &keys, 1, 300).await;
    until("300 accepted", || async {
        let n = number(&browser, "accepted-total").await;
        (n == Some(300.0), format!("{n:?}"))
    })
    .await;
    wave(&a.url(), &keys, 301, 300).await;
    until("600 accepted", || async {
        let n = number(&browser, "accepted-total").await;
        (n == Some(600.0), format!("{n:?}"))
    })
    .await;
    // The orders land: the database's count reaches 600, the latest orders fill the table,
    // the worker is there, the backlog empties.
    until("600 orders written", || async {
        let n = number(&browser, "orders-total").await;
        (n == Some(600.0), format!("{n:?}"))
    })
    .await;
    until(
        "the latest orders, the worker and an empty backlog",
        || async {
            let rows = browser
                .execute(
                    "return document.querySelectorAll('#latest-orders tbody tr').length",
                    vec![],
                )
                .await
                .unwrap();
            let workers = number(&browser, "workers-alive").await;
            let backlog = number(&browser, "backlog").await;
            (
                rows == json!(20) && workers == Some(1.0) && backlog == Some(0.0),
                format!("{rows} rows, workers {workers:?}, backlog {backlog:?}"),
            )
        },
    )
    .await;
    let png = browser.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    std::fs::write(&out, &png).unwrap();
    println!("screenshot: {}", out.display());
    // The page's own errors would have shown in its console; none of its requests failed.
    let failed = browser
        .execute(
            "return performance.getEntriesByType('resource')\
               .filter(r => r.responseStatus && r.responseStatus >= 400).map(r => r.name)",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(failed, json!([]), "failed requests of the page");
    browser.close().await.unwrap();

    // Every series the Grafana dashboard queries exists in the real /metrics.
    let inference = Worker::start(
        WorkerConfig {
            metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
            ..WorkerConfig::inference(&b.addr)
        },
        InferenceHandler::<DemoModel>::load(
            InferenceConfig::new(DemoConfig::default()),
            db.pool.clone(),
        )
        .await
        .unwrap(),
    )
    .await
    .unwrap();
    let inference_metrics = inference.metrics_addr().unwrap();
    let inference = tokio::spawn(inference.run(stop.clone()));
    let mut exposed = BTreeSet::new();
    for url in [
        format!("{}/metrics", a.url()),
        format!("http://{worker_metrics}/metrics"),
        format!("http://{inference_metrics}/metrics"),
        format!("http://{}/metrics", b.admin_addr),
    ] {
        let body = reqwest::get(&url).await.unwrap().text().await.unwrap();
        exposed.extend(
            body.lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| l.split(['{', ' ']).next().map(str::to_string)),
        );
        // Families with no sample yet still announce themselves.
        exposed.extend(body.lines().filter_map(|l| {
            let name = l.strip_prefix("# TYPE ")?.split(' ').next()?;
            let kind = l.rsplit(' ').next()?;
            Some(match kind {
                "counter" => format!("{name}_total"),
                _ => name.to_string(),
            })
        }));
    }
    let grafana: Value =
        serde_json::from_str(include_str!("../../ops/grafana/seckill-dashboard.json")).unwrap();
    let mut queried = BTreeSet::new();
    collect_exprs(&grafana, &mut queried);
    assert!(queried.len() > 10, "{queried:?}");
    let missing: Vec<&String> = queried
        .iter()
        .filter(|m| {
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| m.strip_suffix(s))
                .unwrap_or(m);
            !exposed.contains(*m) && !exposed.contains(base)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "queried but not exposed: {missing:?}\nexposed: {exposed:?}"
    );

    stop.cancel();
    let _ = worker.await;
    let _ = inference.await;
    a.stop().await;
    db.drop_db().await;
}

/// The project's metric names in every `expr` of the dashboard.
fn collect_exprs(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr", Value::String(e)) => {
                        for token in e.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                            if [
                                "order_api_",
                                "order_worker_",
                                "inference_worker_",
                                "broker_",
                            ]
                            .iter()
                            .any(|p| token.starts_with(p))
                            {
                                out.insert(token.to_string());
                            }
                        }
                    }
                    _ => collect_exprs(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}
