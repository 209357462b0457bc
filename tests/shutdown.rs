//! Graceful shutdown of a real process: SIGTERM while a slow request is in flight — the
//! request completes, new connections are refused, and the process exits cleanly.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const SECRET: &str = "shutdown-test-secret-0123456789abcdefghij";

fn admin_token() -> String {
    let now = now();
    let claims = serde_json::json!({
        "iss": "shieldwall-quickstart", "aud": "quickstart-api", "sub": "alice",
        "roles": ["admin"], "iat": now, "exp": now + 600,
    });
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests() {
    let qs = start_quickstart(&[("SHIELDWALL_JWT_SECRET", SECRET), ("RUST_LOG", "info")]);
    let base = qs.base.clone();
    let mut qs = qs;

    // A client that sends its body slowly: in flight when SIGTERM arrives.
    let body = r#"{"username":"slow","email":"slow@example.com","age":30}"#;
    let (first, second) = body.split_at(20);
    let (first, second) = (first.to_string(), second.to_string());
    let stream = futures::stream::unfold(0u8, move |step| {
        let (first, second) = (first.clone(), second.clone());
        async move {
            match step {
                0 => Some((Ok::<_, std::io::Error>(first), 1)),
                1 => {
                    tokio::time::sleep(Duration::from_millis(1500)).await;
                    Some((Ok(second), 2))
                }
                _ => None,
            }
        }
    });
    let c = client();
    let req = c
        .post(format!("{base}/users"))
        .bearer_auth(admin_token())
        .header("content-type", "application/json")
        .header("content-length", body.len().to_string())
        .body(reqwest::Body::wrap_stream(stream))
        .timeout(Duration::from_secs(20))
        .send();
    let in_flight = tokio::spawn(req);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let pid = qs.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );

    let res = in_flight
        .await
        .unwrap()
        .expect("the in-flight request was answered");
    assert_eq!(res.status(), 201, "{:?}", res.text().await);

    // The process exits by itself, cleanly, soon after.
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = qs.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    // and nothing listens any more
    assert!(
        reqwest::Client::new()
            .get(format!("{base}/health"))
            .send()
            .await
            .is_err()
    );
}
