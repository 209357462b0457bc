use shieldwall::prelude::*;

#[derive(Deserialize)]
struct NewUser {
    username: String,
}

#[secure(post "/users", role = "admin")]
async fn create_user(Json(body): Json<NewUser>) -> String {
    body.username
}

fn main() {}
