use shieldwall::prelude::*;

#[secure(public)]
async fn status() -> &'static str {
    "ok"
}

fn main() {}
