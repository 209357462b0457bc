use shieldwall::prelude::*;

#[secure(get "/status" public)]
async fn status() -> &'static str {
    "ok"
}

fn main() {}
