//! Rate limiting with GCRA (the generic cell rate algorithm).
//!
//! A quota of `count` per `period` with burst `b` admits `b` requests at once and then one
//! every `period / count`: unlike fixed windows, no boundary lets `2 × count` through. Each
//! key stores one number, its theoretical arrival time (TAT).
//!
//! ```
//! use shieldwall_runtime::rate::{Quota, memory::MemoryStore, RateKey, Ident};
//! use shieldwall_runtime::clock::{Clock, ManualClock};
//!
//! let clock = ManualClock::new();
//! let store = MemoryStore::new(10_000);
//! let quota = Quota::new(5, 60, 5); // 5/min
//! let key = RateKey { route: 0, limit: 0, ident: Ident::Global };
//! let admitted = (0..8).filter(|_| store.check(&key, &quota, clock.now_nanos()).allowed).count();
//! assert_eq!(admitted, 5);
//! ```

pub mod memory;
#[cfg(feature = "redis")]
pub mod redis;

use std::net::IpAddr;
use std::sync::Arc;

/// Whose budget is charged.
///
/// Each kind of credential is its own namespace: the variant is part of the bucket's
/// identity (the memory store hashes it, the Redis store writes a distinct prefix before the
/// value), so no value a client controls — a token's `sub`, a username — can name a bucket
/// of another kind. A token whose subject is `key:abc` spends its own budget, never the API
/// key `abc`'s; a token whose subject equals an API key's owner does not share the owner's
/// per-user budget.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Ident {
    /// Everyone shares one budget.
    Global,
    /// A client address (IPv6 already masked to its prefix).
    Ip(IpAddr),
    /// The subject of a principal authenticated by a bearer token (or built in code).
    Subject(Arc<str>),
    /// An API key, by its public id (`per key` on a key-authenticated request).
    ApiKey(Arc<str>),
    /// The owner of an API key (`per user` on a key-authenticated request).
    KeyOwner(Arc<str>),
    /// A username at a login endpoint: failed logins from every address together.
    Username(Arc<str>),
    /// A username from one client address (IPv6 masked): failed logins from that client.
    UsernameFrom(Arc<str>, IpAddr),
}

/// A bucket: which route, which of its limits, whose budget.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RateKey {
    /// Route index in the app.
    pub route: u32,
    /// Index of the limit within the route's `rate = [...]` list.
    pub limit: u32,
    /// Whose budget.
    pub ident: Ident,
}

/// A quota resolved to nanoseconds (whole microseconds, as the Redis store keeps them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Nanoseconds between two admitted requests at the sustained rate.
    pub emission: u64,
    /// `emission × burst`: how far ahead of now the TAT may run.
    pub tolerance: u64,
    /// Requests per period (for the RateLimit fields).
    pub count: u32,
    /// Period in seconds (for the RateLimit fields).
    pub period_secs: u64,
}

impl Quota {
    /// `count` per `period_secs`, `burst` at once. `count`, `period_secs` and `burst` must be
    /// non-zero (the attribute enforces it at compile time).
    pub fn new(count: u32, period_secs: u64, burst: u32) -> Self {
        let count = count.max(1);
        let period_nanos = period_secs.max(1).saturating_mul(1_000_000_000);
        // Whole microseconds, rounded up: the Redis store counts in microseconds, and the
        // two stores must decide alike (at most 1 µs per request stricter than exact).
        let emission = (period_nanos / u64::from(count)).div_ceil(1_000).max(1) * 1_000;
        Self {
            emission,
            tolerance: emission.saturating_mul(u64::from(burst.max(1))),
            count,
            period_secs: period_secs.max(1),
        }
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request is admitted (and was charged).
    pub allowed: bool,
    /// Requests that could still be admitted right now.
    pub remaining: u32,
    /// Seconds until the budget is whole again (allowed) or until a retry can succeed
    /// (refused). Rounded up.
    pub reset_secs: u64,
}

/// Why a shared store could not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store URL does not parse.
    #[error("the rate store URL is not valid (expected redis://host:port/db)")]
    BadUrl,
    /// The call did not finish within its timeout.
    #[error("the rate store did not answer in time")]
    Timeout,
    /// The store is unreachable or refused the call.
    #[error("the rate store is unavailable")]
    Unavailable,
}

