use shieldwall::prelude::*;

#[secure(get "/users", allow = rol("admin"))]
async fn list_users() -> &'static str {
    "[]"
}

fn main() {}
