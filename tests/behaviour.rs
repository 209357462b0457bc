//! Behaviour of every attribute key over real HTTP: exact status, headers and body.

mod common;

use axum::http::request::Parts;
use common::*;
use serde_json::json;
use shieldwall::prelude::*;

// ---------------------------------------------------------------- handlers

#[secure(get "/public", public)]
async fn public_route(who: Option<Principal>) -> String {
    format!("public:{}", who.is_some())
}

#[secure(get "/me", auth)]
async fn me(user: Principal) -> String {
    format!("me:{}", user.subject())
}

#[secure(get "/jwt-only", auth = "jwt")]
async fn jwt_only(user: Principal) -> String {
    user.subject().to_string()
}

#[secure(get "/admin", role = "admin")]
async fn admin_only() -> &'static str {
    "admin"
}

#[secure(get "/editors", roles = ["editor", "publisher"])]
async fn editors() -> &'static str {
    "editors"
}

#[secure(get "/viewer", role = "viewer")]
async fn viewer() -> &'static str {
    "viewer"
}

#[secure(get "/write", scope = "users:write")]
async fn write_scope() -> &'static str {
    "write"
}

#[secure(get "/read-write", scopes = ["users:read", "users:write"])]
async fn read_write() -> &'static str {
    "rw"
}

#[secure(get "/users/{id}", allow = any(role("admin"), owner("id")))]
async fn get_user(Path(id): Path<String>) -> String {
    format!("user:{id}")
}

#[secure(get "/not-banned", allow = all(scope("users:read"), not(role("banned"))))]
async fn not_banned() -> &'static str {
    "welcome"
}

fn is_staff(p: &Principal, parts: &Parts) -> bool {
    p.subject().ends_with("@staff") && parts.headers.contains_key("x-staff-badge")
}

#[secure(get "/staff", allow = is_staff)]
async fn staff() -> &'static str {
    "staff"
}

/// Typed roles: a misspelled variant does not compile.
enum AppRole {
    Auditor,
}

impl Role for AppRole {
    fn name(&self) -> &'static str {
        match self {
            AppRole::Auditor => "auditor",
        }
    }
}

#[secure(get "/audit", role = AppRole::Auditor)]
async fn audit() -> &'static str {
    "audit"
}

#[derive(Deserialize, Validate, Serialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    #[validate(length(min = 1, max = 50))]
    username: String,
    #[validate(email)]
    email: String,
    #[validate(range(min = 0, max = 150))]
    age: u8,
}

#[secure(post "/users", role = "admin", rate = "5/min")]
async fn create_user(user: Principal, Json(body): Json<NewUser>) -> Json<serde_json::Value> {
    Json(json!({ "by": user.subject(), "username": body.username }))
}

#[derive(Deserialize)]
struct Loose {
    name: String,
}

#[secure(post "/loose", auth, validate = false)]
async fn loose(Json(body): Json<Loose>) -> String {
    body.name
}

#[secure(post "/small", auth, body_limit = "1KiB", validate = false)]
async fn small(Json(body): Json<serde_json::Value>) -> String {
    body.to_string().len().to_string()
}

#[secure(post "/raw", auth, body_limit = "1KiB")]
async fn raw(body: String) -> String {
    body.len().to_string()
}

#[derive(Deserialize, Validate)]
struct Page {
    #[validate(range(min = 1, max = 100))]
    per_page: u32,
}

#[secure(get "/search", public, rate = "100/min per ip")]
async fn search(Query(q): Query<Page>) -> String {
    q.per_page.to_string()
}

#[derive(Deserialize, Validate)]
struct Slug {
    #[validate(length(min = 3))]
    slug: String,
}

#[secure(get "/posts/{slug}", public)]
async fn post(Path(p): Path<Slug>) -> String {
    p.slug
}

#[derive(Deserialize, Validate)]
struct Login {
    #[validate(length(min = 1))]
    username: String,
}

#[secure(post "/form", public)]
async fn form(Form(f): Form<Login>) -> String {
    f.username
}

// The same extractors under other names: validation is decided by the type, not the name.
use axum::Json as Renamed;
type Aliased<T> = axum::extract::Query<T>;
type AliasedPath<T> = axum::extract::Path<T>;
mod reexported {
    pub(crate) use axum::Form as Body;
}

