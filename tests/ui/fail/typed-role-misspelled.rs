use shieldwall::prelude::*;

enum AppRole {
    Admin,
    Editor,
}

impl Role for AppRole {
    fn name(&self) -> &'static str {
        match self {
            AppRole::Admin => "admin",
            AppRole::Editor => "editor",
        }
    }
}

#[secure(get "/admin", role = AppRole::Amdin)]
async fn admin() -> &'static str {
    "ok"
}

fn main() {}
