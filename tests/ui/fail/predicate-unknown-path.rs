use shieldwall::prelude::*;

#[secure(get "/internal", allow = policy::is_staf)]
async fn internal() -> &'static str {
    "ok"
}

mod policy {
    use axum::http::request::Parts;
    use shieldwall::Principal;

    pub fn is_staff(user: &Principal, _parts: &Parts) -> bool {
        user.has_role("staff")
    }
}

fn main() {}
