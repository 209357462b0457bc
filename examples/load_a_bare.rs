//! Server A of `bench/load.sh`: bare axum 0.8, `GET /users` answering a small JSON. The
//! ceiling the other two servers are measured against.
//!
//! Binds `SHIELDWALL_ADDR` (default 127.0.0.1:3100).

use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

#[derive(Serialize)]
struct User {
    username: &'static str,
    email: &'static str,
    age: u8,
}

async fn users() -> Json<User> {
    Json(User {
        username: "alice",
        email: "alice@example.com",
        age: 30,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let app = Router::new().route("/users", get(users));
    let addr = std::env::var("SHIELDWALL_ADDR").unwrap_or_else(|_| "127.0.0.1:3100".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
