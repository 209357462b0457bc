use shieldwall::prelude::*;

#[secure(get "/health", public)]
async fn health() -> &'static str {
    "ok"
}

/// Public, rate-limited per client IP, optional principal.
#[secure(get "/status", public, rate = "60/min per ip")]
async fn status(user: Option<Principal>) -> String {
    match user {
        Some(u) => format!("hello {}", u.subject()),
        None => "hello".to_owned(),
    }
}

fn app() -> Result<axum::Router, shieldwall::BuildError> {
    Shieldwall::new().routes(routes![health, status]).build()
}

fn main() {
    let _ = app;
}
