//! Key spraying cannot grow the in-memory rate store past its cap. One test per binary so
//! the RSS reading is this test's alone.

use shieldwall::rate::memory::MemoryStore;
use shieldwall::rate::{Ident, Quota, RateKey};

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_million_distinct_keys_stay_under_the_cap() {
    const CAP: usize = 100_000;
    let store = MemoryStore::new(CAP);
    let quota = Quota::new(5, 60, 5);
    let before = rss_kib();
    let mut refused = 0usize;
    // All keys arrive within one window, so none is idle: the worst case.
    for i in 0..1_000_000u32 {
        let ip = std::net::IpAddr::from(i.to_be_bytes());
        let key = RateKey {
            route: 0,
            limit: 0,
            ident: Ident::Ip(ip),
        };
        if !store.check(&key, &quota, 1_000_000_000).allowed {
            refused += 1;
        }
    }
    let after = rss_kib();
    let tracked = store.len();
    let grown_mib = after.saturating_sub(before) as f64 / 1024.0;
    println!(
        "key spraying: 1000000 keys sent, {tracked} tracked (cap {CAP}), {refused} refused, RSS {before} KiB -> {after} KiB (+{grown_mib:.1} MiB)"
    );
    assert!(tracked <= CAP, "{tracked} keys tracked");
    assert!(refused >= 1_000_000 - CAP);
    assert!(grown_mib < 64.0, "RSS grew by {grown_mib:.1} MiB");

    // Once the window has passed, idle keys make room again.
    let later = 1_000_000_000 + 61 * 1_000_000_000;
    let key = RateKey {
        route: 0,
        limit: 0,
        ident: Ident::Global,
    };
    assert!(store.check(&key, &quota, later).allowed);
}
