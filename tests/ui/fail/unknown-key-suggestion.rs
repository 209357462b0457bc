use shieldwall::prelude::*;

#[secure(get "/status", public, rtae = "60/min per ip")]
async fn status() -> &'static str {
    "ok"
}

fn main() {}
