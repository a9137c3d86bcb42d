//! The faults of a scenario, applied at a set time inside the burst, each recorded as a window
//! (from the moment it struck to the moment the part was back), so the verdict can show that it
//! landed while requests were in flight and that the run made progress after it. After the
//! broker comes back, each order worker's recovery is measured: the time until it commits its
//! first batch again (its `order_worker_batches_total` goes up).

use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use loadtest::netns::NetNs;
use loadtest::processes::Proc;
use loadtest::throwaway_pg::ThrowawayPg;

use crate::shoppers::Clock;
use crate::stack::Stack;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    KillBroker,
    KillApi,
    KillWorker,
    StopPostgres,
    StallBroker,
    /// Every packet between the broker and the rest dropped for 2 s.
    CutBrokerLink,
    /// 30% of the packets between the broker and the rest dropped at random, for 3 s.
    LossyBrokerLink,
}

impl Fault {
    pub(crate) fn is_network(self) -> bool {
        matches!(self, Fault::CutBrokerLink | Fault::LossyBrokerLink)
    }
}

pub(crate) fn scenario(name: &str) -> anyhow::Result<Vec<Fault>> {
    Ok(match name {
        "broker" => vec![Fault::KillBroker],
        "api" => vec![Fault::KillApi],
        "worker" => vec![Fault::KillWorker],
        "postgres" => vec![Fault::StopPostgres],
        "stall" => vec![Fault::StallBroker],
        "net-cut" => vec![Fault::CutBrokerLink],
        "net-loss" => vec![Fault::LossyBrokerLink],
        "all" => vec![
            Fault::KillBroker,
            Fault::KillApi,
            Fault::KillWorker,
            Fault::StopPostgres,
        ],
        other => bail!("unknown scenario {other:?}"),
    })
}

/// One fault as it happened.
#[derive(Debug, Clone)]
pub(crate) struct Window {
    pub(crate) what: String,
    pub(crate) from: Duration,
    /// When the part was back (restarted and listening, resumed, or started again).
    pub(crate) to: Duration,
    /// The broker (or the link to it) came back at `to`: the APIs' and workers' recovery is
    /// measured from it.
    pub(crate) broker_back: bool,
    /// Per worker: time from `to` to its first committed batch (`None`: none within 30 s).
    pub(crate) workers_back: Vec<Option<Duration>>,
}

/// Applies `faults` one after another, the first at `at` into the burst.
pub(crate) async fn inject(
    stack: Arc<tokio::sync::Mutex<Stack>>,
    pg: Option<Arc<ThrowawayPg>>,
    net: Option<Arc<NetNs>>,
    faults: Vec<Fault>,
    clock: Clock,
    at: Duration,
) -> anyhow::Result<Vec<Window>> {
    tokio::time::sleep(at.saturating_sub(clock.now())).await;
    let mut windows: Vec<Window> = Vec::new();
    let mut recoveries = Vec::new();
    for f in faults {
        let mut s = stack.lock().await;
        let from = clock.now();
        let (what, broker_back) = match f {
            Fault::KillBroker => {
                kill_and_restart(&mut s.broker, 1000).await?;
                ("broker SIGKILL, restarted after 1 s".to_string(), true)
            }
            Fault::KillApi => {
                kill_and_restart(&mut s.apis[0], 1000).await?;
                ("api-0 SIGKILL, restarted after 1 s".to_string(), false)
            }
            Fault::KillWorker => {
                kill_and_restart(&mut s.workers[0], 500).await?;
                ("worker-0 SIGKILL, restarted after 0.5 s".to_string(), false)
            }
            Fault::StopPostgres => match &pg {
                Some(pg) => {
                    pg.kill_server()?;
                    tokio::time::sleep(Duration::from_millis(2000)).await;
                    tokio::task::block_in_place(|| pg.start_server())?;
                    ("PostgreSQL stopped (immediate) for 2 s".to_string(), false)
                }
                None => bail!(
                    "the postgres scenario stops the throwaway cluster: run it without --database-url"
                ),
            },
            Fault::CutBrokerLink | Fault::LossyBrokerLink => {
                let Some(net) = &net else {
                    bail!("a network fault without the broker's network namespace");
                };
                let (hold, what) = if f == Fault::CutBrokerLink {
                    net.cut()?;
                    (2000, "broker link cut (every packet dropped) for 2 s")
                } else {
                    net.lose(30)?;
                    (3000, "broker link losing 30% of its packets for 3 s")
                };
                tokio::time::sleep(Duration::from_millis(hold)).await;
                net.heal()?;
                (what.to_string(), f == Fault::CutBrokerLink)
            }
            Fault::StallBroker => {
                s.broker.signal("STOP");
                tokio::time::sleep(Duration::from_millis(3500)).await;
                s.broker.signal("CONT");
                ("broker frozen (SIGSTOP) for 3.5 s".to_string(), true)
            }
        };
        let to = clock.now();
        let worker_addrs: Vec<_> = s.workers.iter().map(|w| w.addr()).collect();
        drop(s);
        // Measured in the background: the next fault does not wait for the workers.
        if broker_back {
            let client = reqwest::Client::new();
            let waits = worker_addrs
                .into_iter()
                .map(|addr| {
                    tokio::spawn(first_batch_after(
                        client.clone(),
                        format!("http://{addr}/metrics"),
                    ))
                })
                .collect::<Vec<_>>();
            recoveries.push((windows.len(), waits));
        }
        windows.push(Window {
            what,
            from,
            to,
            broker_back,
            workers_back: Vec::new(),
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for (i, waits) in recoveries {
        for w in waits {
            windows[i].workers_back.push(w.await.ok().flatten());
        }
    }
    Ok(windows)
}

/// SIGKILL, `down_ms` without the process, then the same process started again.
async fn kill_and_restart(p: &mut Proc, down_ms: u64) -> anyhow::Result<()> {
    p.kill9();
    tokio::time::sleep(Duration::from_millis(down_ms)).await;
    tokio::task::block_in_place(|| p.start(Duration::from_secs(30)))
}

/// Time until the worker at `metrics` commits a batch (its batch counter rises), from now.
async fn first_batch_after(client: reqwest::Client, metrics: String) -> Option<Duration> {
    let started = std::time::Instant::now();
    let mut baseline = None;
    while started.elapsed() < Duration::from_secs(30) {
        if let Some(n) = batches(&client, &metrics).await {
            match baseline {
                None => baseline = Some(n),
                Some(b) if n > b => return Some(started.elapsed()),
                Some(_) => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

async fn batches(client: &reqwest::Client, metrics: &str) -> Option<u64> {
    let text = client.get(metrics).send().await.ok()?.text().await.ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("order_worker_batches_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}
