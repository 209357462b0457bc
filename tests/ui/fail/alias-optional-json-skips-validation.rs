use shieldwall::prelude::*;

type Body<T> = axum::Json<T>;

#[derive(Deserialize, Validate)]
struct Patch {
    #[validate(length(max = 50))]
    name: Option<String>,
}

/// `Option<Json<..>>` is read by axum itself, whatever the spelling.
#[secure(patch "/me", auth)]
async fn patch_me(body: Option<Body<Patch>>) -> String {
    body.and_then(|b| b.0.name).unwrap_or_default()
}

fn main() {}
