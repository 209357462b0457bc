//! The shared Redis store, against real `redis-server` processes on 127.0.0.1.
//!
//! Needs `redis-server` on PATH. Without it these tests print `SKIPPED` and pass, unless
//! `SHIELDWALL_REQUIRE_REDIS=1` (set by `.ci/run`, which installs Redis), where a missing
//! Redis is a failure: CI never takes the skip.

mod common;

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use shieldwall::prelude::*;
use shieldwall::rate::redis::RedisStore;

// ---------------------------------------------------------------- harness

fn redis_available() -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        if std::env::var("SHIELDWALL_REQUIRE_REDIS").as_deref() == Ok("1") {
            panic!("SHIELDWALL_REQUIRE_REDIS=1 but redis-server is not on PATH");
        }
        eprintln!("SKIPPED: redis-server is not installed (apt-get install redis-server)");
    }
    found
}

struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    fn start_on(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, port }
    }

    fn start() -> Self {
        Self::start_on(free_port())
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn redis_conn(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Every shieldwall key in Redis, with its PTTL.
async fn keys_with_ttl(url: &str) -> Vec<(String, i64)> {
    let mut c = redis_conn(url).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("shieldwall:rl:*")
        .query_async(&mut c)
        .await
        .unwrap();
    let mut out = Vec::new();
    for k in keys {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&k)
            .query_async(&mut c)
            .await
            .unwrap();
        out.push((k, ttl));
    }
    out
}

// ---------------------------------------------------------------- two processes, one Redis

const QS_SECRET: &str = "two-process-test-secret-0123456789abcdef";

/// The quickstart example (built by `cargo test` next to this test binary) on this Redis.
fn quickstart(redis_url: &str) -> Example {
    start_quickstart(&[
        ("SHIELDWALL_REDIS_URL", redis_url),
        ("SHIELDWALL_JWT_SECRET", QS_SECRET),
        // Up to 100 requests at once per process, all from 127.0.0.1 (over the default
        // per-address connection cap of 64).
        ("SHIELDWALL_MAX_CONNECTIONS_PER_IP", "256"),
    ])
}

fn quickstart_token(sub: &str) -> String {
    let now = now();
    let claims = json!({
        "iss": "shieldwall-quickstart", "aud": "quickstart-api", "sub": sub,
        "roles": ["admin"], "iat": now, "exp": now + 600,
    });
    let key = jsonwebtoken::EncodingKey::from_secret(QS_SECRET.as_bytes()).unwrap();
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_share_one_budget_exactly() {
    if !redis_available() {
        return;
    }
    // CI starts a shared redis-server; elsewhere start one for this test.
    let (_own, url) = match std::env::var("SHIELDWALL_TEST_REDIS_URL") {
        Ok(url) => (None, url),
        Err(_) => {
            let r = RedisServer::start();
            let url = r.url();
            (Some(r), url)
        }
    };
    let a = quickstart(&url);
    let b = quickstart(&url);
    // A subject no earlier run used, so leftover keys cannot interfere.
    let sub = format!("admin-{}", rand::random::<u64>());
    let token = quickstart_token(&sub);
    let c = client();
    let reqs = (0..200).map(|i| {
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        let r = c
            .post(format!("{base}/users"))
            .bearer_auth(&token)
            .json(&json!({"username": format!("u{i}"), "email": "u@example.com", "age": 30}));
        async move { r.send().await.unwrap().status().as_u16() }
    });
    let statuses = futures::future::join_all(reqs).await;
    let created = statuses.iter().filter(|s| **s == 201).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((created, limited), (5, 195), "{statuses:?}");

    let keys = keys_with_ttl(&url).await;
    let ours: Vec<_> = keys.iter().filter(|(k, _)| k.ends_with(&sub)).collect();
    assert_eq!(ours.len(), 1, "{keys:?}");
    assert!(
        keys.iter().all(|(_, ttl)| *ttl > 0),
        "a key without TTL: {keys:?}"
    );
}

// ---------------------------------------------------------------- outage and recovery

#[secure(get "/open", public, rate = "1000/min per ip")]
async fn open() -> &'static str {
    "ok"
}

#[secure(post "/login", public, login, rate = "1000/min per ip")]
async fn login() -> &'static str {
    "ok"
}

#[secure(get "/three", public, rate = "3/min per ip")]
async fn three() -> &'static str {
    "ok"
}

