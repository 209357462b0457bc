use shieldwall::prelude::*;

#[secure(post "/login", public, rate = "5/min per ip burst 0")]
async fn login() -> &'static str {
    "ok"
}

fn main() {}
