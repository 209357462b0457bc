//! Enforcement travels with the handler: mounted without the shieldwall runtime, a
//! secured handler fails closed (500, reason logged) and never serves.

mod common;

use axum::Router;
use axum::routing::get;
use common::*;
use shieldwall::prelude::*;

#[secure(get "/me", auth)]
async fn me(user: Principal) -> String {
    format!("secret data of {}", user.subject())
}

#[secure(get "/status", public)]
async fn status(who: Option<Principal>) -> String {
    format!(
        "status for {}",
        who.map(|p| p.subject().to_string()).unwrap_or_default()
    )
}

#[tokio::test]
async fn generated_route_without_runtime_fails_closed() {
    logs();
    let route = routes![me].pop().unwrap();
    let router: Router = Router::new().route("/me", route.into_unenforced());
    let base = serve(router).await;
    // Even with a perfectly valid token, nothing is served.
    let r = send(
        client()
            .get(format!("{base}/me"))
            .bearer_auth(token("alice", &[], "")),
    )
    .await;
    r.assert_problem(500, "internal");
    assert!(!r.text.contains("secret data"));
    let r = send(client().get(format!("{base}/me"))).await;
    r.assert_problem(500, "internal");
    assert!(
        logged().contains("mounted outside Shieldwall::build()"),
        "{}",
        logged()
    );
}

#[tokio::test]
async fn bare_function_on_a_plain_router_fails_closed() {
    logs();
    // The raw async fn, mounted directly: its Principal extractor refuses to run
    // outside enforcement.
    let router: Router = Router::new()
        .route("/me", get(me))
        .route("/status", get(status));
    let base = serve(router).await;
    let r = send(
        client()
            .get(format!("{base}/me"))
            .bearer_auth(token("alice", &[], "")),
    )
    .await;
    r.assert_problem(500, "internal");
    assert!(!r.text.contains("secret data"));
    let r = send(client().get(format!("{base}/status"))).await;
    r.assert_problem(500, "internal");
    assert!(
        logged().contains("not reached through its #[secure] route"),
        "{}",
        logged()
    );
}

#[tokio::test]
async fn the_same_handlers_serve_through_shieldwall() {
    logs();
    let router = Shieldwall::new()
        .jwt(jwt())
        .routes(routes![me, status])
        .build()
        .unwrap();
    let base = serve(router).await;
    let r = send(
        client()
            .get(format!("{base}/me"))
            .bearer_auth(token("alice", &[], "")),
    )
    .await;
    assert_eq!((r.status, r.text.as_str()), (200, "secret data of alice"));
    let r = send(client().get(format!("{base}/status"))).await;
    assert_eq!((r.status, r.text.as_str()), (200, "status for "));
}

#[test]
fn refused_configuration_is_an_audit_event_without_the_secret() {
    logs();
    let weak = "weak-secret-value-31-bytes-long";
    assert_eq!(weak.len(), 31);
    let e = Shieldwall::new()
        .jwt(Jwt::hs256(weak.as_bytes().to_vec()))
        .routes(routes![me])
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("32"), "{e}");
    let log = logged();
    let line = log
        .lines()
        .find(|l| l.contains("configuration_refused"))
        .unwrap_or_else(|| panic!("no configuration_refused event in {log}"));
    assert!(line.contains("shieldwall::audit"), "{line}");
    assert!(!log.contains(weak), "the secret reached the log");
}
