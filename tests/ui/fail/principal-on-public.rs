use shieldwall::prelude::*;

#[secure(get "/me", public)]
async fn me(user: Principal) -> String {
    user.subject().to_owned()
}

fn main() {}
