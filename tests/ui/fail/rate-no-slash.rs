use shieldwall::prelude::*;

#[secure(post "/login", public, rate = "5 per minute")]
async fn login() -> &'static str {
    "ok"
}

fn main() {}
