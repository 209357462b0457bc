use shieldwall::prelude::*;

#[secure(post "/login", public, rate = "5/min per ip", on_outage = "open")]
async fn login() -> &'static str {
    "ok"
}

fn main() {}