#[secure(post "/renamed/users", role = "admin")]
async fn renamed_json(Renamed(body): Renamed<NewUser>) -> String {
    body.username
}

#[secure(get "/aliased/search", public)]
async fn aliased_query(q: Aliased<Page>) -> String {
    q.0.per_page.to_string()
}

#[secure(get "/aliased/posts/{slug}", public)]
async fn aliased_path(p: AliasedPath<Slug>) -> String {
    p.0.slug
}

#[secure(post "/reexported/form", public)]
async fn reexported_form(reexported::Body(f): reexported::Body<Login>) -> String {
    f.username
}

#[secure(get "/boom", auth)]
async fn boom() -> (axum::http::StatusCode, &'static str) {
    (
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        "database password is hunter2",
    )
}

#[derive(Deserialize)]
struct TenantClaims {
    tenant: String,
}

#[secure(get "/tenant", auth)]
async fn tenant(Claims(c): Claims<TenantClaims>) -> String {
    c.tenant
}

#[secure(get "/limited", auth, rate = ["2/min", "3/hour per ip"])]
async fn limited() -> &'static str {
    "ok"
}

#[secure(get "/global", public, rate = "3/min global")]
async fn global() -> &'static str {
    "ok"
}

async fn app() -> String {
    // Rate-limit values (`t=`, `Retry-After`) are asserted exactly: time stands still for
    // the limiter, however slowly a loaded machine runs the requests.
    let router = Shieldwall::new()
        .clock(shieldwall::clock::ManualClock::new())
        .jwt(jwt())
        .role_hierarchy(
            RoleHierarchy::new()
                .grant("admin", ["editor"])
                .grant("editor", ["viewer"]),
        )
        .routes(routes![
            public_route,
            me,
            jwt_only,
            admin_only,
            editors,
            viewer,
            write_scope,
            read_write,
            get_user,
            not_banned,
            staff,
            audit,
            create_user,
            loose,
            small,
            raw,
            search,
            post,
            form,
            renamed_json,
            aliased_query,
            aliased_path,
            reexported_form,
            boom,
            tenant,
            limited,
            global,
        ])
        .build()
        .expect("secure configuration");
    serve(router).await
}

fn get(base: &str, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
    let r = client().get(format!("{base}{path}"));
    match token {
        Some(t) => r.bearer_auth(t),
        None => r,
    }
}

// ---------------------------------------------------------------- public / auth

#[tokio::test]
async fn public_needs_no_credentials() {
    let base = app().await;
    let r = send(get(&base, "/public", None)).await;
    assert_eq!((r.status, r.text.as_str()), (200, "public:false"));
    // A public route ignores credentials entirely, even bad ones.
    let r = send(get(&base, "/public", Some("garbage.token.here"))).await;
    assert_eq!((r.status, r.text.as_str()), (200, "public:false"));
}

#[tokio::test]
async fn auth_requires_a_valid_token() {
    let base = app().await;
    let r = send(get(&base, "/me", None)).await;
    r.assert_problem(401, "unauthenticated");
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"api\""));
    assert_eq!(r.header("cache-control"), Some("no-store"));

    let r = send(get(&base, "/me", Some(&token("alice", &[], "")))).await;
    assert_eq!((r.status, r.text.as_str()), (200, "me:alice"));

    let expired = sign(json!({"iss": ISS, "aud": AUD, "sub": "alice", "exp": now() - 120}));
    let r = send(get(&base, "/me", Some(&expired))).await;
    r.assert_problem(401, "invalid-token");
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"The access token is invalid\""
        )
    );
    assert!(!r.text.contains("alice"), "no token contents in the body");

    let r = send(get(&base, "/jwt-only", Some(&token("carol", &[], "")))).await;
    assert_eq!((r.status, r.text.as_str()), (200, "carol"));
}

// ---------------------------------------------------------------- roles

#[tokio::test]
async fn role_and_roles() {
    let base = app().await;
    let r = send(get(&base, "/admin", Some(&token("bob", &["user"], "")))).await;
    r.assert_problem(403, "forbidden");
    assert_eq!(
        r.header("www-authenticate"),
        None,
        "no scope challenge for a role failure"
    );
    let r = send(get(&base, "/admin", Some(&token("alice", &["admin"], "")))).await;
    assert_eq!((r.status, r.text.as_str()), (200, "admin"));

    // roles = any of
    let r = send(get(
        &base,
        "/editors",
        Some(&token("p", &["publisher"], "")),
    ))
    .await;
    assert_eq!(r.status, 200);
    let r = send(get(&base, "/editors", Some(&token("v", &["viewer"], "")))).await;
    r.assert_problem(403, "forbidden");
}

