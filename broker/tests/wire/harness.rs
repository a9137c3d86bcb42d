//! Starts the real `broker` binary on a free port with a temp data dir, for wire-level tests.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub(crate) struct BrokerProcess {
    child: Option<Child>,
    pub(crate) port: u16,
    pub(crate) admin_port: u16,
    pub(crate) data_dir: PathBuf,
    extra: Vec<String>,
    /// Named listeners (`--listeners`) and their ports; empty: one `--listen` on `port`.
    listeners: Vec<(String, u16)>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl BrokerProcess {
    pub(crate) fn start(data_dir: &Path, extra: &[&str]) -> Self {
        let mut b = BrokerProcess {
            child: None,
            port: free_port(),
            admin_port: free_port(),
            data_dir: data_dir.to_path_buf(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            listeners: Vec::new(),
        };
        b.spawn();
        b
    }

    /// A broker with named listeners on loopback, each `(NAME, PROTOCOL)` on a free port
    /// (`--listeners` and `--listener-security-protocol-map`); `port` is the first one's.
    pub(crate) fn start_listeners(
        data_dir: &Path,
        listeners: &[(&str, &str)],
        extra: &[&str],
    ) -> Self {
        let ports: Vec<(String, u16)> = listeners
            .iter()
            .map(|(name, _)| (name.to_string(), free_port()))
            .collect();
        let map: Vec<String> = listeners.iter().map(|(n, p)| format!("{n}:{p}")).collect();
        let mut all: Vec<String> = vec!["--listener-security-protocol-map".into(), map.join(",")];
        all.extend(extra.iter().map(|s| s.to_string()));
        let mut b = BrokerProcess {
            child: None,
            port: ports[0].1,
            admin_port: free_port(),
            data_dir: data_dir.to_path_buf(),
            extra: all,
            listeners: ports,
        };
        b.spawn();
        b
    }

    /// `127.0.0.1:PORT` of the listener named `name`.
    pub(crate) fn listener_addr(&self, name: &str) -> String {
        let (_, port) = self
            .listeners
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no listener {name}"));
        format!("127.0.0.1:{port}")
    }

    fn spawn(&mut self) {
        let listen = if self.listeners.is_empty() {
            vec!["--listen".to_string(), format!("127.0.0.1:{}", self.port)]
        } else {
            let l: Vec<String> = self
                .listeners
                .iter()
                .map(|(n, p)| format!("{n}://127.0.0.1:{p}"))
                .collect();
            vec!["--listeners".to_string(), l.join(",")]
        };
        let child = Command::new(env!("CARGO_BIN_EXE_broker"))
            .args(&listen)
            .arg("--admin-listen")
            .arg(format!("127.0.0.1:{}", self.admin_port))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start broker binary");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(self.addr()).is_err()
            || TcpStream::connect(("127.0.0.1", self.admin_port)).is_err()
        {
            assert!(Instant::now() < deadline, "broker did not start listening");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The broker process's id, for /proc/<pid>/... (threads, peak memory).
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("broker running").id()
    }

    /// A field of /proc/<pid>/status, e.g. `VmHWM` (peak resident set, kB) or `Threads`.
    pub(crate) fn proc_status(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/<pid>/status:\n{status}"))
    }

    pub(crate) fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Whether the process is still alive (it did not crash or exit).
    pub(crate) fn is_running(&mut self) -> bool {
        self.exit_status().is_none()
    }

    /// How the process ended, if it did (waiting briefly for a dying one).
    pub(crate) fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        let c = self.child.as_mut()?;
        for _ in 0..50 {
            if let Some(s) = c.try_wait().unwrap() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// SIGTERM, and the exit status (graceful shutdown must exit 0).
    pub(crate) fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("broker running");
        Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .expect("send SIGTERM");
        child.wait().expect("wait for broker")
    }

    /// SIGKILL (no shutdown, no final flush); [`BrokerProcess::restart_stopped`] starts it again.
    pub(crate) fn crash(&mut self) {
        let mut child = self.child.take().expect("broker running");
        child.kill().unwrap();
        let _ = child.wait();
    }

    /// SIGKILL (no shutdown, no final flush) and start again on the same ports and data.
    pub(crate) fn crash_and_restart(&mut self) {
        let mut child = self.child.take().expect("broker running");
        child.kill().unwrap();
        let _ = child.wait();
        self.spawn();
    }

    /// Starts the broker again after [`BrokerProcess::stop`].
    pub(crate) fn restart_stopped(&mut self) {
        assert!(self.child.is_none(), "broker still running");
        self.spawn();
    }

    pub(crate) fn restart(&mut self) {
        let status = self.stop();
        assert!(status.success(), "broker exited with {status} on SIGTERM");
        self.spawn();
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A plain HTTP/1.0 GET on the admin port: (status code, body).
pub(crate) fn admin_get(broker: &BrokerProcess, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(("127.0.0.1", broker.admin_port)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The value of the `/metrics` sample whose name and labels start with `prefix`.
pub(crate) fn metric(broker: &BrokerProcess, prefix: &str) -> Option<f64> {
    let (status, m) = admin_get(broker, "/metrics");
    assert_eq!(status, 200);
    m.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// A `kcat` command running with its own librdkafka (Debian's 2.0.2, the version the
/// compatibility document lists): cargo's `LD_LIBRARY_PATH` for test binaries could otherwise
/// hand it the librdkafka that rdkafka-sys built.
pub(crate) fn kcat_command() -> Command {
    let mut c = Command::new("kcat");
    c.env_remove("LD_LIBRARY_PATH");
    c
}

/// Runs kcat against the broker with `args`, feeding `stdin`; it must succeed.
pub(crate) fn kcat(broker: &BrokerProcess, args: &[&str], stdin: &str) -> Output {
    let out = kcat_output(broker, None, args, stdin);
    assert!(
        out.status.success(),
        "kcat {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs kcat against the broker with `args`, feeding `stdin`, and returns its output whatever
/// its exit status; with `limit`, kcat is ended (`timeout`) once it has run that long.
pub(crate) fn kcat_output(
    broker: &BrokerProcess,
    limit: Option<Duration>,
    args: &[&str],
    stdin: &str,
) -> Output {
    kcat_output_at(&broker.addr(), limit, args, stdin)
}

/// [`kcat_output`] against the listener at `addr`.
pub(crate) fn kcat_output_at(
    addr: &str,
    limit: Option<Duration>,
    args: &[&str],
    stdin: &str,
) -> Output {
    use std::io::Write;
    let mut command = match limit {
        None => kcat_command(),
        Some(limit) => {
            let mut c = Command::new("timeout");
            c.env_remove("LD_LIBRARY_PATH")
                .arg(limit.as_secs().to_string())
                .arg("kcat");
            c
        }
    };
    let mut child = command
        .arg("-b")
        .arg(addr)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kcat is installed (Debian package kcat; .ci/run installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// A child process killed when dropped, so a failing test leaves none behind.
pub(crate) struct KillOnDrop(pub(crate) std::process::Child);

impl KillOnDrop {
    /// SIGKILL now (the test's own crash).
    pub(crate) fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.kill();
    }
}
