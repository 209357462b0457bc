use shieldwall::prelude::*;

#[secure(get "/users/{id}", allow = any(role("admin"), owner("user_id")))]
async fn get_user(Path(id): Path<String>) -> String {
    id
}

fn main() {}
