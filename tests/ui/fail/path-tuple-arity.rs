use shieldwall::prelude::*;

#[secure(get "/orgs/{org}/users/{user}", auth)]
async fn get_member(Path((org, user, n)): Path<(String, String, u32)>) -> String {
    format!("{org}/{user}/{n}")
}

fn main() {}
