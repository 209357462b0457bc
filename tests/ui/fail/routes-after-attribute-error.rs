use shieldwall::prelude::*;

// The attribute's mistake is the only error: `routes![login]` raises none of its own.
#[secure(post "/login", public, rate = "5/mni")]
async fn login() -> &'static str {
    "ok"
}

fn app() -> Shieldwall {
    Shieldwall::new().routes(routes![login])
}

fn main() {
    let _ = app;
}
