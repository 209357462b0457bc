//! Client identity for per-IP limits over real HTTP: spoofed forwarding headers from an
//! untrusted peer change nothing; through a trusted proxy the real client's bucket is used.

mod common;

use common::*;
use shieldwall::client_ip::TrustedProxies;
use shieldwall::prelude::*;

#[secure(get "/login", public, rate = "3/min per ip")]
async fn login() -> &'static str {
    "ok"
}

async fn app(proxies: TrustedProxies) -> String {
    let router = Shieldwall::new()
        .trusted_proxies(proxies)
        .routes(routes![login])
        .build()
        .unwrap();
    serve(router).await
}

async fn status(base: &str, xff: Option<&str>) -> u16 {
    let mut r = client().get(format!("{base}/login"));
    if let Some(x) = xff {
        r = r.header("x-forwarded-for", x);
    }
    r.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn spoofed_header_from_untrusted_peer_lands_in_the_peers_bucket() {
    // 127.0.0.1 is not a trusted proxy here: every request is the peer's.
    let base = app(TrustedProxies::none()).await;
    let spoofs = ["1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4", "5.5.5.5"];
    let statuses: Vec<u16> =
        futures::future::join_all(spoofs.iter().map(|s| status(&base, Some(s)))).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(status(&base, Some("9.9.9.9")).await, 429);
    assert_eq!(status(&base, None).await, 429);
    // Forwarded is ignored just the same
    let r = client()
        .get(format!("{base}/login"))
        .header("forwarded", "for=8.8.8.8")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
}

#[tokio::test]
async fn trusted_proxy_uses_the_real_clients_bucket() {
    let base = app(TrustedProxies::parse(["127.0.0.1/32"]).unwrap()).await;
    for _ in 0..3 {
        assert_eq!(status(&base, Some("198.51.100.1")).await, 200);
    }
    assert_eq!(status(&base, Some("198.51.100.1")).await, 429);
    // another client behind the same proxy has its own budget
    assert_eq!(status(&base, Some("198.51.100.2")).await, 200);
    // a client-written entry on the left does not help: the proxy's entry on the right counts
    assert_eq!(status(&base, Some("10.10.10.10, 198.51.100.1")).await, 429);
    // IPv6 clients share a /64
    for i in 0..3 {
        assert_eq!(
            status(&base, Some(&format!("2001:db8:1:2::{i:x}"))).await,
            200
        );
    }
    assert_eq!(status(&base, Some("2001:db8:1:2:ffff::1")).await, 429);
    assert_eq!(status(&base, Some("2001:db8:1:3::1")).await, 200);
}

#[tokio::test]
async fn request_ids_are_kept_only_from_trusted_proxies() {
    let id = "proxy-7f3a2c";
    let untrusted = app(TrustedProxies::none()).await;
    let r = client()
        .get(format!("{untrusted}/login"))
        .header("x-request-id", id)
        .send()
        .await
        .unwrap();
    let got = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_ne!(got, id, "a client cannot choose its request id");
    assert_eq!(got.len(), 36, "a fresh UUID: {got}");

    let trusted = app(TrustedProxies::parse(["127.0.0.1/32"]).unwrap()).await;
    let r = client()
        .get(format!("{trusted}/login"))
        .header("x-request-id", id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["x-request-id"],
        id,
        "the trusted proxy's id follows the request"
    );
    // even from a trusted proxy, a malformed id is replaced
    let r = client()
        .get(format!("{trusted}/login"))
        .header("x-request-id", "a b")
        .send()
        .await
        .unwrap();
    assert_ne!(r.headers()["x-request-id"], "a b");
}
