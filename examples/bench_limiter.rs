//! A server for `bench/redis-limiter.sh`: the same public endpoint with and without a rate
//! limit, so one run measures what the limiter costs. `SHIELDWALL_REDIS_URL` selects Redis.

use shieldwall::prelude::*;

/// No limit.
#[secure(get "/open", public)]
async fn open() -> &'static str {
    "ok"
}

/// A quota high enough never to refuse: every request pays for a full limiter check.
#[secure(get "/limited", public, rate = "4000000000/1s per ip")]
async fn limited() -> &'static str {
    "ok"
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let app = Shieldwall::from_env()?
        .routes(routes![open, limited])
        .build()?;
    let addr = std::env::var("SHIELDWALL_ADDR").unwrap_or_else(|_| "127.0.0.1:3001".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    shieldwall::serve(app, listener).await?;
    Ok(())
}
