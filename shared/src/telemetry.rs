//! Tracing set-up shared by every binary: logs to stderr, filtered by `RUST_LOG` (default
//! `info`).

/// Installs the global subscriber at `info`; a second call (tests, the demo) is a no-op.
pub fn init_tracing() {
    init_tracing_or("info");
}

/// Installs the global subscriber with `default` as the filter when `RUST_LOG` is unset (the
/// perf tools and the demo keep their own output readable with `warn` or `error`).
pub fn init_tracing_or(default: &str) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default.into()),
        )
        .with_writer(std::io::stderr)
        .try_init();
}
