//! Server S of `bench/load.sh`: the endpoint of `load_b_handbuilt.rs` as one `#[secure]`
//! route with shieldwall's default app layers.
//!
//! `POST /users` with `Authorization: Bearer <admin token>` and
//! `{"username":"alice","email":"alice@example.com","age":30}` answers 201 and a small JSON.
//! Binds `SHIELDWALL_ADDR` (default 127.0.0.1:3100); the HS256 secret is
//! `SHIELDWALL_JWT_SECRET`, with the same fixed default as `load_token`.

use axum::http::StatusCode;
use shieldwall::prelude::*;

/// Keep in step with `load_token.rs` and `load_b_handbuilt.rs`.
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

/// Admins only; a quota high enough never to refuse, so every request pays for a full
/// limiter check.
#[secure(post "/users", role = "admin", rate = "4000000000/1s")]
async fn create_user(Json(body): Json<NewUser>) -> (StatusCode, Json<User>) {
    (
        StatusCode::CREATED,
        Json(User {
            username: body.username,
            email: body.email,
            age: body.age,
        }),
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret = std::env::var("SHIELDWALL_JWT_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_SECRET.into());
    let app = Shieldwall::new()
        .jwt(
            Jwt::hs256(secret.into_bytes())
                .issuer(ISSUER)
                .audience(AUDIENCE),
        )
        .routes(routes![create_user])
        .build()?;
    let addr = std::env::var("SHIELDWALL_ADDR").unwrap_or_else(|_| "127.0.0.1:3100".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    shieldwall::serve(app, listener).await?;
    Ok(())
}
