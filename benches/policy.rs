//! Micro-benchmarks of the request path (extended by the performance work).

use criterion::{Criterion, criterion_group, criterion_main};
use shieldwall::clock::{Clock, MonotonicClock};
use shieldwall::rate::memory::MemoryStore;
use shieldwall::rate::{Ident, Quota, RateKey};

fn rate_hot_key(c: &mut Criterion) {
    let store = MemoryStore::new(100_000);
    let clock = MonotonicClock::new();
    let quota = Quota::new(u32::MAX, 1, u32::MAX);
    let key = RateKey {
        route: 0,
        limit: 0,
        ident: Ident::Global,
    };
    c.bench_function("rate/memory/hot_key", |b| {
        b.iter(|| store.check(std::hint::black_box(&key), &quota, clock.now_nanos()))
    });
}

criterion_group!(benches, rate_hot_key);
criterion_main!(benches);
