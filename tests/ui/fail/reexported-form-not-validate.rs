use shieldwall::prelude::*;

/// A re-export under another name is still `Form`.
mod input {
    pub use axum::Form as Body;
}

#[derive(Deserialize)]
struct Signup {
    username: String,
}

#[secure(post "/signup", public, rate = "5/min per ip")]
async fn signup(input::Body(s): input::Body<Signup>) -> String {
    s.username
}

fn main() {}
