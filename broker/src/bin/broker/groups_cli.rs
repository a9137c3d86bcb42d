//! `broker groups list|describe <group>`: consumer groups of a running broker, read from its
//! admin port, printed like `kafka-consumer-groups --describe`. (Part of the binary only.)

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{bail, Context};
use broker::group::GroupReport;

fn http_get(admin: &str, path: &str) -> anyhow::Result<(u16, String)> {
    let addr = admin
        .to_socket_addrs()
        .with_context(|| format!("resolve admin address {admin}"))?
        .next()
        .with_context(|| format!("no address for {admin}"))?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("connect to the broker's admin port at {admin}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {admin}\r\n\r\n")?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .context("malformed HTTP answer")?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("malformed HTTP status line")?;
    Ok((status, body.to_string()))
}

fn fetch<T: serde::de::DeserializeOwned>(admin: &str, path: &str) -> anyhow::Result<T> {
    let (status, body) = http_get(admin, path)?;
    if status != 200 {
        bail!("{path}: HTTP {status}: {}", body.trim());
    }
    serde_json::from_str(&body).with_context(|| format!("decode {path}"))
}

/// One line of the `list` table.
fn list_row(c: [&str; 5]) -> String {
    format!(
        "{:<30} {:<20} {:>8} {:>10} {:>10}",
        c[0], c[1], c[2], c[3], c[4]
    )
}

/// One line of the `describe` table.
fn describe_row(c: [&str; 8]) -> String {
    format!(
        "{:<20} {:>9} {:>14} {:>14} {:>8}  {:<40} {:<16} {}",
        c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]
    )
}

pub(crate) fn list(admin: &str) -> anyhow::Result<()> {
    let groups: Vec<GroupReport> = fetch(admin, "/groups")?;
    println!(
        "{}",
        list_row(["GROUP", "STATE", "MEMBERS", "GENERATION", "TOTAL-LAG"])
    );
    for g in groups {
        let lag: i64 = g.partitions.iter().map(|p| p.lag).sum();
        let (members, generation, lag) = (
            g.members.len().to_string(),
            g.generation.to_string(),
            lag.to_string(),
        );
        println!(
            "{}",
            list_row([&g.group, &g.state, &members, &generation, &lag])
        );
    }
    Ok(())
}

pub(crate) fn describe(admin: &str, group: &str) -> anyhow::Result<()> {
    let g: GroupReport = fetch(admin, &format!("/groups/{group}"))?;
    println!(
        "group {} is {} (generation {}, protocol {:?}, {} members)\n",
        g.group,
        g.state,
        g.generation,
        g.protocol,
        g.members.len()
    );
    println!(
        "{}",
        describe_row([
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID"
        ])
    );
    for p in &g.partitions {
        let member = p
            .member_id
            .as_ref()
            .and_then(|id| g.members.iter().find(|m| &m.member_id == id));
        let committed = if p.committed < 0 {
            "-".to_string()
        } else {
            p.committed.to_string()
        };
        println!(
            "{}",
            describe_row([
                &p.topic,
                &p.partition.to_string(),
                &committed,
                &p.log_end_offset.to_string(),
                &p.lag.to_string(),
                member.map_or("-", |m| m.member_id.as_str()),
                member.map_or("-", |m| m.host.as_str()),
                member.map_or("-", |m| m.client_id.as_str()),
            ])
        );
    }
    Ok(())
}
