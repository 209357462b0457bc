use shieldwall::prelude::*;

#[derive(Validate)]
struct NewUser {
    #[validate(length(min = 1))]
    username: String,
}

#[secure(post "/users", role = "admin")]
async fn create_user(Json(body): Json<NewUser>) -> String {
    body.username
}

fn main() {}
