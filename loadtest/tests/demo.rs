//! The README's main command at a small size: the demo binary with its throwaway PostgreSQL
//! (initdb), in-process broker, API and workers, and the `--direct` comparison. Asserts the
//! verified summary it prints, the chart, and that nothing is left behind.

use std::process::Command;

fn summary(stdout: &str, label: &str) -> serde_json::Value {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{stdout}"));
    serde_json::from_str(line).unwrap()
}

fn leftover_clusters() -> usize {
    std::fs::read_dir(std::env::temp_dir())
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with("seckill-demo-"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn the_demo_verifies_its_burst_against_the_database() {
    let out_dir = tempfile::tempdir().unwrap();
    let before = leftover_clusters();
    let out = Command::new(env!("CARGO_BIN_EXE_demo"))
        .args([
            "--buys",
            "5000",
            "--users",
            "2000",
            "--items",
            "3",
            "--stock",
            "400",
            "--connections",
            "32",
            "--opens-in",
            "1",
            "--bot-rate",
            "300",
            "--duration",
            "2",
            "--direct",
            "--out",
        ])
        .arg(out_dir.path())
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("VERIFIED"), "{stdout}");
    assert!(stdout.contains("dashboard: http://127.0.0.1:"), "{stdout}");
    assert!(
        stdout.contains("no more than a person (one per item)"),
        "the bot got more than its share: {stdout}"
    );
    let peak = summary(&stdout, "peak summary: ");
    assert!(peak["backlog_max"].as_f64().unwrap() > 0.0, "{peak}");
    for label in ["summary: ", "direct summary: "] {
        let s = summary(&stdout, label);
        assert_eq!(s["ok"], true, "{s}");
        assert_eq!(s["requests"], 5000, "{s}");
        assert_eq!(s["errors"], 0, "{s}");
        assert_eq!(
            s["order_rows"], s["accepted"],
            "one row per accepted buy: {s}"
        );
        assert_eq!(s["accepted_with_exactly_one_row"], s["accepted"], "{s}");
        assert_eq!(s["confirmed"], 1200, "all 3 x 400 units sold: {s}");
        assert_eq!(s["units_sold"], 1200, "{s}");
        assert_eq!(s["stock_left"], 0, "{s}");
        assert!(s["min_stock"].as_i64().unwrap() >= 0, "{s}");
    }
    let png = std::fs::read(out_dir.path().join("peak-shaving.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000);
    assert_eq!(
        leftover_clusters(),
        before,
        "temporary cluster or broker data left behind"
    );
}
