use shieldwall::prelude::*;

#[secure(get "/users", scope = "users:read", scopes = ["users:read", "users:list"])]
async fn list_users() -> &'static str {
    "[]"
}

fn main() {}
