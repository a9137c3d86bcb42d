//! The admin HTTP port of the real broker binary: `/healthz` and Prometheus `/metrics` that
//! reflect real traffic.

use super::harness::{admin_get, kcat, BrokerProcess};

/// The value of the sample whose name and labels start with `prefix`.
fn sample(metrics: &str, prefix: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no sample {prefix} in:\n{metrics}"))
}

#[test]
fn healthz_and_metrics_reflect_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let (status, body) = admin_get(&broker, "/healthz");
    assert_eq!((status, body.as_str()), (200, "ok\n"));

    let input: String = (0..10).map(|i| format!("message {i}\n")).collect();
    kcat(&broker, &["-P", "-t", "m"], &input);
    kcat(
        &broker,
        &["-C", "-t", "m", "-o", "beginning", "-e", "-q"],
        "",
    );

    let (status, m) = admin_get(&broker, "/metrics");
    assert_eq!(status, 200);
    assert_eq!(sample(&m, "broker_messages_in_total{topic=\"m\"}"), 10.0);
    assert!(sample(&m, "broker_bytes_in_total{topic=\"m\"}") > 100.0);
    assert_eq!(sample(&m, "broker_messages_out_total{topic=\"m\"}"), 10.0);
    assert_eq!(
        sample(&m, "broker_log_end_offset{topic=\"m\",partition=\"0\"}"),
        10.0
    );
    assert_eq!(
        sample(&m, "broker_high_watermark{topic=\"m\",partition=\"0\"}"),
        10.0
    );
    assert_eq!(
        sample(&m, "broker_log_start_offset{topic=\"m\",partition=\"0\"}"),
        0.0
    );
    assert!(sample(&m, "broker_log_flushes{topic=\"m\",partition=\"0\"}") >= 1.0);
    assert!(sample(&m, "broker_request_duration_seconds_count{api=\"Produce\"}") >= 1.0);
    assert!(sample(&m, "broker_request_duration_seconds_count{api=\"Fetch\"}") >= 1.0);
    assert!(sample(&m, "broker_connections_accepted_total") >= 2.0);
    assert!(m.contains("# TYPE broker_request_duration_seconds histogram"));

    let (status, _) = admin_get(&broker, "/nope");
    assert_eq!(status, 404);
}
