use shieldwall::prelude::*;

#[derive(Deserialize, Validate)]
struct Patch {
    #[validate(length(max = 50))]
    name: Option<String>,
}

#[secure(patch "/me", auth)]
async fn patch_me(body: Option<Json<Patch>>) -> String {
    body.and_then(|Json(p)| p.name).unwrap_or_default()
}

fn main() {}
