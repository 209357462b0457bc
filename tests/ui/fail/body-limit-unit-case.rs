use shieldwall::prelude::*;

#[secure(post "/upload", auth, body_limit = "64kib")]
async fn upload(body: String) -> String {
    body
}

fn main() {}
