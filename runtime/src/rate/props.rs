//! Property tests of rate limiting, on a manual clock.
//!
//! The memory store is checked against a reference model written the other way round:
//! the continuous-state leaky bucket of ITU-T I.371 (a counter and the time it was last
//! drained), where the store keeps GCRA's theoretical arrival time. The two formulations
//! are equivalent on paper; these tests check that the code agrees, decision by decision,
//! including the `remaining` and `reset` values that become the `RateLimit` and
//! `Retry-After` fields. Then properties that need no model: no window ever admits more
//! than the quota allows, and a refusal's `Retry-After` is honest. Finally the Redis Lua
//! script, run on a manual clock through its test time source, decides exactly as the
//! memory store does on the same sequences.

use std::collections::HashMap;
use std::sync::Arc;

use proptest::prelude::*;

use super::memory::MemoryStore;
use super::{Decision, Ident, Quota, RateKey};

const S: u64 = 1_000_000_000;

/// The continuous-state leaky bucket: `level` nanoseconds of work queued at `at`.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    level: u64,
    at: u64,
}

impl Bucket {
    fn drained(&self, now: u64) -> u64 {
        self.level.saturating_sub(now.saturating_sub(self.at))
    }

    fn check(&mut self, q: &Quota, now: u64) -> Decision {
        let level = self.drained(now);
        let after = level + q.emission;
        if after <= q.tolerance {
            self.level = after;
            self.at = now;
            Decision {
                allowed: true,
                remaining: u32::try_from((q.tolerance - after) / q.emission).unwrap_or(u32::MAX),
                reset_secs: after.div_ceil(S),
            }
        } else {
            Decision {
                allowed: false,
                remaining: 0,
                reset_secs: (after - q.tolerance).div_ceil(S).max(1),
            }
        }
    }

    fn refund(&mut self, q: &Quota, now: u64) {
        self.level = self.drained(now).saturating_sub(q.emission);
        self.at = now;
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// Check `key` under quota `quota` (indexes into the case's lists).
    Check { key: usize, quota: usize },
    /// Refund one request of `key` under `quota`.
    Refund { key: usize, quota: usize },
    /// Move the clock forward.
    Step(u64),
}

fn quota() -> impl Strategy<Value = Quota> {
    // Periods from 1 s to a day, counts that do and do not divide them, bursts below and
    // above the count.
    (
        1u32..=200,
        prop::sample::select(&[1u64, 7, 10, 60, 3600, 86_400][..]),
        1u32..=300,
    )
        .prop_map(|(count, period, burst)| Quota::new(count, period, burst))
}

fn op(keys: usize, quotas: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..keys, 0..quotas).prop_map(|(key, quota)| Op::Check { key, quota }),
        1 => (0..keys, 0..quotas).prop_map(|(key, quota)| Op::Refund { key, quota }),
        // Steps from a nanosecond to hours, weighted to the small ones where edges are.
        3 => prop_oneof![0u64..1_000, 0u64..S, 0u64..120 * S, 0u64..7200 * S].prop_map(Op::Step),
    ]
}

fn case() -> impl Strategy<Value = (Vec<Quota>, Vec<Op>)> {
    prop::collection::vec(quota(), 1..4).prop_flat_map(|quotas| {
        let n = quotas.len();
        (Just(quotas), prop::collection::vec(op(5, n), 1..300))
    })
}

