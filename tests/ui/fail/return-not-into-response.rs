use shieldwall::prelude::*;

struct User;

#[secure(get "/me", auth)]
async fn me() -> User {
    User
}

fn main() {}
