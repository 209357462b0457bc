use shieldwall::prelude::*;

#[secure(trace "/status", public)]
async fn status() -> &'static str {
    "ok"
}

fn main() {}
