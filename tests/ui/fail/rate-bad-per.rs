use shieldwall::prelude::*;

#[secure(post "/reports", auth, rate = "5/min per tenant")]
async fn create_report() -> &'static str {
    "ok"
}

fn main() {}
