//! Failpoints: the places where a broken build would break a promise to a client, switched on
//! only in a build with `--features failpoints` and then by the `FAILPOINTS` environment
//! variable in the `fail` crate's syntax (`buy-ack-without-enqueue=5%return`). They exist so the
//! chaos command can be shown to fail against each broken promise (loadtest/tests/chaos.rs);
//! without the feature, [`fires`] is `false` at compile time and costs nothing.

/// `POST /buy` answers 202 without enqueueing: a 202 that never becomes an order.
pub const ACK_WITHOUT_ENQUEUE: &str = "buy-ack-without-enqueue";
/// An enqueue whose outcome is unknown is answered 503 `not_accepted` ("certainly nothing was
/// queued"), though the message may still be written.
pub const UNKNOWN_AS_NOT_ACCEPTED: &str = "enqueue-unknown-as-not-accepted";
/// The order worker commits a batch's offsets without applying its buys: accepted orders lost.
pub const COMMIT_WITHOUT_APPLY: &str = "worker-commit-without-apply";

/// Whether failpoint `name` fires now.
pub fn fires(name: &str) -> bool {
    #[cfg(feature = "failpoints")]
    {
        fail::eval(name, |_| ()).is_some()
    }
    #[cfg(not(feature = "failpoints"))]
    {
        let _ = name;
        false
    }
}

/// Reads `FAILPOINTS` once at the start of a binary; keep the guard for the process's life.
#[must_use]
pub fn from_env() -> Guard {
    #[cfg(feature = "failpoints")]
    {
        if std::env::var_os("FAILPOINTS").is_some() {
            tracing::warn!(
                failpoints = %std::env::var("FAILPOINTS").unwrap_or_default(),
                "failpoints are on: this process breaks promises on purpose"
            );
        }
        Guard(Some(fail::FailScenario::setup()))
    }
    #[cfg(not(feature = "failpoints"))]
    {
        Guard(None)
    }
}

/// Keeps the failpoints configured (see [`from_env`]).
pub struct Guard(#[allow(dead_code)] Option<GuardInner>);

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("failpoints::Guard")
    }
}

#[cfg(feature = "failpoints")]
type GuardInner = fail::FailScenario<'static>;
#[cfg(not(feature = "failpoints"))]
type GuardInner = ();
