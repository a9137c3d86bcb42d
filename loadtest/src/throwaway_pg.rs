//! A throwaway PostgreSQL cluster for the demo: `initdb` into a temporary directory, `postgres`
//! on a free loopback port, stopped (`pg_ctl stop -m fast`) and deleted on drop, so Ctrl-C
//! leaves neither a process nor a directory behind.
//!
//! PostgreSQL refuses to run as root; as root the cluster is owned by, and run as, the
//! `postgres` system user (through `runuser`), as Debian's packages set it up.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

#[derive(Debug)]
pub struct ThrowawayPg {
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_user: Option<String>,
    port: u16,
    pub url: String,
}

/// Where PostgreSQL's server binaries are: on PATH, or Debian's /usr/lib/postgresql/<v>/bin.
fn find_bin_dir() -> anyhow::Result<PathBuf> {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return Ok(dir);
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    if let Some(dir) = versions
        .into_iter()
        .rev()
        .find(|d| d.join("initdb").exists())
    {
        return Ok(dir);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").exists() && dir.join("postgres").exists() {
                return Ok(dir);
            }
        }
    }
    bail!("PostgreSQL's server binaries (initdb, postgres) were not found: install PostgreSQL, or set DATABASE_URL")
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl ThrowawayPg {
    pub fn start() -> anyhow::Result<Self> {
        let bin = find_bin_dir()?;
        // SAFETY-free check of the effective user: `id -u` avoids an unsafe libc call.
        let root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        let as_user = root.then(|| "postgres".to_string());
        let dir = tempfile::Builder::new()
            .prefix("seckill-demo-pg-")
            .tempdir()?;
        if let Some(user) = &as_user {
            let ok = Command::new("chown")
                .arg(format!("{user}:"))
                .arg(dir.path())
                .status()?
                .success();
            anyhow::ensure!(ok, "chown of the cluster directory to {user} failed");
        }
        let data = dir.path().join("data");
        let port = free_port()?;
        let pg = ThrowawayPg {
            dir,
            bin,
            as_user,
            port,
            url: format!("postgres://seckill@127.0.0.1:{port}/postgres"),
        };
        pg.run(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                "seckill".as_ref(),
                "--auth=trust".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--no-instructions".as_ref(),
            ],
        )
        .context("initdb")?;
        pg.start_server()?;
        Ok(pg)
    }

    /// Starts the server on its port and waits until it accepts connections.
    pub fn start_server(&self) -> anyhow::Result<()> {
        let data = self.data_dir();
        let log = self.dir.path().join("postgres.log");
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={} -c max_connections=200 -c shared_buffers=256MB",
            self.port,
            self.dir.path().display()
        );
        self.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
                "-o".as_ref(),
                opts.as_ref(),
                "-w".as_ref(),
                "-t".as_ref(),
                "60".as_ref(),
                "start".as_ref(),
            ],
        )
        .with_context(|| format!("start PostgreSQL (log: {})", log.display()))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            anyhow::ensure!(
                Instant::now() < deadline,
                "PostgreSQL did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Stops the server at once (`pg_ctl stop -m immediate`: no clean shutdown, as a crash
    /// would), keeping its data for [`ThrowawayPg::start_server`].
    pub fn kill_server(&self) -> anyhow::Result<()> {
        let data = self.data_dir();
        self.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-m".as_ref(),
                "immediate".as_ref(),
                "-w".as_ref(),
                "stop".as_ref(),
            ],
        )
    }

    fn run(&self, program: &str, args: &[&std::ffi::OsStr]) -> anyhow::Result<()> {
        let exe = self.bin.join(program);
        let mut cmd = match &self.as_user {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        let out = cmd
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .with_context(|| format!("run {}", exe.display()))?;
        if !out.status.success() {
            bail!(
                "{program} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for ThrowawayPg {
    fn drop(&mut self) {
        let data = self.data_dir();
        if let Err(e) = self.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-m".as_ref(),
                "fast".as_ref(),
                "-w".as_ref(),
                "stop".as_ref(),
            ],
        ) {
            eprintln!("stopping the throwaway PostgreSQL: {e}");
        }
    }
}
