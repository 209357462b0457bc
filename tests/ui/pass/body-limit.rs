use shieldwall::prelude::*;

#[derive(Deserialize, Validate)]
struct Upload {
    #[validate(length(max = 1000))]
    name: String,
}

#[secure(post "/upload", auth, body_limit = "1MiB")]
async fn upload(Json(u): Json<Upload>) -> String {
    u.name
}

#[secure(post "/raw", auth, body_limit = "512B")]
async fn raw(body: String) -> String {
    body
}

#[secure(post "/bytes", auth, body_limit = "64 KiB")]
async fn bytes(body: axum::body::Bytes) -> String {
    body.len().to_string()
}

fn app() -> Result<axum::Router, shieldwall::BuildError> {
    Shieldwall::new()
        .jwt(Jwt::hs256(*b"0123456789abcdef0123456789abcdef"))
        .routes(routes![upload, raw, bytes])
        .build()
}

fn main() {
    let _ = app;
}
