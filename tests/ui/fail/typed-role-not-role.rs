use shieldwall::prelude::*;

enum Nope {
    Admin,
}

#[secure(get "/admin", role = Nope::Admin)]
async fn admin() -> &'static str {
    "ok"
}

fn main() {}
