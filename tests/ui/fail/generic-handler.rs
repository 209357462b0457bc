use shieldwall::prelude::*;

#[secure(get "/status", public)]
async fn status<T: Default>() -> &'static str {
    let _ = T::default();
    "ok"
}

fn main() {}
