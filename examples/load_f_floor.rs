//! Server F of `bench/load.sh`: the endpoint of `load_b_handbuilt.rs` and
//! `load_s_shieldwall.rs` with no security at all — bare axum 0.8, `Json` and validator on
//! the same body. Not a way to build an API: the floor against which the cost of B's and S's
//! protections is read (their CPU per request minus F's).
//!
//! `POST /users` with `{"username":"alice","email":"alice@example.com","age":30}` answers
//! 201 and a small JSON; any `Authorization` header is ignored.
//! Binds `SHIELDWALL_ADDR` (default 127.0.0.1:3100).

use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use validator::Validate;

/// The same rules as B and S.
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

async fn create_user(Json(body): Json<NewUser>) -> Result<(StatusCode, Json<User>), StatusCode> {
    body.validate()
        .map_err(|_| StatusCode::UNPROCESSABLE_ENTITY)?;
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
    let app = Router::new().route("/users", post(create_user));
    let addr = std::env::var("SHIELDWALL_ADDR").unwrap_or_else(|_| "127.0.0.1:3100".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
