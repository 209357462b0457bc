use shieldwall::prelude::*;

/// A type alias of `Query` is still `Query`.
type Params<T> = axum::extract::Query<T>;

#[derive(Deserialize)]
struct Search {
    q: String,
}

#[secure(get "/search", auth)]
async fn search(s: Params<Search>) -> String {
    s.0.q
}

fn main() {}
