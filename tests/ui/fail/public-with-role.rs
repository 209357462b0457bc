use shieldwall::prelude::*;

#[secure(get "/admin", public, role = "admin")]
async fn admin() -> &'static str {
    "ok"
}

fn main() {}
