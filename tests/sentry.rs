//! Error tracking (feature `sentry`) against a local HTTP endpoint that records the
//! envelopes it receives: 5xx responses and panics are reported with the request id,
//! credentials, bodies and query strings never are, 4xx are not reported, and a dead or
//! hanging endpoint never delays a response.
#![cfg(feature = "sentry")]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use common::*;
use serde_json::Value;
use shieldwall::prelude::*;
use shieldwall::sentry::SentryConfig;

#[secure(post "/fail", auth)]
async fn fail(user: Principal) -> StatusCode {
    let _ = user;
    StatusCode::INTERNAL_SERVER_ERROR
}

#[secure(post "/panic", public)]
async fn panics() -> &'static str {
    panic!("the database password is hunter2")
}

#[secure(get "/ok", public)]
async fn ok() -> &'static str {
    "ok"
}

const TOKEN_SUB: &str = "alice";
const COOKIE: &str = "sid=COOKIE-MARKER-c00k1e";
const API_KEY: &str = "APIKEY-MARKER-k3y";
const BODY: &str = "{\"note\":\"BODY-MARKER-b0dy\"}";
const QUERY: &str = "q=QUERY-MARKER-qu3ry";

#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(String, String)>>>);

impl Received {
    fn all(&self) -> Vec<(String, String)> {
        self.0.lock().unwrap().clone()
    }

    /// Wait (bounded) until at least `n` envelopes arrived.
    async fn wait_for(&self, n: usize) -> Vec<(String, String)> {
        let t = Instant::now();
        while self.0.lock().unwrap().len() < n && t.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        self.all()
    }
}

/// A Sentry stand-in recording `(X-Sentry-Auth, envelope)` for project 42.
async fn tracker() -> (String, Received) {
    let got = Received::default();
    let rec = got.clone();
    let router = axum::Router::new().route(
        "/api/42/envelope/",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let rec = rec.clone();
            async move {
                let auth = headers
                    .get("x-sentry-auth")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                rec.0.lock().unwrap().push((auth, body));
                "{}"
            }
        }),
    );
    let base = serve(router).await;
    let dsn = base.replace("http://", "http://publickey@") + "/42";
    (dsn, got)
}

fn app(dsn: &str, timeout: Duration) -> axum::Router {
    Shieldwall::new()
        .jwt(jwt())
        .routes(routes![fail, panics, ok])
        .sentry(SentryConfig::new(dsn).unwrap().timeout(timeout))
        .build()
        .unwrap()
}

/// The event payload of an envelope (header line, item header line, payload).
fn event(envelope: &str) -> Value {
    let lines: Vec<&str> = envelope.lines().collect();
    assert_eq!(lines.len(), 3, "{envelope}");
    let header: Value = serde_json::from_str(lines[0]).unwrap();
    let item: Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(item["type"], "event");
    assert_eq!(item["length"], lines[2].len());
    let event: Value = serde_json::from_str(lines[2]).unwrap();
    assert!(header["event_id"].is_string());
    event
}

async fn loaded(c: &reqwest::Client, url: String, token: &str) -> Res {
    send(
        c.post(url)
            .header("authorization", format!("Bearer {token}"))
            .header("cookie", COOKIE)
            .header("x-api-key", API_KEY)
            .header("content-type", "application/json")
            .body(BODY),
    )
    .await
}

#[tokio::test]
async fn five_hundreds_and_panics_are_reported_scrubbed() {
    let (dsn, got) = tracker().await;
    let base = serve(app(&dsn, Duration::from_secs(5))).await;
    let c = client();
    let token = token(TOKEN_SUB, &[], "");

    let failed = loaded(&c, format!("{base}/fail?{QUERY}"), &token).await;
    failed.assert_problem(500, "internal");
    let failed_id = failed.header("x-request-id").unwrap().to_string();

    let panicked = loaded(&c, format!("{base}/panic?{QUERY}"), &token).await;
    panicked.assert_problem(500, "internal");
    assert!(!panicked.text.contains("hunter2"), "{}", panicked.text);
    let panic_id = panicked.header("x-request-id").unwrap().to_string();
    assert_eq!(panicked.json()["instance"], format!("urn:uuid:{panic_id}"));

    let received = got.wait_for(2).await;
    assert_eq!(received.len(), 2, "{received:?}");
    let events: Vec<Value> = received.iter().map(|(_, e)| event(e)).collect();
    for (auth, envelope) in &received {
        assert!(auth.starts_with("Sentry sentry_version=7"), "{auth}");
        assert!(auth.contains("sentry_key=publickey"), "{auth}");
        for secret in [
            token.as_str(),
            "COOKIE-MARKER",
            "APIKEY-MARKER",
            "BODY-MARKER",
            "QUERY-MARKER",
        ] {
            assert!(!envelope.contains(secret), "{secret} leaked: {envelope}");
        }
    }
    let by_id = |id: &str| {
        events
            .iter()
            .find(|e| e["tags"]["request_id"] == id)
            .unwrap_or_else(|| panic!("no event for {id}: {events:?}"))
            .clone()
    };

    let f = by_id(&failed_id);
    assert_eq!(f["tags"]["status"], "500");
    assert_eq!(f["tags"]["route"], "/fail");
    assert_eq!(f["request"]["method"], "POST");
    assert!(
        f["request"]["url"].as_str().unwrap().ends_with("/fail"),
        "{f}"
    );
    let headers = &f["request"]["headers"];
    assert_eq!(headers["authorization"], "[Filtered]");
    assert_eq!(headers["cookie"], "[Filtered]");
    assert_eq!(headers["x-api-key"], "[Filtered]");
    assert_eq!(headers["content-type"], "application/json");
    assert!(f.get("exception").is_none());

    let p = by_id(&panic_id);
    assert_eq!(p["tags"]["status"], "500");
    assert_eq!(
        p["exception"]["values"][0]["value"],
        "the database password is hunter2"
    );
    assert!(p["request"]["url"].as_str().unwrap().ends_with("/panic"));
    assert_eq!(p["request"]["headers"]["authorization"], "[Filtered]");
}