async fn status_within(c: &reqwest::Client, req: reqwest::RequestBuilder, limit: Duration) -> u16 {
    let _ = c;
    let start = Instant::now();
    let status = req
        .timeout(limit)
        .send()
        .await
        .expect("request hung past its bound")
        .status()
        .as_u16();
    assert!(start.elapsed() < limit);
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outage_policy_holds_and_limiting_resumes() {
    if !redis_available() {
        return;
    }
    logs();
    let mut redis = RedisServer::start();
    let port = redis.port;
    let store = RedisStore::new(&redis.url())
        .unwrap()
        .timeout(Duration::from_millis(200));
    let router = Shieldwall::new()
        .redis(store)
        .routes(routes![open, login, three])
        .build()
        .unwrap();
    let base = serve(router).await;
    let c = client();
    let bound = Duration::from_secs(3);
    let get = |p: &str| c.get(format!("{base}{p}"));
    let post = |p: &str| c.post(format!("{base}{p}"));

    // Healthy: limits live in Redis.
    for _ in 0..3 {
        assert_eq!(status_within(&c, get("/three"), bound).await, 200);
    }
    assert_eq!(status_within(&c, get("/three"), bound).await, 429);
    assert_eq!(status_within(&c, post("/login"), bound).await, 200);
    assert!(!keys_with_ttl(&redis.url()).await.is_empty());

    // Redis goes away mid-load.
    let load = {
        let c = c.clone();
        let base = base.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..40 {
                let s = c
                    .get(format!("{base}/open"))
                    .timeout(Duration::from_secs(3))
                    .send()
                    .await;
                seen.push(s.map(|r| r.status().as_u16()).map_err(|e| e.to_string()));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            seen
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    redis.stop();
    let seen = load.await.unwrap();
    assert!(
        seen.iter().all(|s| s == &Ok(200)),
        "local fallback keeps serving: {seen:?}"
    );

    // Outage: the login route fails closed, the others fall back to a local limit.
    let r = send(post("/login")).await;
    r.assert_problem(503, "unavailable");
    assert_eq!(status_within(&c, get("/open"), bound).await, 200);
    // The local budget starts from what this instance admitted through Redis: the three
    // requests it let through before the outage are not admitted a second time.
    assert_eq!(
        status_within(&c, get("/three"), bound).await,
        429,
        "the fallback remembers what Redis admitted"
    );
    let ours = |log: &str, what: &str| {
        log.lines()
            .filter(|l| l.contains(what) && l.contains(&format!("127.0.0.1:{port}")))
            .count()
    };
    let log = logged();
    assert_eq!(ours(&log, "rate store outage"), 1, "logged once: {log}");

    // Redis comes back on the same port: limiting resumes without restarting the app.
    let redis = RedisServer::start_on(port);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if status_within(&c, post("/login"), bound).await == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let keys = keys_with_ttl(&redis.url()).await;
    assert!(
        keys.iter().any(|(k, _)| k.contains("POST /login")),
        "{keys:?}"
    );
    assert!(keys.iter().all(|(_, ttl)| *ttl > 0), "{keys:?}");
    let log = logged();
    assert_eq!(ours(&log, "rate store recovered"), 1, "{log}");
    assert_eq!(ours(&log, "rate store outage"), 1, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_starts_while_redis_is_down() {
    if !redis_available() {
        return;
    }
    let port = free_port();
    let store = RedisStore::new(&format!("redis://127.0.0.1:{port}/")).unwrap();
    let router = Shieldwall::new()
        .redis(store)
        .routes(routes![open, login])
        .build()
        .unwrap();
    let base = serve(router).await;
    send(client().post(format!("{base}/login")))
        .await
        .assert_problem(503, "unavailable");
    assert_eq!(send(client().get(format!("{base}/open"))).await.status, 200);
    let _redis = RedisServer::start_on(port);
    let deadline = Instant::now() + Duration::from_secs(15);
    while send(client().post(format!("{base}/login"))).await.status != 200 {
        assert!(Instant::now() < deadline, "never connected");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------- recovery is exact

/// Finding 11: two quickstarts on one Redis, 5/min. Redis is stopped and started again on
/// the same port 3 s later, and then 40 requests for a fresh subject arrive at once, half on
/// each instance. Their connections to the old Redis are dead; a request must not be
/// decided by the local fallback just because it was the first to find that out: exactly 5
/// are admitted, in every round.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn limits_stay_exact_from_the_first_request_after_redis_restarts() {
    if !redis_available() {
        return;
    }
    let mut redis = RedisServer::start();
    let port = redis.port;
    let url = redis.url();
    let a = quickstart(&url);
    let b = quickstart(&url);
    let c = client();
    let create = |base: &str, token: &str, i: usize| {
        c.post(format!("{base}/users"))
            .bearer_auth(token)
            .timeout(Duration::from_secs(10))
            .json(&json!({"username": format!("u{i}"), "email": "u@example.com", "age": 30}))
    };
    // Both instances have talked to Redis (connection made, script loaded) before it goes.
    let warm = quickstart_token(&format!("warm-{}", rand::random::<u64>()));
    for base in [&a.base, &b.base] {
        let status = create(base, &warm, 0)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        assert_eq!(status, 201);
    }
    let mut rounds = Vec::new();
    for round in 0..3 {
        redis.stop();
        tokio::time::sleep(Duration::from_secs(3)).await;
        redis = RedisServer::start_on(port);
        let token = quickstart_token(&format!("fresh-{round}-{}", rand::random::<u64>()));
        let reqs = (0..40).map(|i| {
            let base = if i % 2 == 0 { &a.base } else { &b.base };
            let req = create(base, &token, i);
            async move { req.send().await.unwrap().status().as_u16() }
        });
        let statuses = futures::future::join_all(reqs).await;
        let created = statuses.iter().filter(|s| **s == 201).count();
        let limited = statuses.iter().filter(|s| **s == 429).count();
        rounds.push((created, limited));
    }
    assert_eq!(rounds, vec![(5, 35); 3], "admitted and limited, per round");
}