fn key(i: usize, quota: usize) -> RateKey {
    // One bucket per (key, quota) pair: a store keys a bucket by route and limit too.
    RateKey {
        route: 7,
        limit: quota as u32,
        ident: match i {
            0 => Ident::Global,
            1 => Ident::Ip([10, 0, 0, 1].into()),
            2 => Ident::Subject(Arc::from("alice")),
            3 => Ident::ApiKey(Arc::from("alice")),
            _ => Ident::Username(Arc::from("alice")),
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Same admit/deny, same `remaining` and `reset` as the reference, on every step.
    #[test]
    fn memory_store_matches_the_leaky_bucket((quotas, ops) in case()) {
        let store = MemoryStore::new(100_000);
        let mut model: HashMap<(usize, usize), Bucket> = HashMap::new();
        let mut now = S;
        for op in ops {
            match op {
                Op::Step(d) => now += d,
                Op::Check { key: k, quota: q } => {
                    let got = store.check(&key(k, q), &quotas[q], now);
                    let want = model.entry((k, q)).or_default().check(&quotas[q], now);
                    prop_assert_eq!(got, want, "key {} quota {:?} at {}", k, quotas[q], now);
                }
                Op::Refund { key: k, quota: q } => {
                    store.refund(&key(k, q), &quotas[q], now);
                    model.entry((k, q)).or_default().refund(&quotas[q], now);
                }
            }
        }
    }

    /// Whatever the timing, a window of length `w` admits at most `burst + w / emission`
    /// requests (GCRA's bound: no fixed-window boundary lets a double quota through), and
    /// a full burst is admitted from a fresh key.
    #[test]
    fn no_window_admits_more_than_the_quota(
        q in quota(),
        steps in prop::collection::vec(prop_oneof![Just(0u64), 0u64..S, 0u64..60 * S], 1..400),
    ) {
        let store = MemoryStore::new(1_000);
        let k = key(2, 0);
        let mut now = 5 * S;
        let mut admitted: Vec<u64> = Vec::new();
        for d in steps {
            now += d;
            if store.check(&k, &q, now).allowed {
                admitted.push(now);
            }
        }
        let burst = q.tolerance / q.emission;
        for (i, start) in admitted.iter().enumerate() {
            for (j, end) in admitted.iter().enumerate().skip(i) {
                let in_window = (j - i + 1) as u64;
                let bound = burst + (end - start) / q.emission;
                prop_assert!(
                    in_window <= bound,
                    "{} admitted in {} ns; burst {} emission {}",
                    in_window, end - start, burst, q.emission
                );
            }
        }
        let fresh = key(4, 0);
        let t = now + 1;
        let first_burst = (0..burst + 5).filter(|_| store.check(&fresh, &q, t).allowed).count();
        prop_assert_eq!(first_burst as u64, burst);
    }

    /// A refusal's `reset` (the `Retry-After` value) is honest: retrying that many seconds
    /// later succeeds, and a whole second earlier would still have been refused.
    #[test]
    fn retry_after_is_honest(q in quota(), extra in 0u32..400, wait in 0u64..5 * S) {
        let store = MemoryStore::new(1_000);
        let k = key(1, 0);
        let now = 3 * S;
        for _ in 0..(q.tolerance / q.emission) as u32 + extra {
            store.check(&k, &q, now);
        }
        let later = now + wait;
        let d = store.check(&k, &q, later);
        if !d.allowed {
            prop_assert!(d.reset_secs >= 1);
            if d.reset_secs > 1 {
                let probe = MemoryStore::new(1_000);
                for _ in 0..(q.tolerance / q.emission) as u32 + extra {
                    probe.check(&k, &q, now);
                }
                prop_assert!(
                    !probe.check(&k, &q, later + (d.reset_secs - 1) * S - 1).allowed,
                    "refused at {}s: one second earlier than Retry-After must still be refused",
                    d.reset_secs
                );
            }
            prop_assert!(store.check(&k, &q, later + d.reset_secs * S).allowed);
        } else {
            // Admitted: `reset` is when the budget is whole again.
            let whole = later + d.reset_secs * S;
            let again = (0..q.tolerance / q.emission + 2)
                .filter(|_| store.check(&k, &q, whole).allowed)
                .count();
            prop_assert_eq!(again as u64, q.tolerance / q.emission);
        }
    }

    /// A store with a small capacity is never looser than the model: every admission it
    /// makes, the model makes too; it only refuses more (new keys while full of active
    /// ones), and then with `Retry-After: 1`.
    #[test]
    fn a_full_store_only_refuses_more((quotas, ops) in case(), cap in 64usize..200) {
        let store = MemoryStore::new(cap);
        let mut model: HashMap<(usize, u32, usize), Bucket> = HashMap::new();
        let mut now = S;
        for (n, op) in ops.into_iter().enumerate() {
            match op {
                Op::Step(d) => now += d,
                Op::Refund { .. } => {}
                Op::Check { key: k, quota: q } => {
                    // Many distinct subjects: enough to fill small shards.
                    let who = (n % 97) as u32;
                    let rk = RateKey { route: who, ..key(k, q) };
                    let got = store.check(&rk, &quotas[q], now);
                    let bucket = model.entry((k, who, q)).or_default();
                    let mut trial = *bucket;
                    let want = trial.check(&quotas[q], now);
                    if got.allowed {
                        prop_assert!(want.allowed, "the store admitted what the model refuses");
                        prop_assert_eq!(got, want);
                        *bucket = trial;
                    } else if want.allowed {
                        prop_assert_eq!(got.reset_secs, 1, "a capacity refusal says retry in 1 s");
                    } else {
                        prop_assert_eq!(got, want);
                    }
                }
            }
        }
        prop_assert!(store.len() <= cap.max(64));
    }
}

#[cfg(feature = "redis")]
mod redis {
    //! The Lua script against the memory store. Needs `SHIELDWALL_TEST_REDIS_URL`; skipped
    //! without it unless `SHIELDWALL_REQUIRE_REDIS` is set (CI sets both).

    use super::*;
    use crate::rate::redis::RedisStore;

    fn store() -> Option<RedisStore> {
        match std::env::var("SHIELDWALL_TEST_REDIS_URL") {
            Ok(url) => Some(
                RedisStore::new(&url)
                    .expect("SHIELDWALL_TEST_REDIS_URL parses")
                    .timeout(std::time::Duration::from_secs(5))
                    .prefix(format!("shieldwall:props:{}:", std::process::id())),
            ),
            Err(_) => {
                assert!(
                    std::env::var_os("SHIELDWALL_REQUIRE_REDIS").is_none(),
                    "SHIELDWALL_REQUIRE_REDIS is set but SHIELDWALL_TEST_REDIS_URL is not"
                );
                eprintln!("skipped: set SHIELDWALL_TEST_REDIS_URL to run the Redis properties");
                None
            }
        }
    }

    /// A bucket whose stored value is no time this store could have written (edited by
    /// hand, written by something else) neither locks its owner out for ever nor misreports
    /// the wait: a TAT beyond `now + tolerance` is read as a spent budget, rewritten with a
    /// TTL, and whole again once that passes.
    #[test]
    fn a_corrupt_bucket_heals() {
        let Some(redis) = store() else { return };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let q = Quota::new(5, 60, 5);
        rt.block_on(async {
            for (i, bad) in [
                "1e300",
                "inf",
                "99999999999999999999999",
                "9223372036854775807",
            ]
            .iter()
            .enumerate()
            {
                let scope = format!("corrupt#{i}");
                let k = key(2, 0);
                let name = redis.key(&scope, &k);
                let mut set = ::redis::cmd("SET");
                set.arg(&name).arg(bad);
                redis.query::<()>(set).await.unwrap();
                let now_us = 5_000_000_000;
                let d = redis.check_at(&scope, &k, &q, now_us).await.unwrap();
                assert!(!d.allowed, "{bad}: a spent budget");
                assert_eq!(
                    d.reset_secs, 12,
                    "{bad}: Retry-After is one emission interval"
                );
                let mut pttl = ::redis::cmd("PTTL");
                pttl.arg(&name);
                let ttl: i64 = redis.query(pttl).await.unwrap();
                assert!(
                    ttl > 0 && ttl <= 61_000,
                    "{bad}: rewritten with a TTL ({ttl} ms)"
                );
                // Once the tolerance has passed, the whole burst again.
                let later = now_us + 60_000_000;
                let mut admitted = 0;
                for _ in 0..8 {
                    admitted +=
                        usize::from(redis.check_at(&scope, &k, &q, later).await.unwrap().allowed);
                }
                assert_eq!(admitted, 5, "{bad}");
            }
        });
    }

    /// Quotas whose keys outlive a test case on Redis' real clock (a key's `PX` is counted
    /// from the script's `ahead`, at least one emission interval: here at least 6 s).
    fn slow_quota() -> impl Strategy<Value = Quota> {
        (
            1u32..=10,
            prop::sample::select(&[60u64, 3600, 86_400][..]),
            1u32..=20,
        )
            .prop_map(|(count, period, burst)| Quota::new(count, period, burst))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// The script and the memory store decide alike, field by field, on the same
        /// sequences of checks, refunds and clock steps (whole microseconds: Redis' unit).
        #[test]
        fn the_lua_script_decides_as_the_memory_store_does(
            quotas in prop::collection::vec(slow_quota(), 1..3),
            raw_ops in prop::collection::vec(
                prop_oneof![
                    6 => (0usize..3, 0usize..2).prop_map(|(key, quota)| Op::Check { key, quota }),
                    1 => (0usize..3, 0usize..2).prop_map(|(key, quota)| Op::Refund { key, quota }),
                    3 => prop_oneof![0u64..1_000, 0u64..20_000_000, 0u64..7_200_000_000]
                        .prop_map(|us| Op::Step(us * 1_000)),
                ],
                1..80,
            ),
        ) {
            let Some(redis) = store() else { return Ok(()) };
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let memory = MemoryStore::new(10_000);
            // A fresh bucket name per run (shrinking reruns a case: it must start empty);
            // the limit's index is part of it, as in the app's scopes (`POST /users#0`).
            static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let scope = format!("props#{}", RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
            let mut now = 1_000 * S;
            rt.block_on(async {
                for op in raw_ops {
                    match op {
                        Op::Step(d) => now += d,
                        Op::Check { key: k, quota: q } => {
                            let q = q % quotas.len();
                            let rk = key(k, q);
                            let want = memory.check(&rk, &quotas[q], now);
                            let got = redis
                                .check_at(&format!("{scope}#{q}"), &rk, &quotas[q], now / 1_000)
                                .await
                                .expect("Redis answers");
                            prop_assert_eq!(got, want, "key {} quota {:?} at {} us", k, quotas[q], now / 1_000);
                        }
                        Op::Refund { key: k, quota: q } => {
                            let q = q % quotas.len();
                            let rk = key(k, q);
                            memory.refund(&rk, &quotas[q], now);
                            redis
                                .refund_at(&format!("{scope}#{q}"), &rk, &quotas[q], now / 1_000)
                                .await
                                .expect("Redis answers");
                        }
                    }
                }
                Ok(())
            })?;
        }
    }
}