#[tokio::test]
async fn client_errors_are_not_reported() {
    let (dsn, got) = tracker().await;
    let base = serve(app(&dsn, Duration::from_secs(5))).await;
    let c = client();
    let r = send(c.post(format!("{base}/fail")).body(BODY)).await;
    assert_eq!(r.status, 401);
    let r = send(c.get(format!("{base}/nowhere"))).await;
    assert_eq!(r.status, 404);
    let r = send(c.get(format!("{base}/ok"))).await;
    assert_eq!(r.status, 200);
    // A 5xx afterwards arrives; nothing before it did.
    let r = send(c.post(format!("{base}/panic"))).await;
    assert_eq!(r.status, 500);
    let received = got.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let received_later = got.all();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received_later.len(), 1, "{received_later:?}");
    assert_eq!(event(&received[0].1)["tags"]["status"], "500");
}

#[tokio::test]
async fn a_dead_or_hanging_tracker_never_delays_responses() {
    // Down: nothing listens on the port.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = format!("http://publickey@{}/42", l.local_addr().unwrap());
    drop(l);
    // Hanging: accepts connections and never answers.
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hanging = format!("http://publickey@{}/42", hang.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = hang.accept().await {
            held.push(s);
        }
    });
    let c = client();
    let token = token(TOKEN_SUB, &[], "");
    for dsn in [down, hanging] {
        let base = serve(app(&dsn, Duration::from_millis(500))).await;
        let t = Instant::now();
        for _ in 0..5 {
            let r = tokio::time::timeout(
                Duration::from_secs(5),
                loaded(&c, format!("{base}/panic"), &token),
            )
            .await
            .expect("the response does not wait for the tracker");
            r.assert_problem(500, "internal");
            let r = loaded(&c, format!("{base}/fail"), &token).await;
            assert_eq!(r.status, 500);
            let ok = send(c.get(format!("{base}/ok"))).await;
            assert_eq!(ok.status, 200);
        }
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    }
}

#[secure(get "/keyed-fail", auth = "api_key")]
async fn keyed_fail(user: Principal) -> StatusCode {
    let _ = user;
    StatusCode::INTERNAL_SERVER_ERROR
}

#[tokio::test]
async fn a_custom_api_key_header_is_scrubbed() {
    use shieldwall::auth::api_key::{ApiKeys, MemoryKeyStore, NewKey};
    // A name that none of the generic scrubbing patterns (token, key, secret…) matches.
    let keys = ApiKeys::new(MemoryKeyStore::new())
        .header(axum::http::HeaderName::from_static("x-client-credential"));
    let key = keys.create(NewKey::new("billing")).unwrap().key;
    let (dsn, got) = tracker().await;
    let router = Shieldwall::new()
        .api_keys(keys)
        .routes(routes![keyed_fail])
        .sentry(SentryConfig::new(&dsn).unwrap())
        .build()
        .unwrap();
    let base = serve(router).await;
    let r = send(
        client()
            .get(format!("{base}/keyed-fail"))
            .header("x-client-credential", &key),
    )
    .await;
    assert_eq!(r.status, 500, "{}", r.text);
    let received = got.wait_for(1).await;
    assert_eq!(received.len(), 1, "{received:?}");
    let envelope = &received[0].1;
    let secret = key.rsplit('_').next().unwrap();
    assert!(!envelope.contains(secret), "the API key leaked: {envelope}");
    assert_eq!(
        event(envelope)["request"]["headers"]["x-client-credential"],
        "[Filtered]"
    );
}