#[tokio::test]
async fn role_hierarchy_applies() {
    let base = app().await;
    // admin → editor → viewer
    let admin = token("alice", &["admin"], "");
    assert_eq!(send(get(&base, "/viewer", Some(&admin))).await.status, 200);
    assert_eq!(send(get(&base, "/editors", Some(&admin))).await.status, 200);
    // but not upwards
    let viewer = token("v", &["viewer"], "");
    assert_eq!(send(get(&base, "/admin", Some(&viewer))).await.status, 403);
}

#[tokio::test]
async fn typed_roles() {
    let base = app().await;
    assert_eq!(
        send(get(&base, "/audit", Some(&token("a", &["auditor"], ""))))
            .await
            .status,
        200
    );
    assert_eq!(
        send(get(&base, "/audit", Some(&token("a", &["admin"], ""))))
            .await
            .status,
        403
    );
}

// ---------------------------------------------------------------- scopes

#[tokio::test]
async fn scopes_all_of_with_challenge() {
    let base = app().await;
    let r = send(get(&base, "/write", Some(&token("a", &[], "users:read")))).await;
    r.assert_problem(403, "forbidden");
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"users:write\"")
    );
    assert_eq!(
        send(get(&base, "/write", Some(&token("a", &[], "users:write"))))
            .await
            .status,
        200
    );

    let r = send(get(
        &base,
        "/read-write",
        Some(&token("a", &[], "users:write")),
    ))
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            "Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"users:read users:write\""
        )
    );
    let both = token("a", &[], "users:read users:write");
    assert_eq!(
        send(get(&base, "/read-write", Some(&both))).await.status,
        200
    );
}

// ---------------------------------------------------------------- allow

#[tokio::test]
async fn allow_owner_or_admin() {
    let base = app().await;
    let bob = token("bob", &["user"], "");
    let r = send(get(&base, "/users/bob", Some(&bob))).await;
    assert_eq!((r.status, r.text.as_str()), (200, "user:bob"));
    send(get(&base, "/users/alice", Some(&bob)))
        .await
        .assert_problem(403, "forbidden");
    let admin = token("root", &["admin"], "");
    assert_eq!(
        send(get(&base, "/users/alice", Some(&admin))).await.status,
        200
    );
    // percent-encoding does not fool the owner comparison
    assert_eq!(
        send(get(&base, "/users/b%6Fb", Some(&bob))).await.status,
        200
    );
    assert_eq!(
        send(get(&base, "/users/bob%20", Some(&bob))).await.status,
        403
    );
}

#[tokio::test]
async fn allow_all_and_not() {
    let base = app().await;
    assert_eq!(
        send(get(
            &base,
            "/not-banned",
            Some(&token("a", &[], "users:read"))
        ))
        .await
        .status,
        200
    );
    let banned = token("a", &["banned"], "users:read");
    assert_eq!(
        send(get(&base, "/not-banned", Some(&banned))).await.status,
        403
    );
    assert_eq!(
        send(get(&base, "/not-banned", Some(&token("a", &[], ""))))
            .await
            .status,
        403
    );
}

#[tokio::test]
async fn allow_predicate() {
    let base = app().await;
    let staff_token = token("eve@staff", &[], "");
    let r = send(get(&base, "/staff", Some(&staff_token)).header("x-staff-badge", "1")).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        send(get(&base, "/staff", Some(&staff_token))).await.status,
        403
    );
    let outsider = token("eve@example", &[], "");
    let r = send(get(&base, "/staff", Some(&outsider)).header("x-staff-badge", "1")).await;
    assert_eq!(r.status, 403);
}

// ---------------------------------------------------------------- validation

fn post_json(base: &str, path: &str, token: &str, body: &str) -> reqwest::RequestBuilder {
    client()
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string())
}

