//! The in-memory GCRA store (`MemoryStore::check`), with the monotonic clock read that
//! every request pays:
//!
//! - `rate/memory/hot_key`: one key, one thread;
//! - `rate/memory/10k_keys`: 10 000 per-user keys in turn (the store's default capacity);
//! - `rate/memory/2_threads_hot_key`: two threads checking the same key at once — the time
//!   is per check as one thread sees it while the other contends for the shard's lock;
//! - `rate/memory/2_threads_own_keys`: two threads on keys of their own, for comparison.
//!
//! The quota never refuses, so every check also writes the new TAT.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use shieldwall::clock::{Clock, MonotonicClock};
use shieldwall::rate::memory::MemoryStore;
use shieldwall::rate::{Ident, Quota, RateKey};

fn quota() -> Quota {
    Quota::new(u32::MAX, 1, u32::MAX)
}

fn user_key(i: u32) -> RateKey {
    RateKey {
        route: 0,
        limit: 0,
        ident: Ident::Subject(format!("user-{i}").into()),
    }
}

/// Each of two threads runs `iters` checks on its key; the wall time of the slower one.
fn two_threads(store: &MemoryStore, keys: [&RateKey; 2], iters: u64) -> Duration {
    let clock = MonotonicClock::new();
    let quota = quota();
    let start = Barrier::new(2);
    std::thread::scope(|s| {
        let handles = keys.map(|key| {
            let (start, clock) = (&start, &clock);
            s.spawn(move || {
                start.wait();
                let t = Instant::now();
                for _ in 0..iters {
                    black_box(store.check(black_box(key), &quota, clock.now_nanos()));
                }
                t.elapsed()
            })
        });
        handles
            .map(|h| h.join().expect("bench thread"))
            .into_iter()
            .max()
            .unwrap_or_default()
    })
}

fn rate(c: &mut Criterion) {
    let clock = MonotonicClock::new();
    let quota = quota();

    let store = MemoryStore::new(100_000);
    let key = RateKey {
        route: 0,
        limit: 0,
        ident: Ident::Global,
    };
    c.bench_function("rate/memory/hot_key", |b| {
        b.iter(|| store.check(black_box(&key), &quota, clock.now_nanos()))
    });

    let store = MemoryStore::new(100_000);
    let keys: Vec<RateKey> = (0..10_000).map(user_key).collect();
    for k in &keys {
        assert!(store.check(k, &quota, clock.now_nanos()).allowed);
    }
    let mut next = keys.iter().cycle();
    c.bench_function("rate/memory/10k_keys", |b| {
        b.iter(|| {
            let key = next.next().unwrap_or(&keys[0]);
            store.check(black_box(key), &quota, clock.now_nanos())
        })
    });

    let store = MemoryStore::new(100_000);
    let hot = user_key(0);
    c.bench_function("rate/memory/2_threads_hot_key", |b| {
        b.iter_custom(|iters| two_threads(&store, [&hot, &hot], iters))
    });

    let store = MemoryStore::new(100_000);
    // Two keys in different shards is likely but not certain; either way each thread owns one.
    let (a, b) = (user_key(1), user_key(2));
    c.bench_function("rate/memory/2_threads_own_keys", |bench| {
        bench.iter_custom(|iters| two_threads(&store, [&a, &b], iters))
    });
}

criterion_group!(benches, rate);
criterion_main!(benches);
