//! The live dashboard: `GET /dashboard` (a page served from the binary, no network access
//! needed), its assets, and `/dashboard/events`, a stream of [`tick::Tick`]s every half second.
//!
//! Whatever the number of viewers, one task builds each tick ([`collector`]) with at most one
//! database statement and one look at the queue ([`queue_view`]), and every viewer gets the
//! same serialized JSON through a `watch` channel; with no viewer it reads nothing. The request
//! path only bumps atomic counters ([`counters`]).
//!
//! The page (`index.html`, `dashboard.js`, `dashboard.css`) draws with Chart.js 4.6.1, vendored
//! unmodified from npm as `chart.umd.js` with its licence (`chart.js.LICENSE.md`).

pub mod collector;
pub mod counters;
pub mod queue_view;
pub mod tick;

pub use collector::Dashboard;

/// The page and its assets, compiled in: (name, content type, body).
pub const ASSETS: [(&str, &str, &str); 4] = [
    (
        "dashboard.js",
        "text/javascript; charset=utf-8",
        include_str!("dashboard.js"),
    ),
    (
        "dashboard.css",
        "text/css; charset=utf-8",
        include_str!("dashboard.css"),
    ),
    (
        "chart.umd.js",
        "text/javascript; charset=utf-8",
        include_str!("chart.umd.js"),
    ),
    (
        "chart.js.LICENSE.md",
        "text/plain; charset=utf-8",
        include_str!("chart.js.LICENSE.md"),
    ),
];

pub const PAGE: &str = include_str!("index.html");
