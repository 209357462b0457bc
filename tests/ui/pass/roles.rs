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

mod roles {
    pub enum Staff {
        Support,
    }

    impl shieldwall::Role for Staff {
        fn name(&self) -> &'static str {
            "support"
        }
    }
}

#[secure(get "/admin", role = "admin")]
async fn admin() -> &'static str {
    "ok"
}

#[secure(get "/posts", roles = ["admin", "editor"])]
async fn posts() -> &'static str {
    "ok"
}

#[secure(get "/typed", role = AppRole::Admin)]
async fn typed() -> &'static str {
    "ok"
}

#[secure(get "/typed-list", roles = [AppRole::Admin, AppRole::Editor, roles::Staff::Support])]
async fn typed_list() -> &'static str {
    "ok"
}

#[secure(get "/mixed", roles = ["auditor", AppRole::Editor])]
async fn mixed() -> &'static str {
    "ok"
}

fn app() -> Result<axum::Router, shieldwall::BuildError> {
    Shieldwall::new()
        .jwt(Jwt::hs256(*b"0123456789abcdef0123456789abcdef"))
        .routes(routes![admin, posts, typed, typed_list, mixed])
        .build()
}

fn main() {
    let _ = app;
}
