//! The route policy of a `#[secure]` route, on the runtime's own code.
//!
//! `policy/admit` is the whole per-request policy check but signature verification: a
//! principal as a verified token yields it, the role check (hierarchy applied), the scope
//! check, the per-user GCRA check on the in-memory store, and storing the principal for the
//! handler. `policy/finish` is what every admitted response then pays (error contract,
//! RateLimit fields); `policy/guard_enter` is the whole `Guard::enter`, JWT included, for
//! scale. The route is built by a real `Shieldwall::build()` (`bench_support::RouteCheck`).
//!
//! `entry/*` is what a `#[secure]` function's refusal to run outside its route adds to the
//! request path: `entry/plain_fn` calls an undecorated async fn, `entry/secure_fn` the same
//! body under `#[secure]`, armed by `__private::enforce_entry` exactly as the generated
//! handler arms it (a task-local scope around the call, the check in the body). The
//! difference between the two is the cost.

use std::hint::black_box;

use axum::http::{Request, StatusCode, header, request::Parts};
use axum::response::IntoResponse;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use shieldwall::prelude::*;
use shieldwall_runtime::bench_support::{RouteCheck, ready};

const SECRET: &[u8] = b"bench-secret-0123456789abcdef-0123456789";
const ISSUER: &str = "https://auth.bench.test";
const AUDIENCE: &str = "bench-api";

#[derive(Deserialize, Validate)]
#[serde(deny_unknown_fields)]
struct NewUser {
    #[validate(length(min = 1, max = 50))]
    username: String,
}

/// The route under measurement: a role, a scope, and a per-user quota that never refuses.
#[secure(post "/users", role = "admin", scope = "users:write", rate = "4000000000/1s")]
async fn create_user(Json(body): Json<NewUser>) -> (StatusCode, String) {
    (StatusCode::CREATED, body.username)
}

/// The cheapest handler, so that the entry check is all that differs from `plain_ping`.
#[secure(get "/ping", public)]
async fn ping() -> &'static str {
    "pong"
}

/// The same body, undecorated.
async fn plain_ping() -> &'static str {
    "pong"
}

fn token() -> String {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = serde_json::json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "roles": ["admin"],
        "scope": "users:read users:write", "iat": now, "exp": now + 86_400,
    });
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    h.typ = Some("at+jwt".into());
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET).expect("an HMAC key");
    jsonwebtoken::encode(&h, &claims, &key).expect("a signed token")
}

fn request(token: &str) -> Request<axum::body::Body> {
    Request::post("/users")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(axum::body::Body::from(r#"{"username":"alice"}"#))
        .expect("a request")
}

fn parts() -> Parts {
    Request::post("/users")
        .body(())
        .expect("a request")
        .into_parts()
        .0
}

#[allow(clippy::result_large_err)] // the runtime's refusal is the response itself
fn policy(c: &mut Criterion) {
    let app = Shieldwall::new().jwt(
        Jwt::hs256(SECRET.to_vec())
            .issuer(ISSUER)
            .audience(AUDIENCE),
    );
    let routes: Vec<shieldwall::SecureRoute<()>> = routes![create_user];
    let route = routes.into_iter().next().expect("one route");
    let check = RouteCheck::new(app, route).expect("a valid app");
    let token = token();
    // The principal exactly as verification yields it (claims, roles, scopes, credential).
    let (req_parts, _) = request(&token).into_parts();
    let principal = ready(check.authenticate(&req_parts)).expect("a valid token");
    assert!(check.admit(principal.clone(), &mut parts()).is_ok());

    c.bench_function("policy/admit", |b| {
        b.iter_batched_ref(
            parts,
            |parts| check.admit(black_box(principal.clone()), parts),
            BatchSize::SmallInput,
        )
    });

    c.bench_function("policy/finish", |b| {
        b.iter_batched(
            || {
                let fin = check.admit(principal.clone(), &mut parts()).ok();
                let res = (StatusCode::CREATED, "alice").into_response();
                (fin.expect("admitted"), res)
            },
            |(fin, res)| fin.finish(res),
            BatchSize::SmallInput,
        )
    });

    let guard = check.guard();
    c.bench_function("policy/guard_enter", |b| {
        b.iter_batched(
            || request(&token),
            |req| {
                let entered = ready(guard.enter("create_user", req));
                assert!(entered.is_ok());
                entered
            },
            BatchSize::SmallInput,
        )
    });
}

fn entry(c: &mut Criterion) {
    c.bench_function("entry/plain_fn", |b| {
        b.iter(|| ready(black_box(plain_ping())))
    });
    c.bench_function("entry/secure_fn", |b| {
        b.iter(|| ready(shieldwall::__private::enforce_entry(black_box(ping()))))
    });
}

criterion_group!(benches, policy, entry);
criterion_main!(benches);
