use shieldwall::prelude::*;

#[secure(post "/upload", auth, body_limit = "4GiB")]
async fn upload(body: String) -> String {
    body
}

fn main() {}
