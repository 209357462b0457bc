use shieldwall::prelude::*;

#[derive(Deserialize)]
struct Search {
    q: String,
}

#[secure(get "/search", auth)]
async fn search(Query(search): Query<Search>) -> String {
    search.q
}

fn main() {}
