use shieldwall::prelude::*;

#[secure(post "/login", public, login, rate = "5/min per ip")]
async fn login() -> &'static str {
    "ok"
}

#[secure(get "/feed", public, rate = ["100/min global", "10/30s per ip burst 5"])]
async fn feed() -> &'static str {
    "ok"
}

#[secure(post "/reports", auth, rate = "5/min", on_outage = "fail_closed")]
async fn reports() -> &'static str {
    "ok"
}

#[secure(post "/exports", auth, rate = ["5/min per user", "1000/day per key", "10000/h global", "20/10s per ip burst 40"])]
async fn exports() -> &'static str {
    "ok"
}

#[secure(post "/burst", auth, rate = "60/min burst 10", on_outage = "local")]
async fn burst() -> &'static str {
    "ok"
}

fn app() -> Result<axum::Router, shieldwall::BuildError> {
    Shieldwall::new()
        .jwt(Jwt::hs256(*b"0123456789abcdef0123456789abcdef"))
        .routes(routes![login, feed, reports, exports, burst])
        .build()
}

fn main() {
    let _ = app;
}
