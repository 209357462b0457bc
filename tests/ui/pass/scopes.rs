use shieldwall::prelude::*;

#[secure(get "/users", scope = "users:read")]
async fn list_users() -> &'static str {
    "[]"
}

#[secure(post "/users", scopes = ["users:read", "users:write"], role = "admin")]
async fn create_user() -> &'static str {
    "ok"
}

fn app() -> Result<axum::Router, shieldwall::BuildError> {
    Shieldwall::new()
        .jwt(Jwt::hs256(*b"0123456789abcdef0123456789abcdef"))
        .routes(routes![list_users, create_user])
        .build()
}

fn main() {
    let _ = app;
}
