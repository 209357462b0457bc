use shieldwall::prelude::*;

#[secure(get "/admin", roles = [])]
async fn admin() -> &'static str {
    "ok"
}

fn main() {}
