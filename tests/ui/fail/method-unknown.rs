use shieldwall::prelude::*;

#[secure(fetch "/status", public)]
async fn status() -> &'static str {
    "ok"
}

fn main() {}
