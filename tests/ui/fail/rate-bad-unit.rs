use shieldwall::prelude::*;

#[secure(post "/login", public, rate = "5/mni per ip")]
async fn login() -> &'static str {
    "ok"
}

fn main() {}
