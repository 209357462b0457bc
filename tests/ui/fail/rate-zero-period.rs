use shieldwall::prelude::*;

#[secure(post "/login", public, rate = "5/0s")]
async fn login() -> &'static str {
    "ok"
}

fn main() {}
