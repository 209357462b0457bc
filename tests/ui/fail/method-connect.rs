use shieldwall::prelude::*;

#[secure(connect "/tunnel", auth)]
async fn tunnel() -> &'static str {
    "ok"
}

fn main() {}
