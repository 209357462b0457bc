use shieldwall::prelude::*;

/// Re-checks the caller's password before a sensitive change: a `login` route too.
#[secure(post "/account/confirm", auth, login)]
async fn confirm(user: Principal) -> String {
    user.subject().to_string()
}

fn main() {}
