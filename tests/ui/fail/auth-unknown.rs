use shieldwall::prelude::*;

#[secure(get "/me", auth = "password")]
async fn me(user: Principal) -> String {
    user.subject().to_owned()
}

fn main() {}
