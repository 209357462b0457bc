use shieldwall::prelude::*;

#[secure(get "/status", public)]
fn status() -> &'static str {
    "ok"
}

fn main() {}
