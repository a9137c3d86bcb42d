//! The chaos command at CI size: the stack from the real binaries (broker, migrate, two
//! order-api, two order-worker) as separate processes and a throwaway PostgreSQL; each scenario
//! kills or freezes parts of it mid-burst (SIGKILL of the broker, of an API instance, of a worker,
//! PostgreSQL stopped, the broker frozen past the enqueue timeout, and all at once), and the
//! command checks every promise against the database. It exits non-zero if any broke.

use std::process::Command;

#[test]
fn every_promise_holds_when_processes_are_killed_mid_burst() {
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_chaos"))
        .args(["--short", "--out"])
        .arg(out.path())
        .env_remove("CHAOS_DATABASE_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "chaos failed ({}):\n{stdout}\n{stderr}",
        run.status
    );
    assert!(stdout.contains("CHAOS VERIFIED"), "{stdout}");
    for scenario in ["broker", "api", "worker", "postgres", "stall", "all"] {
        let row = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{scenario} ")))
            .unwrap_or_else(|| panic!("no row for {scenario}:\n{stdout}"));
        assert!(row.trim_end().ends_with("yes"), "{row}");
    }
    // The faults really happened: answers while the broker was away or frozen were 503s, and
    // the killed API cut connections.
    assert!(stdout.contains("broker SIGKILL"), "{stdout}");
}
