use axum::http::request::Parts;
use shieldwall::prelude::*;

fn is_staff(user: &Principal, _parts: &Parts) -> bool {
    user.has_role("staff")
}

#[secure(get "/internal", allow = is_staff())]
async fn internal() -> &'static str {
    "ok"
}

fn main() {}
