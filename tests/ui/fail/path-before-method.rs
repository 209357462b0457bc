use shieldwall::prelude::*;

#[secure("/status", get, public)]
async fn status() -> &'static str {
    "ok"
}

fn main() {}
