use shieldwall::prelude::*;

#[secure(post "/login", public, on_outage = "fail_closed")]
async fn login() -> &'static str {
    "ok"
}

fn main() {}
