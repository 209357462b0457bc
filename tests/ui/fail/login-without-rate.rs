use shieldwall::prelude::*;

/// Checks a password, and nothing limits how often: brute force would be free.
#[secure(post "/login", public, login)]
async fn login() -> &'static str {
    "ok"
}

fn main() {}
