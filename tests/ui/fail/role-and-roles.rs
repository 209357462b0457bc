use shieldwall::prelude::*;

#[secure(get "/admin", role = "admin", roles = ["admin", "editor"])]
async fn admin() -> &'static str {
    "ok"
}

fn main() {}
