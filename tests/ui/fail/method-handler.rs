use shieldwall::prelude::*;

struct Users;

impl Users {
    #[secure(get "/users", auth)]
    async fn list(&self) -> &'static str {
        "[]"
    }
}

fn main() {}
