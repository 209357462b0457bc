use shieldwall::prelude::*;

#[secure(get "/users/:id", auth)]
async fn get_user(Path(id): Path<String>) -> String {
    id
}

fn main() {}
