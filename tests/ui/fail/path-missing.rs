use shieldwall::prelude::*;

#[secure(get, public)]
async fn status() -> &'static str {
    "ok"
}

fn main() {}
