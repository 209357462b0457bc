use shieldwall::prelude::*;

#[derive(Serialize)]
struct User {
    username: &'static str,
    email: &'static str,
    age: u8,
}

#[secure(get "/users", public)]
async fn users() -> Json<User> {
    Json(User {
        username: "alice",
        email: "alice@example.com",
        age: 30,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut sh = shieldwall::headers::SecurityHeaders::api();
    if std::env::var("FEWH").is_ok() {
        sh = sh
            .without("permissions-policy")
            .without("content-security-policy")
            .without("cross-origin-opener-policy")
            .without("cross-origin-resource-policy")
            .without("referrer-policy")
            .without("x-frame-options");
        if std::env::var("PAD").is_ok() {
            sh = sh.header("x-pad", &"a".repeat(600));
        }
    }
    let app = Shieldwall::new()
        .security_headers(sh)
        .routes(routes![users])
        .build()?;
    let addr = std::env::var("SHIELDWALL_ADDR").unwrap_or_else(|_| "127.0.0.1:3100".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    shieldwall::serve(app, listener).await?;
    Ok(())
}