/// What a route does while its shared rate store is unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnOutage {
    /// Refuse with 503 problem+json (default for `login` routes, which check credentials).
    FailClosed,
    /// Enforce the same quotas in this instance's memory (default elsewhere).
    LocalFallback,
}

/// A boxed future, for the object-safe [`RateStore`].
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Where GCRA state lives. Implemented by [`memory::MemoryStore`] and
/// [`redis::RedisStore`]; implement it to keep limits elsewhere and install it with
/// `Shieldwall::rate_store`. The built-in stores are dispatched without boxing; a custom
/// store costs one boxed future per check.
pub trait RateStore: Send + Sync + 'static {
    /// Check and, if admitted, charge one request against the bucket named by `scope`
    /// (stable across instances: `POST /users#0`) and `key.ident`. `now_nanos` is the
    /// app's monotonic clock, for stores that do not have their own.
    fn check<'a>(
        &'a self,
        scope: &'a str,
        key: &'a RateKey,
        quota: &'a Quota,
        now_nanos: u64,
    ) -> BoxFuture<'a, Result<Decision, StoreError>>;

    /// Give back one request that an earlier [`RateStore::check`] of the same bucket
    /// admitted (the token endpoint charges a login before verifying the password, so that
    /// concurrent guesses can never exceed the budget, and refunds it when the login was not
    /// a failure). The default keeps the charge: with a store that cannot refund,
    /// successful logins count against the failed-login budget (stricter, never looser).
    fn refund<'a>(
        &'a self,
        scope: &'a str,
        key: &'a RateKey,
        quota: &'a Quota,
        now_nanos: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let _ = (scope, key, quota, now_nanos);
        Box::pin(std::future::ready(Ok(())))
    }
}

impl RateStore for memory::MemoryStore {
    fn check<'a>(
        &'a self,
        _scope: &'a str,
        key: &'a RateKey,
        quota: &'a Quota,
        now_nanos: u64,
    ) -> BoxFuture<'a, Result<Decision, StoreError>> {
        let d = memory::MemoryStore::check(self, key, quota, now_nanos);
        Box::pin(std::future::ready(Ok(d)))
    }

    fn refund<'a>(
        &'a self,
        _scope: &'a str,
        key: &'a RateKey,
        quota: &'a Quota,
        now_nanos: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        memory::MemoryStore::refund(self, key, quota, now_nanos);
        Box::pin(std::future::ready(Ok(())))
    }
}

#[cfg(feature = "redis")]
impl RateStore for redis::RedisStore {
    fn check<'a>(
        &'a self,
        scope: &'a str,
        key: &'a RateKey,
        quota: &'a Quota,
        _now_nanos: u64,
    ) -> BoxFuture<'a, Result<Decision, StoreError>> {
        Box::pin(redis::RedisStore::check(self, scope, key, quota))
    }

    fn refund<'a>(
        &'a self,
        scope: &'a str,
        key: &'a RateKey,
        quota: &'a Quota,
        _now_nanos: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(redis::RedisStore::refund(self, scope, key, quota))
    }
}

/// Where the app keeps its rate-limit state.
pub(crate) enum Backend {
    /// This process's memory.
    Memory,
    /// Shared through Redis, with the local store as the outage fallback.
    #[cfg(feature = "redis")]
    Redis(redis::RedisStore),
    /// A user-supplied store, with the local store as the outage fallback.
    Custom(std::sync::Arc<dyn RateStore>),
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Memory => f.write_str("Memory"),
            #[cfg(feature = "redis")]
            Self::Redis(r) => r.fmt(f),
            Self::Custom(_) => f.write_str("Custom"),
        }
    }
}

