use shieldwall::prelude::*;

#[secure(GET "/status", public)]
async fn status() -> &'static str {
    "ok"
}

fn main() {}
