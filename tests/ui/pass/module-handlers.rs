mod users {
    use shieldwall::prelude::*;

    /// Documented, public handler in a module.
    #[secure(get "/users", auth)]
    pub async fn list() -> &'static str {
        "[]"
    }

    #[secure(put "/users/{id}", role = "admin")]
    pub(crate) async fn update(Path(id): Path<String>) -> String {
        id
    }

    pub mod admin {
        use shieldwall::prelude::*;

        #[secure(patch "/admin/settings", role = "admin")]
        pub async fn settings() -> &'static str {
            "ok"
        }
    }
}

#[shieldwall::secure(head "/ping", public)]
async fn ping() {}

#[shieldwall::secure(options "/ping", public)]
async fn ping_options() {}

fn app() -> Result<axum::Router, shieldwall::BuildError> {
    shieldwall::Shieldwall::new()
        .jwt(shieldwall::Jwt::hs256(*b"0123456789abcdef0123456789abcdef"))
        .routes(shieldwall::routes![
            users::list,
            users::update,
            users::admin::settings,
            ping,
            ping_options
        ])
        .build()
}

fn main() {
    let _ = app;
}
