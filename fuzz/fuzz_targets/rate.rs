//! Rate strings (`rate = "5/min per ip burst 10"`): the macro's parser, compiled in from
//! `macros/src/units.rs`, and the runtime's GCRA on what it accepts.
//!
//! Invariants: an accepted rate is in range (count, burst ≥ 1; 1 s ≤ period ≤ 366 days; a
//! public route charges per ip or global); its normalized text and a canonical rendering
//! both parse back to the same rate; and the runtime, at one instant, admits exactly the
//! declared burst (never more, whatever the numbers), then answers a `Retry-After` of at
//! least 1 s and at most one period.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shieldwall_runtime::rate::{Quota, gcra};

#[path = "../../macros/src/units.rs"]
#[allow(dead_code)]
mod units;

use units::{Per, RateM, parse_rate};

fn per_words(per: Per) -> &'static str {
    match per {
        Per::User => "per user",
        Per::Ip => "per ip",
        Per::Key => "per key",
        Per::Global => "global",
    }
}

fn fields(r: &RateM) -> (u32, u64, Per, u32) {
    (r.count, r.period_secs, r.per, r.burst)
}

/// Admissions at one instant, asked at most `burst + 1` times (and at most 2001).
fn admitted_at_once(quota: &Quota, burst: u32, now: u64) -> (u32, Option<u64>) {
    let mut tat = None;
    let mut admitted = 0;
    let mut refusal = None;
    for _ in 0..=burst.min(2_000) {
        let (d, t) = gcra(tat, quota, now);
        if d.allowed {
            admitted += 1;
            tat = t;
        } else {
            refusal = Some(d.reset_secs);
            break;
        }
    }
    (admitted, refusal)
}

fuzz_target!(|data: &[u8]| {
    let Some(text) = shieldwall_fuzz::text(data) else {
        return;
    };
    for public in [false, true] {
        let Ok(r) = parse_rate(text, public) else {
            continue;
        };
        assert!(r.count >= 1 && r.burst >= 1, "{text:?}");
        assert!((1..=366 * 86_400).contains(&r.period_secs), "{text:?}");
        if public {
            assert!(matches!(r.per, Per::Ip | Per::Global), "{text:?}");
        }
        let again = parse_rate(&r.text, public).expect("the normalized text parses");
        assert_eq!(fields(&again), fields(&r), "{text:?} → {:?}", r.text);
        assert_eq!(again.text, r.text);
        let canonical = format!(
            "{}/{}s {} burst {}",
            r.count,
            r.period_secs,
            per_words(r.per),
            r.burst
        );
        let again = parse_rate(&canonical, public).expect("the canonical rendering parses");
        assert_eq!(fields(&again), fields(&r), "{text:?} → {canonical:?}");

        let quota = Quota::new(r.count, r.period_secs, r.burst);
        // A fresh process, and one up for a year (the memory store's monotonic clock).
        for now in [1, 365 * 86_400 * 1_000_000_000] {
            let (admitted, refusal) = admitted_at_once(&quota, r.burst, now);
            assert!(admitted <= r.burst, "{text:?}: {admitted} admitted at once");
            // Exactly the burst, unless it spans more nanoseconds than a u64 holds (then
            // fewer: the limiter refuses rather than wrap).
            let span = u128::from(r.burst) * u128::from(quota.emission) + u128::from(now);
            if span <= u128::from(u64::MAX) && r.burst <= 2_000 {
                assert_eq!(
                    admitted, r.burst,
                    "{text:?}: the declared burst is admitted"
                );
            }
            if r.burst <= 2_000 {
                let retry = refusal.expect("the request after the burst is refused");
                assert!(
                    (1..=r.period_secs).contains(&retry),
                    "{text:?}: Retry-After {retry}"
                );
            }
        }
    }
});
