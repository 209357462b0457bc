use shieldwall::prelude::*;

#[secure(get "/me", auth)]
async fn me(user: Principal) -> String {
    user.subject().to_owned()
}

#[secure(get "/me/jwt", auth = "jwt")]
async fn me_jwt(user: Principal) -> String {
    user.subject().to_owned()
}

#[secure(get "/me/key", auth = "api_key")]
async fn me_key(user: Principal) -> String {
    user.subject().to_owned()
}

#[secure(get "/me/any", auth = "any")]
async fn me_any() -> &'static str {
    "ok"
}

fn app() -> Result<axum::Router, shieldwall::BuildError> {
    Shieldwall::new()
        .jwt(Jwt::hs256(*b"0123456789abcdef0123456789abcdef"))
        .routes(routes![me, me_jwt, me_key, me_any])
        .build()
}

fn main() {
    let _ = app;
}
