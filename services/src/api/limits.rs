//! Rate limits on `/buy`: per user, per client address, and a global ceiling per instance, each a
//! GCRA token bucket (the `governor` crate): `rate` requests per second with bursts of up to
//! `burst`. A request over any limit is answered 429 with `Retry-After` and nothing is enqueued,
//! before any other work (decoding aside), so a script hammering the API costs it little.
//!
//! A script that fires thousands of requests per second for one user gets what a person would;
//! the per-address limit catches many users from one address (behind a proxy, the address is
//! the proxy's unless `trust_forwarded_for` takes the client's from `X-Forwarded-For`).

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};

use super::AppState;

/// `rate` per second, bursts of `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub rate: u32,
    pub burst: u32,
}

impl Limit {
    fn quota(self) -> Option<Quota> {
        let rate = NonZeroU32::new(self.rate)?;
        let burst = NonZeroU32::new(self.burst.max(1))?;
        Some(Quota::per_second(rate).allow_burst(burst))
    }

    /// "RATE/BURST" or "RATE" (burst = rate) or "0"/"off" (no limit).
    pub fn parse(s: &str) -> Result<Option<Limit>, String> {
        let s = s.trim();
        if s == "0" || s.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let (rate, burst) = match s.split_once('/') {
            Some((r, b)) => (r, b),
            None => (s, s),
        };
        let num = |v: &str| {
            v.trim()
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=10_000_000).contains(n))
                .ok_or_else(|| {
                    format!("{s:?}: a limit is RATE/BURST per second (1..=10000000), or off")
                })
        };
        Ok(Some(Limit {
            rate: num(rate)?,
            burst: num(burst)?,
        }))
    }
}

/// The three limits of an API instance (`None`: not limited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub per_user: Option<Limit>,
    pub per_address: Option<Limit>,
    pub global: Option<Limit>,
    /// Order status reads (`GET /orders/{id}`) per client address, a bucket of their own so
    /// polling never eats into buying.
    pub status_per_address: Option<Limit>,
}

impl Default for RateLimits {
    /// A person clicking "buy" does not need more than a few a second; one address may be an
    /// office behind NAT. The global ceiling is off: size it to what one instance can take.
    fn default() -> Self {
        RateLimits {
            per_user: Some(Limit { rate: 5, burst: 10 }),
            per_address: Some(Limit {
                rate: 1000,
                burst: 2000,
            }),
            global: None,
            // A buyer's page polls about once a second; an office behind NAT has many buyers.
            status_per_address: Some(Limit {
                rate: 1000,
                burst: 2000,
            }),
        }
    }
}

impl RateLimits {
    /// No limit at all (benchmarks and the demo, whose load generator is one user-less address).
    pub fn off() -> Self {
        RateLimits {
            per_user: None,
            per_address: None,
            global: None,
            status_per_address: None,
        }
    }
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    User,
    Address,
    Global,
    StatusAddress,
}

impl Limited {
    pub fn as_str(self) -> &'static str {
        match self {
            Limited::User => "user",
            Limited::Address => "address",
            Limited::Global => "global",
            Limited::StatusAddress => "status_address",
        }
    }
}

/// The limiters of one instance.
#[derive(Debug)]
pub struct Limiters {
    /// Made once: making a clock calibrates it (CPUID and all), far too slow for every request.
    clock: DefaultClock,
    per_user: Option<DefaultKeyedRateLimiter<i64>>,
    per_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    global: Option<DefaultDirectRateLimiter>,
    status_per_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

impl Limiters {
    pub fn new(limits: RateLimits) -> Self {
        Limiters {
            clock: DefaultClock::default(),
            per_user: limits
                .per_user
                .and_then(Limit::quota)
                .map(DefaultKeyedRateLimiter::keyed),
            per_address: limits
                .per_address
                .and_then(Limit::quota)
                .map(DefaultKeyedRateLimiter::keyed),
            global: limits
                .global
                .and_then(Limit::quota)
                .map(DefaultDirectRateLimiter::direct),
            status_per_address: limits
                .status_per_address
                .and_then(Limit::quota)
                .map(DefaultKeyedRateLimiter::keyed),
        }
    }

