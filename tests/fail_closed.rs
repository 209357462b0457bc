//! Enforcement travels with the handler: mounted without the shieldwall runtime, a
//! secured handler fails closed (500 or a dropped connection, reason logged) and never
//! serves; its body runs only when its own route calls it, or a unit test arms the call.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
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

// ---------------------------------------------------------------- the bare function

// Every kind of secured handler records that its body ran; mounted as the bare function on
// a plain `Router`, none of them may run or answer 2xx, whatever the caller presents.

static RAN_PLAIN: AtomicUsize = AtomicUsize::new(0);
static RAN_PRINCIPAL: AtomicUsize = AtomicUsize::new(0);
static RAN_STATE: AtomicUsize = AtomicUsize::new(0);
static RAN_BODY: AtomicUsize = AtomicUsize::new(0);
static RAN_ALL: AtomicUsize = AtomicUsize::new(0);
static RAN_PUBLIC: AtomicUsize = AtomicUsize::new(0);

#[derive(Clone)]
struct Db {
    name: &'static str,
}

#[derive(Deserialize, Validate)]
struct NewUser {
    #[validate(length(min = 1, max = 50))]
    username: String,
}

/// No `Principal`, no arguments: nothing but the attribute stands between a caller and it.
#[secure(post "/plain", role = "admin")]
async fn admin_plain() -> StatusCode {
    RAN_PLAIN.fetch_add(1, SeqCst);
    StatusCode::CREATED
}

#[secure(post "/principal", role = "admin")]
async fn admin_principal(user: Principal) -> String {
    RAN_PRINCIPAL.fetch_add(1, SeqCst);
    user.subject().to_string()
}

#[secure(post "/state", role = "admin")]
async fn admin_state(State(db): State<Db>) -> &'static str {
    RAN_STATE.fetch_add(1, SeqCst);
    db.name
}

#[secure(post "/body", role = "admin")]
async fn admin_body(Json(user): Json<NewUser>) -> (StatusCode, String) {
    RAN_BODY.fetch_add(1, SeqCst);
    (StatusCode::CREATED, user.username)
}

#[secure(post "/all/{org}", role = "admin", rate = "100/min")]
async fn admin_all(
    user: Principal,
    State(db): State<Db>,
    Path(org): Path<String>,
    Json(body): Json<NewUser>,
) -> String {
    RAN_ALL.fetch_add(1, SeqCst);
    format!("{} {} {org} {}", user.subject(), db.name, body.username)
}

/// Public, but limited to one call a minute per IP: served bare, the limit would be gone.
#[secure(post "/public", public, rate = "1/min per ip")]
async fn public_limited() -> &'static str {
    RAN_PUBLIC.fetch_add(1, SeqCst);
    "ok"
}

fn ran() -> [usize; 6] {
    [
        RAN_PLAIN.load(SeqCst),
        RAN_PRINCIPAL.load(SeqCst),
        RAN_STATE.load(SeqCst),
        RAN_BODY.load(SeqCst),
        RAN_ALL.load(SeqCst),
        RAN_PUBLIC.load(SeqCst),
    ]
}

/// Send, and return the status, or `None` when the server dropped the connection instead
/// of answering.
async fn status_of(req: reqwest::RequestBuilder) -> Option<u16> {
    match req.send().await {
        Ok(r) => Some(r.status().as_u16()),
        Err(e) => {
            assert!(!e.is_timeout(), "{e}");
            None
        }
    }
}

const PATHS: [&str; 6] = [
    "/plain",
    "/principal",
    "/state",
    "/body",
    "/all/acme",
    "/public",
];

async fn call_each(base: &str) -> Vec<(&'static str, Option<u16>)> {
    let admin = token("alice", &["admin"], "");
    let mut out = Vec::new();
    for path in PATHS {
        let status = status_of(
            client()
                .post(format!("{base}{path}"))
                .bearer_auth(&admin)
                .json(&serde_json::json!({ "username": "mallory" })),
        )
        .await;
        out.push((path, status));
    }
    out
}

