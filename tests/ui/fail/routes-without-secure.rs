use shieldwall::prelude::*;

async fn plain_fn() -> &'static str {
    "ok"
}

fn app() -> Shieldwall {
    Shieldwall::new().routes(routes![plain_fn])
}

fn main() {
    let _ = app;
}
