//! A network namespace with a veth link to the host, for real network faults: a process started
//! in it (the broker, in the chaos command) is reached over the link, and nftables rules in the
//! namespace drop all or some of the packets on it while every process keeps running. This is
//! what a failing switch or a lossy link does, which no signal to a process can imitate:
//! packets vanish, connections stay open, TCP retransmits. (`tc netem` would also delay, but
//! the kernels these machines run are built without it; nftables is built in.)
//!
//! Needs root (CAP_NET_ADMIN), iproute2's `ip` and `nft`; [`NetNs::create`] says so in one line
//! when they are missing. The addresses come from 198.18.0.0/15, the range RFC 2544 sets
//! aside for benchmark networks, so they cannot shadow a real route. The namespace, and with it
//! the link, is deleted on drop.

use std::net::Ipv4Addr;
use std::process::Command;

use anyhow::{bail, Context};

#[derive(Debug)]
pub struct NetNs {
    pub name: String,
    host_if: String,
    ns_if: String,
    /// The host's end of the link.
    pub host_ip: Ipv4Addr,
    /// The namespace's end: where its processes listen.
    pub ns_ip: Ipv4Addr,
}

/// Runs `ip` with `args`, failing with its stderr.
fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("run ip (iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

impl NetNs {
    /// A namespace named after `tag` and this process, linked to the host.
    pub fn create(tag: &str) -> anyhow::Result<NetNs> {
        let pid = std::process::id();
        // Interface names are at most 15 bytes.
        let short = pid % 100_000;
        let (a, b) = (((pid / 64) % 256) as u8, ((pid % 64) * 4) as u8);
        let ns = NetNs {
            name: format!("{tag}-{pid}"),
            host_if: format!("nh{short}"),
            ns_if: format!("nn{short}"),
            host_ip: Ipv4Addr::new(198, 18, a, b + 1),
            ns_ip: Ipv4Addr::new(198, 18, a, b + 2),
        };
        // A namespace left by a killed run of the same pid would block this one.
        let _ = Command::new("ip").args(["netns", "del", &ns.name]).output();
        ip(&["netns", "add", &ns.name]).context(
            "network faults need root (CAP_NET_ADMIN) and iproute2: cannot create a network namespace",
        )?;
        let host_cidr = format!("{}/30", ns.host_ip);
        let ns_cidr = format!("{}/30", ns.ns_ip);
        let inside = ["netns", "exec", &ns.name, "ip"];
        ip(&[
            "link",
            "add",
            &ns.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &ns.ns_if,
        ])?;
        ip(&["link", "set", &ns.ns_if, "netns", &ns.name])?;
        ip(&["addr", "add", &host_cidr, "dev", &ns.host_if])?;
        ip(&["link", "set", &ns.host_if, "up"])?;
        ip(&[&inside[..], &["addr", "add", &ns_cidr, "dev", &ns.ns_if]].concat())?;
        ip(&[&inside[..], &["link", "set", &ns.ns_if, "up"]].concat())?;
        ip(&[&inside[..], &["link", "set", "lo", "up"]].concat())?;
        Ok(ns)
    }

    /// `percent` of the packets over the link are dropped at random, each way, until
    /// [`NetNs::heal`] (100: every one, connections stay open).
    pub fn lose(&self, percent: u8) -> anyhow::Result<()> {
        let verdict = if percent >= 100 {
            "drop".to_string()
        } else {
            format!("numgen random mod 100 < {percent} drop")
        };
        let rules = format!(
            "table inet chaos {{\n\
               chain input {{ type filter hook input priority 0; policy accept; iifname \"{nif}\" {verdict}; }}\n\
               chain output {{ type filter hook output priority 0; policy accept; oifname \"{nif}\" {verdict}; }}\n\
             }}\n",
            nif = self.ns_if
        );
        // Rules of an earlier fault, if any, are replaced.
        let _ = self.heal();
        let mut nft = Command::new("ip")
            .args(["netns", "exec", &self.name, "nft", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .context("run nft (nftables)")?;
        if let Some(mut stdin) = nft.stdin.take() {
            use std::io::Write;
            stdin.write_all(rules.as_bytes())?;
        }
        let out = nft.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "nft could not load the drop rules: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// Every packet over the link is dropped, both ways (connections stay open).
    pub fn cut(&self) -> anyhow::Result<()> {
        self.lose(100)
    }

    /// The link as it was.
    pub fn heal(&self) -> anyhow::Result<()> {
        ip(&[
            "netns", "exec", &self.name, "nft", "delete", "table", "inet", "chaos",
        ])
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
    }
}
