use shieldwall::prelude::*;

#[secure(post "/upload", auth, body_limit = "0KiB")]
async fn upload(body: String) -> String {
    body
}

fn main() {}
