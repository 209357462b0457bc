use shieldwall::prelude::*;

#[secure(get "/status", public, rate = "60/min per ip", rate = "10/s per ip")]
async fn status() -> &'static str {
    "ok"
}

fn main() {}
