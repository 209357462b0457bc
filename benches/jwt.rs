//! JWT verification: shieldwall's path against calling jsonwebtoken directly, on the same
//! HS256 token with the same claim checks (signature, `exp`, `nbf`, `iss`, `aud`).
//!
//! - `jwt/shieldwall/verify`: `JwtVerifier::verify` on a token it has verified before, as
//!   every request after a client's first: the verified-token cache (`exp`/`nbf` and the
//!   key re-checked);
//! - `jwt/shieldwall/verify_uncached`: the same with the cache off (`Jwt::token_cache(0)`):
//!   header checks, key lookup, `typ`, signature, strict claims without duplicate keys,
//!   refresh-token refusal, the principal — what a client's first request costs;
//! - `jwt/shieldwall/authenticate`: the same from the request's `Authorization` header, as
//!   a route authenticates;
//! - `jwt/jsonwebtoken/typed`: `decode::<Claims>` into a two-field struct, as a hand-built
//!   extractor does (`examples/load_b_handbuilt.rs`);
//! - `jwt/jsonwebtoken/value`: `decode::<serde_json::Value>`, every claim kept as ours does.

use std::hint::black_box;

use axum::http::{Request, StatusCode, header};
use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use shieldwall::prelude::*;
use shieldwall_runtime::bench_support::{RouteCheck, jwt_verifier, ready};

const SECRET: &[u8] = b"bench-secret-0123456789abcdef-0123456789";
const ISSUER: &str = "https://auth.bench.test";
const AUDIENCE: &str = "bench-api";

#[secure(get "/me", role = "admin")]
async fn me() -> StatusCode {
    StatusCode::OK
}

#[derive(Deserialize)]
struct Claims {
    #[allow(dead_code)]
    sub: String,
    roles: Vec<String>,
}

fn token() -> String {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = serde_json::json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "roles": ["admin"],
        "scope": "users:read users:write", "iat": now, "exp": now + 86_400,
    });
    let mut h = jsonwebtoken::Header::new(Algorithm::HS256);
    h.typ = Some("at+jwt".into());
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET).expect("an HMAC key");
    jsonwebtoken::encode(&h, &claims, &key).expect("a signed token")
}

fn jwt() -> Jwt {
    Jwt::hs256(SECRET.to_vec())
        .issuer(ISSUER)
        .audience(AUDIENCE)
}

fn jwt_benches(c: &mut Criterion) {
    let token = token();

    let verifier = jwt_verifier(&jwt()).expect("a valid configuration");
    assert!(verifier.verify(&token).is_ok());
    c.bench_function("jwt/shieldwall/verify", |b| {
        b.iter(|| verifier.verify(black_box(&token)))
    });

    let uncached = jwt_verifier(&jwt().token_cache(0)).expect("a valid configuration");
    assert!(uncached.verify(&token).is_ok());
    c.bench_function("jwt/shieldwall/verify_uncached", |b| {
        b.iter(|| uncached.verify(black_box(&token)))
    });

    let routes: Vec<shieldwall::SecureRoute<()>> = routes![me];
    let route = routes.into_iter().next().expect("one route");
    let check = RouteCheck::new(Shieldwall::new().jwt(jwt()), route).expect("a valid app");
    let (parts, _) = Request::get("/me")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(())
        .expect("a request")
        .into_parts();
    assert!(ready(check.authenticate(&parts)).is_ok());
    c.bench_function("jwt/shieldwall/authenticate", |b| {
        b.iter(|| ready(check.authenticate(black_box(&parts))))
    });

    let key = DecodingKey::from_secret(SECRET).expect("an HMAC key");
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    let typed = jsonwebtoken::decode::<Claims>(&token, &key, &validation).expect("valid");
    assert_eq!(typed.claims.roles, ["admin"]);
    c.bench_function("jwt/jsonwebtoken/typed", |b| {
        b.iter(|| jsonwebtoken::decode::<Claims>(black_box(&token), &key, &validation))
    });
    c.bench_function("jwt/jsonwebtoken/value", |b| {
        b.iter(|| jsonwebtoken::decode::<serde_json::Value>(black_box(&token), &key, &validation))
    });
}

criterion_group!(benches, jwt_benches);
criterion_main!(benches);
