use shieldwall::prelude::*;

#[secure(get "users", auth)]
async fn list_users() -> &'static str {
    "[]"
}

fn main() {}
