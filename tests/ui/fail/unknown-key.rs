use shieldwall::prelude::*;

#[secure(get "/status", public, colour = "blue")]
async fn status() -> &'static str {
    "ok"
}

fn main() {}
