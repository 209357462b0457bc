use shieldwall::prelude::*;

#[secure(post "/login", public, rate = "5/min per user")]
async fn login() -> &'static str {
    "ok"
}

fn main() {}
