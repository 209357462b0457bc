use shieldwall::prelude::*;

type Segments<T> = axum::extract::Path<T>;

#[derive(Deserialize)]
struct UserPath {
    id: String,
}

#[secure(get "/users/{id}", auth)]
async fn get_user(p: Segments<UserPath>) -> String {
    p.0.id
}

fn main() {}
