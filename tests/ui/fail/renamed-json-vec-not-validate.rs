use axum::Json as J;
use shieldwall::prelude::*;

/// A list of a type without `Validate` is not plain data: it must validate too.
#[derive(Deserialize)]
struct Item {
    name: String,
}

#[secure(post "/items", auth)]
async fn create_items(J(items): J<Vec<Item>>) -> String {
    items.len().to_string()
}

fn main() {}
