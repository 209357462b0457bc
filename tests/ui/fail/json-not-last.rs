use shieldwall::prelude::*;

#[derive(Deserialize, Validate)]
struct NewUser {
    #[validate(length(min = 1))]
    username: String,
}

#[secure(post "/users", role = "admin")]
async fn create_user(Json(body): Json<NewUser>, user: Principal) -> String {
    format!("{} {}", user.subject(), body.username)
}

fn main() {}
