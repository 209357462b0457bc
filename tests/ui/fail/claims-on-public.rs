use shieldwall::prelude::*;

#[derive(Deserialize)]
struct Custom {
    tenant: String,
}

#[secure(get "/tenant", public)]
async fn tenant(Claims(c): Claims<Custom>) -> String {
    c.tenant
}

fn main() {}
