//! Rate limiting: exact under concurrency, and GCRA at the window boundary, over real
//! HTTP with a clock the test controls.

mod common;

use std::time::Duration;

use common::*;
use futures::future::join_all;
use shieldwall::clock::ManualClock;
use shieldwall::prelude::*;

#[secure(get "/burst", auth, rate = "10/min")]
async fn burst() -> &'static str {
    "ok"
}

#[secure(get "/open", public, rate = "5/min")]
async fn open() -> &'static str {
    "ok"
}

#[secure(get "/bursty", public, rate = "60/min burst 3")]
async fn bursty() -> &'static str {
    "ok"
}

async fn app(clock: ManualClock) -> String {
    let router = Shieldwall::new()
        .jwt(jwt())
        .clock(clock)
        .routes(routes![burst, open, bursty])
        .build()
        .unwrap();
    serve(router).await
}

async fn fire(base: &str, path: &str, n: usize, token: Option<&str>) -> usize {
    let c = client();
    let reqs = (0..n).map(|_| {
        let mut r = c.get(format!("{base}{path}"));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        async move { r.send().await.unwrap().status().as_u16() }
    });
    let statuses = join_all(reqs).await;
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );
    statuses.iter().filter(|s| **s == 200).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_n_of_n_plus_k_concurrent() {
    let clock = ManualClock::new();
    let base = app(clock).await;
    let t = token("alice", &[], "");
    assert_eq!(fire(&base, "/burst", 60, Some(&t)).await, 10);
    // per user: bob has his own 10
    let b = token("bob", &[], "");
    assert_eq!(fire(&base, "/burst", 60, Some(&b)).await, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn window_boundary_never_admits_more_than_gcra() {
    // 5/min: a fixed window would admit 5 at t=59 s and 5 more at t=61 s.
    let clock = ManualClock::new();
    let base = app(clock.clone()).await;
    clock.advance(Duration::from_secs(59));
    assert_eq!(fire(&base, "/open", 5, None).await, 5);
    clock.advance(Duration::from_secs(2));
    assert_eq!(
        fire(&base, "/open", 5, None).await,
        0,
        "t=61: GCRA admits nothing yet"
    );
    // one request every 12 s after that
    clock.advance(Duration::from_secs(10));
    assert_eq!(
        fire(&base, "/open", 5, None).await,
        1,
        "t=71: one emission interval has passed"
    );
    clock.advance(Duration::from_secs(11));
    assert_eq!(
        fire(&base, "/open", 5, None).await,
        0,
        "t=82: next slot is at t=83"
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(fire(&base, "/open", 5, None).await, 1);
    // a full idle period restores the whole burst, no more
    clock.advance(Duration::from_secs(60));
    assert_eq!(fire(&base, "/open", 8, None).await, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn steady_client_gets_the_exact_gcra_schedule() {
    // One request a second for three minutes against 5/min: the burst of 5, then exactly
    // one every 12 s (the emission interval), never a fixed-window double.
    let clock = ManualClock::new();
    let base = app(clock.clone()).await;
    let mut admitted_at = Vec::new();
    for second in 0..180u64 {
        if fire(&base, "/open", 1, None).await == 1 {
            admitted_at.push(second);
        }
        clock.advance(Duration::from_secs(1));
    }
    let expected: Vec<u64> = (0..5).chain((1..=14).map(|k| 12 * k)).collect();
    assert_eq!(admitted_at, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn burst_is_separate_from_the_rate() {
    let clock = ManualClock::new();
    let base = app(clock.clone()).await;
    assert_eq!(fire(&base, "/bursty", 10, None).await, 3);
    clock.advance(Duration::from_secs(1));
    assert_eq!(fire(&base, "/bursty", 10, None).await, 1);
}

// ---------------------------------------------------------------- custom stores

mod custom {
    use super::*;
    use shieldwall::rate::{BoxFuture, Decision, Quota, RateKey, RateStore, StoreError};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A store that is down: counts the calls it refuses.
    struct Down(Arc<AtomicUsize>);

    impl RateStore for Down {
        fn check<'a>(
            &'a self,
            scope: &'a str,
            _key: &'a RateKey,
            _quota: &'a Quota,
            _now: u64,
        ) -> BoxFuture<'a, Result<Decision, StoreError>> {
            assert!(scope.ends_with("#0"), "{scope}");
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Err(StoreError::Unavailable) })
        }
    }

    #[secure(post "/login", public, login, rate = "2/min per ip")]
    async fn login() -> &'static str {
        "ok"
    }

    #[secure(get "/feed", public, rate = "2/min per ip")]
    async fn feed() -> &'static str {
        "ok"
    }

    #[tokio::test]
    async fn a_custom_store_and_its_outage_policy() {
        let calls = Arc::new(AtomicUsize::new(0));
        let router = Shieldwall::new()
            .rate_store(Down(calls.clone()))
            .routes(routes![login, feed])
            .build()
            .unwrap();
        let base = serve(router).await;
        // login fails closed while the store is down …
        let r = send(client().post(format!("{base}/login"))).await;
        r.assert_problem(503, "unavailable");
        // … other routes enforce the quota locally.
        assert_eq!(fire(&base, "/feed", 3, None).await, 2);
        assert_eq!(
            calls.load(Ordering::SeqCst),
            4,
            "every check asked the custom store"
        );
    }
}
