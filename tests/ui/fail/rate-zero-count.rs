use shieldwall::prelude::*;

#[secure(post "/login", public, rate = "0/min")]
async fn login() -> &'static str {
    "ok"
}

fn main() {}
