use shieldwall::prelude::*;

#[derive(Validate)]
struct UserPath {
    #[validate(length(max = 64))]
    id: String,
}

#[secure(get "/users/{id}", auth)]
async fn get_user(Path(p): Path<UserPath>) -> String {
    p.id
}

fn main() {}
