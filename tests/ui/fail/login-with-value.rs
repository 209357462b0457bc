use shieldwall::prelude::*;

#[secure(post "/login", public, login = true, rate = "5/min per ip")]
async fn login() -> &'static str {
    "ok"
}

fn main() {}
