//! A custom API-key header (`ApiKeys::header`) is honoured by every layer, over real HTTP:
//! responses to key-authenticated requests are `Cache-Control: no-store`, and CORS
//! preflights allow the configured header (and not the default one the app does not read).

mod common;

use axum::http::HeaderName;
use common::*;
use shieldwall::auth::api_key::{ApiKeys, MemoryKeyStore, NewKey};
use shieldwall::prelude::*;

const HEADER: &str = "X-Service-Key";
const ORIGIN: &str = "https://app.example.com";

/// A personal answer the handler would happily let caches keep.
#[secure(get "/reports", auth = "api_key")]
async fn reports(user: Principal) -> ([(&'static str, &'static str); 1], String) {
    (
        [("cache-control", "public, max-age=600")],
        format!("reports for {}", user.subject()),
    )
}

async fn app() -> (String, String) {
    let keys = ApiKeys::new(MemoryKeyStore::new()).header(HeaderName::from_static("x-service-key"));
    let key = keys.create(NewKey::new("billing")).unwrap().key;
    let router = Shieldwall::new()
        .api_keys(keys)
        .cors(Cors::origins([ORIGIN]))
        .routes(routes![reports])
        .build()
        .unwrap();
    (serve(router).await, key)
}

#[tokio::test]
async fn key_authenticated_responses_are_not_stored() {
    let (base, key) = app().await;
    let r = send(client().get(format!("{base}/reports")).header(HEADER, &key)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.text, "reports for billing");
    assert_eq!(
        r.header("cache-control"),
        Some("no-store"),
        "a key-authenticated answer must not be kept by any cache"
    );
    // A refused key's answer is not stored either.
    let r = send(
        client()
            .get(format!("{base}/reports"))
            .header(HEADER, "swk_nope_nope"),
    )
    .await;
    r.assert_problem(401, "invalid-token");
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn cors_preflight_allows_the_configured_header() {
    let (base, _) = app().await;
    let r = send(
        client()
            .request(reqwest::Method::OPTIONS, format!("{base}/reports"))
            .header("origin", ORIGIN)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "x-service-key"),
    )
    .await;
    assert_eq!(r.header("access-control-allow-origin"), Some(ORIGIN));
    let allowed: Vec<String> = r
        .header("access-control-allow-headers")
        .unwrap_or_default()
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    assert!(
        allowed.iter().any(|h| h == "x-service-key"),
        "a browser client cannot send the configured key header: {allowed:?}"
    );
    assert!(
        !allowed.iter().any(|h| h == "x-api-key"),
        "the app does not read X-API-Key, so it does not allow it: {allowed:?}"
    );
}