/// GCRA on one stored TAT. Returns the decision and the TAT to store (if admitted).
#[inline]
pub fn gcra(tat: Option<u64>, quota: &Quota, now: u64) -> (Decision, Option<u64>) {
    let tat = tat.unwrap_or(now).max(now);
    // Only a burst spanning centuries (its tolerance saturated at u64::MAX) runs the TAT
    // this far: refuse, rather than wrap around to an empty bucket.
    let Some(new_tat) = tat.checked_add(quota.emission) else {
        let decision = Decision {
            allowed: false,
            remaining: 0,
            reset_secs: ceil_secs(quota.emission).max(1),
        };
        return (decision, None);
    };
    let ahead = new_tat - now;
    if ahead <= quota.tolerance {
        let remaining = (quota.tolerance - ahead) / quota.emission;
        let decision = Decision {
            allowed: true,
            remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
            reset_secs: ceil_secs(ahead),
        };
        (decision, Some(new_tat))
    } else {
        let decision = Decision {
            allowed: false,
            remaining: 0,
            reset_secs: ceil_secs(ahead - quota.tolerance).max(1),
        };
        (decision, None)
    }
}

fn ceil_secs(nanos: u64) -> u64 {
    nanos.div_ceil(1_000_000_000)
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn run(q: &Quota, tat: &mut Option<u64>, now: u64, n: usize) -> usize {
        (0..n)
            .filter(|_| {
                let (d, t) = gcra(*tat, q, now);
                if let Some(t) = t {
                    *tat = Some(t);
                }
                d.allowed
            })
            .count()
    }

    #[test]
    fn burst_then_sustained() {
        let q = Quota::new(5, 60, 5);
        let mut tat = None;
        assert_eq!(run(&q, &mut tat, 100 * S, 10), 5);
        // one more every 12 s
        assert_eq!(run(&q, &mut tat, 111 * S, 10), 0);
        assert_eq!(run(&q, &mut tat, 112 * S, 10), 1);
    }

    #[test]
    fn window_boundary_never_doubles() {
        // N at t=59 and N at t=61 for N/min: a fixed window would admit 2N.
        let q = Quota::new(5, 60, 5);
        let mut tat = None;
        assert_eq!(run(&q, &mut tat, 59 * S, 5), 5);
        assert_eq!(run(&q, &mut tat, 61 * S, 5), 0);
    }

    #[test]
    fn a_burst_beyond_u64_nanoseconds_never_wraps_to_a_fresh_bucket() {
        // 1 per 366 days, burst 4294967295: emission × burst saturates the tolerance, and
        // the TAT ran past u64::MAX after 583 admissions (found by fuzz/fuzz_targets/rate.rs:
        // an overflow panic with overflow checks, a wrapped TAT — a fresh bucket, admitting
        // without end — without).
        let q = Quota::new(1, 366 * 86_400, u32::MAX);
        assert_eq!(q.tolerance, u64::MAX);
        for now in [1, 1_000 * S] {
            let mut tat = None;
            let admitted = run(&q, &mut tat, now, 2_000);
            assert!(admitted > 500 && admitted < 600, "{admitted}");
            let (d, t) = gcra(tat, &q, now);
            assert!(!d.allowed && t.is_none());
            assert!(d.reset_secs >= 1);
        }
    }

    #[test]
    fn retry_after_is_exact() {
        let q = Quota::new(1, 60, 1);
        let (d, t) = gcra(None, &q, 10 * S);
        assert!(d.allowed);
        let (d, _) = gcra(t, &q, 10 * S);
        assert!(!d.allowed);
        assert_eq!(d.reset_secs, 60);
        let (d, _) = gcra(t, &q, 40 * S);
        assert_eq!(d.reset_secs, 30);
    }
}
