//! What the clients saw, held to the promises (the database side is `loadtest::verify`):
//! - every answer is a documented one, naming the key's own request;
//! - no 503 comes later than the enqueue timeout + 100 ms;
//! - each fault landed while requests were in flight, and the run made progress after the last;
//! - after the broker came back, every API instance accepted again and every worker committed
//!   again within the recovery limit;
//! - the status poller read enough statuses, every one a 200 with a documented status.

use std::time::Duration;

use loadtest::answers::BuyAnswer;

use crate::faults::Window;
use crate::shoppers::{Polls, Request};

/// The figures behind the verdict, for the table.
#[derive(Debug, Default)]
pub(crate) struct ClientSide {
    pub(crate) attempts: usize,
    pub(crate) by_answer: std::collections::BTreeMap<&'static str, usize>,
    pub(crate) slowest_503: Duration,
    /// Per fault: attempts in flight at some moment of it (sent before it ended, answered after
    /// it began).
    pub(crate) in_flight: Vec<usize>,
    /// Attempts sent after the last fault ended that got a definite answer.
    pub(crate) progress_after: usize,
    /// Per broker comeback, per API instance: time to its first 202 for a buy sent after it.
    pub(crate) apis_back: Vec<Vec<Option<Duration>>>,
    pub(crate) failures: Vec<String>,
}

pub(crate) struct Limits {
    pub(crate) enqueue_timeout: Duration,
    pub(crate) recovery: Duration,
    pub(crate) min_polls: u64,
}

pub(crate) fn judge(
    requests: &[Request],
    windows: &[Window],
    polls: &Polls,
    apis: usize,
    limits: &Limits,
) -> ClientSide {
    let mut c = ClientSide::default();
    let attempts = || requests.iter().flat_map(|r| r.attempts.iter());
    let mut undocumented = Vec::new();
    for a in attempts() {
        c.attempts += 1;
        match &a.answer {
            Ok(answer) => {
                *c.by_answer.entry(answer.label()).or_default() += 1;
                if matches!(answer, BuyAnswer::NotAccepted | BuyAnswer::OutcomeUnknown) {
                    c.slowest_503 = c.slowest_503.max(a.answered.saturating_sub(a.sent));
                }
            }
            Err(what) => undocumented.push(what.clone()),
        }
    }
    if !undocumented.is_empty() {
        c.failures.push(format!(
            "{} answers the API does not document, e.g. {}",
            undocumented.len(),
            examples(&undocumented)
        ));
    }
    let ceiling = limits.enqueue_timeout + Duration::from_millis(100);
    if c.slowest_503 > ceiling {
        c.failures.push(format!(
            "a 503 came after {} ms, later than the enqueue timeout + 100 ms ({} ms)",
            c.slowest_503.as_millis(),
            ceiling.as_millis()
        ));
    }

    for w in windows {
        let n = attempts()
            .filter(|a| a.sent <= w.to && a.answered >= w.from)
            .count();
        c.in_flight.push(n);
        if n == 0 {
            c.failures.push(format!(
                "{}: no request was in flight during it (the fault hit an idle system)",
                w.what
            ));
        }
        if w.broker_back {
            let mut per_api = Vec::new();
            for api in 0..apis {
                let back = attempts()
                    .filter(|a| a.api == api && a.sent >= w.to)
                    .filter(|a| a.answer == Ok(BuyAnswer::Accepted))
                    .map(|a| a.answered - w.to)
                    .min();
                c.failures.extend(late(
                    &format!("api-{api} (first 202)"),
                    back,
                    &w.what,
                    limits.recovery,
                ));
                per_api.push(back);
            }
            c.apis_back.push(per_api);
            for (i, back) in w.workers_back.iter().enumerate() {
                c.failures.extend(late(
                    &format!("worker-{i} (first commit, watched for 30 s)"),
                    *back,
                    &w.what,
                    limits.recovery,
                ));
            }
        }
    }
    if let Some(last) = windows.iter().map(|w| w.to).max() {
        c.progress_after = attempts()
            .filter(|a| a.sent > last)
            .filter(|a| matches!(&a.answer, Ok(x) if x.is_definite()))
            .count();
        if c.progress_after == 0 {
            c.failures.push(
                "no buy sent after the last fault got a definite answer: the burst ended before \
                 the faults did, or the system never recovered"
                    .into(),
            );
        }
    }

    if polls.answered < limits.min_polls {
        c.failures.push(format!(
            "only {} status reads answered (at least {} needed to mean anything)",
            polls.answered, limits.min_polls
        ));
    }
    if !polls.wrong.is_empty() {
        c.failures.push(format!(
            "{} status reads of accepted buys were wrong, e.g. {}",
            polls.wrong.len(),
            examples(&polls.wrong)
        ));
    }
    c
}

/// The first three of `what`, for a failure line.
fn examples(what: &[String]) -> String {
    what.iter().take(3).cloned().collect::<Vec<_>>().join(" | ")
}

/// A failure if a part (`who`) came back later than `limit` after `fault`, or not at all.
fn late(who: &str, back: Option<Duration>, fault: &str, limit: Duration) -> Option<String> {
    match back {
        Some(d) if d > limit => Some(format!(
            "{who} was back {} ms after the broker was ({fault}), over the {} ms limit",
            d.as_millis(),
            limit.as_millis()
        )),
        Some(_) => None,
        None => Some(format!(
            "{who} was never back after the broker was ({fault})"
        )),
    }
}
