use shieldwall::prelude::*;

#[secure(get "/status", public = true)]
async fn status() -> &'static str {
    "ok"
}

fn main() {}
