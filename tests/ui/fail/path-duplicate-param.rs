use shieldwall::prelude::*;

#[secure(get "/orgs/{id}/users/{id}", auth)]
async fn get_member(Path(ids): Path<(String, String)>) -> String {
    ids.0
}

fn main() {}
