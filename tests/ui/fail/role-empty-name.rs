use shieldwall::prelude::*;

#[secure(get "/admin", role = "")]
async fn admin() -> &'static str {
    "ok"
}

fn main() {}
