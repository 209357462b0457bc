use shieldwall::prelude::*;

#[secure(post "/upload", auth, body_limit = "64 bananas")]
async fn upload(body: String) -> String {
    body
}

fn main() {}
