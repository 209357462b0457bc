use shieldwall::prelude::*;

type Params<T> = axum::extract::Query<T>;

#[derive(Deserialize, Validate)]
struct Paging {
    #[validate(range(min = 1, max = 100))]
    limit: u32,
}

/// `Result<Query<..>, _>` hands the raw outcome to the handler, unvalidated.
#[secure(get "/items", auth)]
async fn list(
    p: Result<Params<Paging>, axum::extract::rejection::QueryRejection>,
) -> String {
    p.map(|q| q.0.limit.to_string()).unwrap_or_default()
}

fn main() {}
