use shieldwall::prelude::*;

#[secure(get "/users")]
async fn list_users() -> &'static str {
    "[]"
}

fn main() {}