    /// Takes one request of `user` from `address`; the limit it hits and how long until it
    /// would pass.
    pub fn check(&self, user: i64, address: Option<IpAddr>) -> Result<(), (Limited, Duration)> {
        let wait = |not_until: governor::NotUntil<_>| not_until.wait_time_from(self.clock.now());
        if let Some(l) = &self.global {
            l.check().map_err(|n| (Limited::Global, wait(n)))?;
        }
        if let (Some(l), Some(a)) = (&self.per_address, address) {
            l.check_key(&a).map_err(|n| (Limited::Address, wait(n)))?;
        }
        if let Some(l) = &self.per_user {
            l.check_key(&user).map_err(|n| (Limited::User, wait(n)))?;
        }
        Ok(())
    }

    /// Takes one status read from `address`, or says how long until it would pass.
    pub fn check_status(&self, address: Option<IpAddr>) -> Result<(), (Limited, Duration)> {
        if let (Some(l), Some(a)) = (&self.status_per_address, address) {
            l.check_key(&a)
                .map_err(|n| (Limited::StatusAddress, n.wait_time_from(self.clock.now())))?;
        }
        Ok(())
    }

    /// Forgets the keys whose buckets are full again, so memory follows the active users, not
    /// every user ever seen.
    pub fn shrink(&self) {
        if let Some(l) = &self.per_user {
            l.retain_recent();
            l.shrink_to_fit();
        }
        for l in [&self.per_address, &self.status_per_address]
            .into_iter()
            .flatten()
        {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

/// The address a request comes from, for the per-address limit: the peer of the connection, or,
/// when the API sits behind a proxy it trusts (`trust_forwarded_for`), the last address in
/// `X-Forwarded-For`: the one that proxy appended. Earlier entries are the client's to write, so
/// they are never believed. `None` where neither is known (a router driven without a socket).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

impl ClientAddr {
    pub fn from_parts(parts: &Parts, trust_forwarded_for: bool) -> ClientAddr {
        if trust_forwarded_for {
            // Only the very last entry: if it does not parse, an earlier one (the client's own
            // writing) is not taken instead.
            let forwarded = parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .next_back()
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|a| a.trim().parse::<IpAddr>().ok());
            if forwarded.is_some() {
                return ClientAddr(forwarded);
            }
        }
        ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        )
    }
}

impl FromRequestParts<Arc<AppState>> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr::from_parts(
            parts,
            state.config.trust_forwarded_for,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_and_refuse_nonsense() {
        assert_eq!(Limit::parse("5/10"), Ok(Some(Limit { rate: 5, burst: 10 })));
        assert_eq!(Limit::parse("7"), Ok(Some(Limit { rate: 7, burst: 7 })));
        assert_eq!(Limit::parse("off"), Ok(None));
        assert_eq!(Limit::parse("0"), Ok(None));
        for bad in ["", "x", "5/0", "-1", "5/10/2", "99999999999"] {
            assert!(Limit::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_user_gets_the_burst_then_waits() {
        let l = Limiters::new(RateLimits {
            per_user: Some(Limit { rate: 1, burst: 3 }),
            per_address: None,
            global: None,
            status_per_address: None,
        });
        for _ in 0..3 {
            assert!(l.check(7, None).is_ok());
        }
        let (which, wait) = l.check(7, None).unwrap_err();
        assert_eq!(which, Limited::User);
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        // Another user is not affected.
        assert!(l.check(8, None).is_ok());
    }

    #[test]
    fn only_the_address_the_trusted_proxy_appended_counts() {
        let req = axum::http::Request::builder()
            .header("x-forwarded-for", "6.6.6.6, 10.0.0.7")
            .extension(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 4000))))
            .body(())
            .unwrap();
        let (parts, ()) = req.into_parts();
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert_eq!(ClientAddr::from_parts(&parts, true).0, ip("10.0.0.7"));
        assert_eq!(ClientAddr::from_parts(&parts, false).0, ip("127.0.0.1"));
    }
}