#[tokio::test]
async fn json_validation_lists_each_field() {
    let base = app().await;
    let admin = token("alice", &["admin"], "");
    let r = send(post_json(
        &base,
        "/users",
        &admin,
        r#"{"username":"","email":"nope","age":300}"#,
    ))
    .await;
    // age 300 does not fit u8 → shape error before the validator runs
    r.assert_problem(422, "invalid");
    assert_eq!(r.json()["errors"][0]["field"], "age");
    assert_eq!(r.json()["errors"][0]["code"], "type");

    let r = send(post_json(
        &base,
        "/users",
        &admin,
        r#"{"username":"","email":"nope","age":151}"#,
    ))
    .await;
    r.assert_problem(422, "invalid");
    assert_eq!(
        r.json()["errors"],
        json!([
            {"field": "age", "code": "range", "message": "must be between 0 and 150"},
            {"field": "email", "code": "email", "message": "must be a valid email address"},
            {"field": "username", "code": "length", "message": "length must be between 1 and 50"},
        ])
    );

    let r = send(post_json(
        &base,
        "/users",
        &admin,
        r#"{"username":"x","email":"x@example.com","age":3,"admin":true}"#,
    ))
    .await;
    r.assert_problem(422, "invalid");
    assert_eq!(r.json()["errors"][0]["code"], "unknown");

    // 5/min per user on this route: continue as another admin
    let admin = token("root", &["admin"], "");
    let r = send(post_json(&base, "/users", &admin, r#"{"username":"x","#)).await;
    r.assert_problem(400, "unparseable");

    let r = send(
        client()
            .post(format!("{base}/users"))
            .bearer_auth(&admin)
            .header("content-type", "text/plain")
            .body(r#"{"username":"x","email":"x@example.com","age":3}"#),
    )
    .await;
    r.assert_problem(415, "unsupported-media-type");

    let r = send(post_json(
        &base,
        "/users",
        &admin,
        r#"{"username":"x","email":"x@example.com","age":3}"#,
    ))
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json(), json!({"by": "root", "username": "x"}));
}

#[tokio::test]
async fn authentication_happens_before_the_body_is_read() {
    let base = app().await;
    // Unauthenticated garbage body: 401, not 400 — the body is never parsed.
    let r = send(
        client()
            .post(format!("{base}/users"))
            .header("content-type", "application/json")
            .body("{{{{"),
    )
    .await;
    r.assert_problem(401, "unauthenticated");
    // Authenticated but not an admin: 403, not 422.
    let r = send(post_json(
        &base,
        "/users",
        &token("bob", &["user"], ""),
        r#"{"username":""}"#,
    ))
    .await;
    r.assert_problem(403, "forbidden");
}

#[tokio::test]
async fn validate_false_opts_out() {
    let base = app().await;
    let t = token("a", &[], "");
    let r = send(post_json(&base, "/loose", &t, r#"{"name":""}"#)).await;
    assert_eq!((r.status, r.text.as_str()), (200, ""));
}

#[tokio::test]
async fn query_path_and_form_are_validated() {
    let base = app().await;
    assert_eq!(
        send(get(&base, "/search?per_page=10", None)).await.text,
        "10"
    );
    let r = send(get(&base, "/search?per_page=1000", None)).await;
    r.assert_problem(422, "invalid");
    assert_eq!(r.json()["errors"][0]["field"], "per_page");
    let r = send(get(&base, "/search?per_page=many", None)).await;
    r.assert_problem(422, "invalid");
    assert_eq!(r.json()["errors"][0]["field"], "per_page");

    assert_eq!(send(get(&base, "/posts/hello", None)).await.text, "hello");
    let r = send(get(&base, "/posts/hi", None)).await;
    r.assert_problem(422, "invalid");
    assert_eq!(r.json()["errors"][0]["field"], "slug");

    let r = send(
        client()
            .post(format!("{base}/form"))
            .form(&[("username", "ann")]),
    )
    .await;
    assert_eq!((r.status, r.text.as_str()), (200, "ann"));
    let r = send(
        client()
            .post(format!("{base}/form"))
            .form(&[("username", "")]),
    )
    .await;
    r.assert_problem(422, "invalid");
}

#[tokio::test]
async fn renamed_aliased_and_reexported_extractors_are_validated() {
    let base = app().await;
    let admin = token("alice", &["admin"], "");

    // `use axum::Json as Renamed`: the same rules, the same 422 with one entry per field.
    let r = send(post_json(
        &base,
        "/renamed/users",
        &admin,
        r#"{"username":"","email":"nope","age":151}"#,
    ))
    .await;
    r.assert_problem(422, "invalid");
    assert_eq!(
        r.json()["errors"],
        json!([
            {"field": "age", "code": "range", "message": "must be between 0 and 150"},
            {"field": "email", "code": "email", "message": "must be a valid email address"},
            {"field": "username", "code": "length", "message": "length must be between 1 and 50"},
        ])
    );
    // A body of the wrong shape is the same 422 as through `Json`, field named.
    let r = send(post_json(
        &base,
        "/renamed/users",
        &admin,
        r#"{"username":"x","email":"x@example.com","age":3,"admin":true}"#,
    ))
    .await;
    r.assert_problem(422, "invalid");
    assert_eq!(r.json()["errors"][0]["code"], "unknown");
    let r = send(post_json(
        &base,
        "/renamed/users",
        &admin,
        r#"{"username":"x","email":"x@example.com","age":3}"#,
    ))
    .await;
    assert_eq!((r.status, r.text.as_str()), (200, "x"));

    // `type Aliased<T> = Query<T>`
    let r = send(get(&base, "/aliased/search?per_page=1000", None)).await;
    r.assert_problem(422, "invalid");
    assert_eq!(r.json()["errors"][0]["field"], "per_page");
    let r = send(get(&base, "/aliased/search?per_page=many", None)).await;
    r.assert_problem(422, "invalid");
    assert_eq!(r.json()["errors"][0]["field"], "per_page");
    let r = send(get(&base, "/aliased/search?per_page=10", None)).await;
    assert_eq!((r.status, r.text.as_str()), (200, "10"));

    // `type AliasedPath<T> = Path<T>`
    let r = send(get(&base, "/aliased/posts/hi", None)).await;
    r.assert_problem(422, "invalid");
    assert_eq!(r.json()["errors"][0]["field"], "slug");
    let r = send(get(&base, "/aliased/posts/hello", None)).await;
    assert_eq!((r.status, r.text.as_str()), (200, "hello"));

    // `pub use axum::Form as Body` in a module
    let form = |v: &str| {
        client()
            .post(format!("{base}/reexported/form"))
            .form(&[("username", v.to_string())])
    };
    let r = send(form("")).await;
    r.assert_problem(422, "invalid");
    assert_eq!(r.json()["errors"][0]["field"], "username");
    let r = send(form("ann")).await;
    assert_eq!((r.status, r.text.as_str()), (200, "ann"));
}

// ---------------------------------------------------------------- body limits

#[tokio::test]
async fn body_limit_413() {
    let base = app().await;
    let t = token("a", &[], "");
    let big = format!("{{\"k\":\"{}\"}}", "x".repeat(2000));
    let r = send(post_json(&base, "/small", &t, &big)).await;
    r.assert_problem(413, "payload-too-large");
    let r = send(post_json(&base, "/small", &t, r#"{"k":"v"}"#)).await;
    assert_eq!(r.status, 200);

    // Streamed body without Content-Length: still cut at the limit.
    let chunks: Vec<Result<String, std::io::Error>> =
        (0..20).map(|_| Ok("y".repeat(100))).collect();
    let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let r = send(
        client()
            .post(format!("{base}/raw"))
            .bearer_auth(&t)
            .body(body),
    )
    .await;
    r.assert_problem(413, "payload-too-large");
    let r = send(
        client()
            .post(format!("{base}/raw"))
            .bearer_auth(&t)
            .body("z".repeat(1000)),
    )
    .await;
    assert_eq!((r.status, r.text.as_str()), (200, "1000"));

    // The default limit is 64 KiB.
    let huge = format!(
        "{{\"username\":\"{}\",\"email\":\"a@b.co\",\"age\":1}}",
        "x".repeat(70 * 1024)
    );
    let r = send(post_json(
        &base,
        "/users",
        &token("alice", &["admin"], ""),
        &huge,
    ))
    .await;
    r.assert_problem(413, "payload-too-large");
}

// ---------------------------------------------------------------- rate

#[tokio::test]
async fn rate_limit_429_with_headers() {
    let base = app().await;
    let admin = token("alice", &["admin"], "");
    let body = r#"{"username":"x","email":"x@example.com","age":3}"#;
    for i in 0..5 {
        let r = send(post_json(&base, "/users", &admin, body)).await;
        assert_eq!(r.status, 200, "request {i}");
        assert_eq!(r.header("ratelimit-policy"), Some("\"5/min\";q=5;w=60"));
        assert_eq!(
            r.header("ratelimit"),
            Some(format!("\"5/min\";r={};t={}", 4 - i, 12 * (i + 1)).as_str())
        );
    }
    let r = send(post_json(&base, "/users", &admin, body)).await;
    r.assert_problem(429, "rate-limited");
    assert_eq!(r.header("retry-after"), Some("12"));
    assert_eq!(r.header("ratelimit"), Some("\"5/min\";r=0;t=12"));
    assert_eq!(r.header("ratelimit-policy"), Some("\"5/min\";q=5;w=60"));

    // per user: another admin has their own budget
    let other = token("root", &["admin"], "");
    assert_eq!(
        send(post_json(&base, "/users", &other, body)).await.status,
        200
    );
}

#[tokio::test]
async fn rate_lists_and_global() {
    let base = app().await;
    let t = token("a", &[], "");
    let r = send(get(&base, "/limited", Some(&t))).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("ratelimit-policy"),
        Some("\"2/min\";q=2;w=60, \"3/hour per ip\";q=3;w=3600")
    );
    assert_eq!(
        r.header("ratelimit"),
        Some("\"3/hour per ip\";r=2;t=1200, \"2/min\";r=1;t=30")
    );
    assert_eq!(send(get(&base, "/limited", Some(&t))).await.status, 200);
    let r = send(get(&base, "/limited", Some(&t))).await;
    r.assert_problem(429, "rate-limited");
    // the per-ip limit was charged even by the refused request: 3/hour is now spent too
    let other = token("b", &[], "");
    let r = send(get(&base, "/limited", Some(&other))).await;
    r.assert_problem(429, "rate-limited");
    assert_eq!(r.header("ratelimit"), Some("\"3/hour per ip\";r=0;t=1200"));
    assert_eq!(r.header("retry-after"), Some("1200"));

    for _ in 0..3 {
        assert_eq!(send(get(&base, "/global", None)).await.status, 200);
    }
    send(get(&base, "/global", None))
        .await
        .assert_problem(429, "rate-limited");
}

#[tokio::test]
async fn failed_authentication_counts_against_the_ip_limit() {
    let base = app().await;
    // 3/hour per ip runs before authentication: bad tokens spend it.
    for _ in 0..3 {
        send(get(&base, "/limited", Some("bad.token.value")))
            .await
            .assert_problem(401, "invalid-token");
    }
    let good = token("a", &[], "");
    send(get(&base, "/limited", Some(&good)))
        .await
        .assert_problem(429, "rate-limited");
}

// ---------------------------------------------------------------- error contract

#[tokio::test]
async fn handler_errors_follow_the_contract() {
    let base = app().await;
    let r = send(get(&base, "/boom", Some(&token("a", &[], "")))).await;
    r.assert_problem(500, "internal");
    assert!(!r.text.contains("hunter2"));
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let base = app().await;
    send(get(&base, "/nowhere", None))
        .await
        .assert_problem(404, "not-found");
    let r = send(client().delete(format!("{base}/public"))).await;
    r.assert_problem(405, "method-not-allowed");
    assert_eq!(r.header("allow"), Some("GET,HEAD"));
}

#[tokio::test]
async fn custom_claims_reach_the_handler() {
    let base = app().await;
    let t = sign(json!({"iss": ISS, "aud": AUD, "sub": "a", "exp": now() + 60, "tenant": "acme"}));
    let r = send(get(&base, "/tenant", Some(&t))).await;
    assert_eq!((r.status, r.text.as_str()), (200, "acme"));
    // claims that do not fit the type: 401 invalid_token
    let t = token("a", &[], "");
    send(get(&base, "/tenant", Some(&t)))
        .await
        .assert_problem(401, "invalid-token");
}

// ---------------------------------------------------------------- plain async fns

#[tokio::test]
async fn handlers_stay_callable_as_plain_functions() {
    use shieldwall::testing::as_enforced;
    let admin = Principal::new("alice").with_roles(["admin"]);
    let Json(v) = as_enforced(create_user(
        admin,
        Json(NewUser {
            username: "u".into(),
            email: "u@example.com".into(),
            age: 1,
        }),
    ))
    .await;
    assert_eq!(v, json!({"by": "alice", "username": "u"}));
    assert_eq!(as_enforced(get_user(Path("bob".into()))).await, "user:bob");
    assert_eq!(as_enforced(me(Principal::new("z"))).await, "me:z");
}
