use shieldwall::prelude::*;

#[secure]
async fn status() -> &'static str {
    "ok"
}

fn main() {}