/// One test owns the counters, so that no other test's calls can move them.
#[tokio::test]
async fn secured_functions_never_run_outside_their_route() {
    logs();
    let before = ran();

    // 1. The bare functions on a plain Router: no 2xx, and not one body ran.
    let router: Router = Router::new()
        .route("/plain", post(admin_plain))
        .route("/principal", post(admin_principal))
        .route("/state", post(admin_state))
        .route("/body", post(admin_body))
        .route("/all/{org}", post(admin_all))
        .route("/public", post(public_limited))
        .with_state(Db { name: "db" });
    let base = serve(router).await;
    for (path, status) in call_each(&base).await {
        assert!(
            !status.is_some_and(|s| (200..300).contains(&s)),
            "{path} served {status:?} outside its #[secure] route"
        );
    }
    assert_eq!(ran(), before, "a secured body ran outside its route");
    let log = logged();
    for handler in ["admin_plain", "admin_state", "admin_body", "public_limited"] {
        assert!(
            log.lines().any(|l| l.contains("shieldwall::audit")
                && l.contains(handler)
                && l.contains("outside its #[secure] route")),
            "no audit line for {handler}: {log}"
        );
    }

    // 2. The same functions through Shieldwall serve, so the counters can move: the
    //    assertion above is not vacuous.
    let router = Shieldwall::with_state(Db { name: "db" })
        .jwt(jwt())
        .routes(routes![
            admin_plain,
            admin_principal,
            admin_state,
            admin_body,
            admin_all,
            public_limited
        ])
        .build()
        .unwrap();
    let base = serve(router).await;
    for (path, status) in call_each(&base).await {
        assert!(
            status.is_some_and(|s| (200..300).contains(&s)),
            "{path} answered {status:?} through Shieldwall"
        );
    }
    let after = ran();
    for (i, path) in PATHS.iter().enumerate() {
        assert_eq!(after[i], before[i] + 1, "{path}");
    }
}

// ---------------------------------------------------------------- calls between handlers

static RAN_INNER: AtomicUsize = AtomicUsize::new(0);
static RAN_OUTER: AtomicUsize = AtomicUsize::new(0);

/// Admins only.
#[secure(post "/inner", role = "admin")]
async fn inner() -> &'static str {
    RAN_INNER.fetch_add(1, SeqCst);
    "admin data"
}

/// Public, and reuses `inner` by calling it: `inner`'s policy must not be skipped.
#[secure(get "/outer", public)]
async fn outer() -> &'static str {
    RAN_OUTER.fetch_add(1, SeqCst);
    inner().await
}

#[tokio::test]
async fn a_secured_function_called_from_another_is_refused() {
    logs();
    let router = Shieldwall::new()
        .jwt(jwt())
        .routes(routes![inner, outer])
        .build()
        .unwrap();
    let base = serve(router).await;
    let (inner_before, outer_before) = (RAN_INNER.load(SeqCst), RAN_OUTER.load(SeqCst));
    let r = send(client().get(format!("{base}/outer"))).await;
    r.assert_problem(500, "internal");
    assert!(!r.text.contains("admin data"));
    assert_eq!(RAN_OUTER.load(SeqCst), outer_before + 1);
    assert_eq!(RAN_INNER.load(SeqCst), inner_before, "inner's body ran");
    assert!(
        logged()
            .lines()
            .any(|l| l.contains("shieldwall::audit") && l.contains("`inner` outside")),
        "{}",
        logged()
    );
    // Through its own route, `inner` serves its admins.
    let r = send(client().post(format!("{base}/inner")).bearer_auth(token(
        "alice",
        &["admin"],
        "",
    )))
    .await;
    assert_eq!((r.status, r.text.as_str()), (200, "admin data"));
    assert_eq!(RAN_INNER.load(SeqCst), inner_before + 1);
}

// ---------------------------------------------------------------- unit tests

static RAN_UNIT: AtomicUsize = AtomicUsize::new(0);

#[secure(post "/unit", role = "admin")]
async fn unit(user: Principal, Json(body): Json<NewUser>) -> String {
    RAN_UNIT.fetch_add(1, SeqCst);
    format!("{} created {}", user.subject(), body.username)
}

#[tokio::test]
async fn unit_tests_arm_the_call_with_as_enforced() {
    let before = RAN_UNIT.load(SeqCst);
    let admin = Principal::new("alice").with_roles(["admin"]);
    let body = NewUser {
        username: "bob".into(),
    };
    let out = shieldwall::testing::as_enforced(unit(admin.clone(), Json(body))).await;
    assert_eq!(out, "alice created bob");
    assert_eq!(RAN_UNIT.load(SeqCst), before + 1);

    // Without it, the direct call refuses before its body runs.
    let body = NewUser {
        username: "eve".into(),
    };
    let err = tokio::spawn(unit(admin, Json(body))).await.unwrap_err();
    assert!(err.is_panic());
    assert_eq!(RAN_UNIT.load(SeqCst), before + 1);
}
