//! Server B of `bench/load.sh`: the endpoint of `load_s_shieldwall.rs` assembled by hand,
//! the way an axum 0.8 user would today — jsonwebtoken (HS256, the `admin` role checked in
//! an extractor), validator on the JSON body, tower_governor (a quota that never refuses),
//! tower-http CORS and five security headers through `SetResponseHeaderLayer`.
//!
//! `POST /users` with `Authorization: Bearer <admin token>` and
//! `{"username":"alice","email":"alice@example.com","age":30}` answers 201 and a small JSON.
//! Binds `SHIELDWALL_ADDR` (default 127.0.0.1:3100); the HS256 secret is
//! `SHIELDWALL_JWT_SECRET`, with the same fixed default as `load_token`.
//!
//! Only a build target for the load test: nothing here is a dependency of the library.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::{HeaderValue, Method, StatusCode, header, request::Parts};
use axum::routing::post;
use axum::{Json, Router};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use serde::{Deserialize, Serialize};
use tower_governor::GovernorLayer;
use tower_governor::governor::GovernorConfigBuilder;
use tower_http::cors::CorsLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use validator::Validate;

/// Keep in step with `load_token.rs` and `load_s_shieldwall.rs`.
const DEFAULT_SECRET: &str = "shieldwall-load-test-secret-0123456789abcdef";
const ISSUER: &str = "https://auth.load.test";
const AUDIENCE: &str = "load-api";

#[derive(Deserialize, Validate)]
#[serde(deny_unknown_fields)]
struct NewUser {
    #[validate(length(min = 1, max = 50))]
    username: String,
    #[validate(email)]
    email: String,
    #[validate(range(min = 0, max = 150))]
    age: u8,
}

#[derive(Serialize)]
struct User {
    username: String,
    email: String,
    age: u8,
}

struct Auth {
    key: DecodingKey,
    validation: Validation,
}

#[derive(Deserialize)]
struct Claims {
    #[allow(dead_code)]
    sub: String,
    roles: Vec<String>,
}

/// The caller, proven to hold the `admin` role.
struct Admin(#[allow(dead_code)] Claims);

impl FromRequestParts<Arc<Auth>> for Admin {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(
        parts: &mut Parts,
        auth: &Arc<Auth>,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or((StatusCode::UNAUTHORIZED, "missing bearer token"))?;
        let data = decode::<Claims>(token, &auth.key, &auth.validation)
            .map_err(|_| (StatusCode::UNAUTHORIZED, "invalid token"))?;
        if !data.claims.roles.iter().any(|r| r == "admin") {
            return Err((StatusCode::FORBIDDEN, "forbidden"));
        }
        Ok(Admin(data.claims))
    }
}

async fn create_user(
    _admin: Admin,
    Json(body): Json<NewUser>,
) -> Result<(StatusCode, Json<User>), (StatusCode, String)> {
    body.validate()
        .map_err(|e| (StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    Ok((
        StatusCode::CREATED,
        Json(User {
            username: body.username,
            email: body.email,
            age: body.age,
        }),
    ))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret = std::env::var("SHIELDWALL_JWT_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_SECRET.into());
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[AUDIENCE]);
    let auth = Arc::new(Auth {
        key: DecodingKey::from_secret(secret.as_bytes())?,
        validation,
    });

    // Per peer IP, one cell every nanosecond, a burst of 2^32 - 1: never refuses, but every
    // request pays for a full check.
    let governor = GovernorConfigBuilder::default()
        .per_nanosecond(1)
        .burst_size(u32::MAX)
        .finish()
        .ok_or("invalid governor quota")?;
    let cors = CorsLayer::new()
        .allow_origin(HeaderValue::from_static("https://example.com"))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]);

    let app = Router::new()
        .route(
            "/users",
            post(create_user).layer(GovernorLayer::new(governor)),
        )
        .layer(DefaultBodyLimit::max(64 * 1024))
        .layer(cors)
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .with_state(auth);

    let addr = std::env::var("SHIELDWALL_ADDR").unwrap_or_else(|_| "127.0.0.1:3100".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
