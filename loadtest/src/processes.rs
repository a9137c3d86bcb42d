//! The stack as separate processes, from the real binaries (`broker`, `migrate`, `order-api`,
//! `order-worker`): what the chaos command and the crash tests kill with SIGKILL and start
//! again. Each process logs to a file in the stack's directory; a process is killed when its
//! handle is dropped, so a failing run leaves none behind.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// Where the workspace's binaries are: beside the running executable (`target/<profile>/`),
/// or one level up from a test executable (`target/<profile>/deps/`).
pub fn bin_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let mut dir = exe
        .parent()
        .context("executable has no directory")?
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    for b in ["broker", "migrate", "order-api", "order-worker"] {
        if !dir.join(b).exists() {
            bail!(
                "{} is missing: build the binaries first (cargo build --release -p broker -p services --bins, or without --release for a debug chaos)",
                dir.join(b).display()
            );
        }
    }
    Ok(dir)
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// One process of the stack: how to start it, and the running child.
#[derive(Debug)]
pub struct Proc {
    pub name: String,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
    /// The port it listens on, to know it is up.
    pub port: u16,
    /// The address it listens on (loopback, unless it runs in a network namespace).
    host: IpAddr,
    /// The network namespace it runs in (`ip netns exec`), if any.
    netns: Option<String>,
    child: Option<Child>,
    /// How many times it was started.
    pub starts: u32,
}

impl Proc {
    pub fn new(name: &str, program: PathBuf, log_dir: &Path, port: u16) -> Self {
        Proc {
            name: name.into(),
            program,
            args: Vec::new(),
            env: Vec::new(),
            log: log_dir.join(format!("{name}.log")),
            port,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            netns: None,
            child: None,
            starts: 0,
        }
    }

    /// Runs it in network namespace `name`, where it listens on `host` (see `crate::netns`).
    pub fn in_netns(mut self, name: &str, host: Ipv4Addr) -> Self {
        self.netns = Some(name.to_string());
        self.host = IpAddr::V4(host);
        self
    }

    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    pub fn env(mut self, k: &str, v: impl Into<String>) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }

    /// Starts it and waits (up to `wait`) until its port accepts connections.
    pub fn start(&mut self, wait: Duration) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        // `ip netns exec` enters the namespace and execs the program: the child is the program.
        let mut command = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&self.program);
                c
            }
            None => Command::new(&self.program),
        };
        let child = command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("RUST_LOG", "info,librdkafka=warn,rdkafka=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {}", self.program.display()))?;
        self.child = Some(child);
        self.starts += 1;
        let deadline = Instant::now() + wait;
        while TcpStream::connect(self.addr()).is_err() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!(
                    "{} exited with {status} at start; see {}",
                    self.name,
                    self.log.display()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not listen on {} within {wait:?}; see {}",
                    self.name,
                    self.port,
                    self.log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// SIGKILL: no shutdown, no flush, no LeaveGroup: a crash.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, and its exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        c.wait().ok()
    }

    /// Stops (SIGSTOP) or resumes (SIGCONT) it: a process that hangs without dying.
    pub fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(c.id().to_string())
                .status();
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs a binary to completion (`migrate`), failing with its log.
pub fn run_once(program: &Path, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<()> {
    let out = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .with_context(|| format!("run {}", program.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed ({}): {}",
            program.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
