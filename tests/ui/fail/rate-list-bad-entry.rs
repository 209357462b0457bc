use shieldwall::prelude::*;

#[secure(post "/reports", auth, rate = ["5/min", "1000/dya"])]
async fn create_report() -> &'static str {
    "ok"
}

fn main() {}
