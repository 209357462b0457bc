use shieldwall::prelude::*;

#[secure(get "/orgs/{org}/users/{user}", auth)]
async fn get_member(Path(user): Path<String>) -> String {
    user
}

fn main() {}
