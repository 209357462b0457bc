use axum::http::request::Parts;
use shieldwall::prelude::*;

#[derive(Clone, Default)]
struct AppState {
    greeting: String,
}

#[derive(Deserialize, Validate)]
struct Paging {
    #[validate(range(min = 1, max = 100))]
    limit: u32,
}

#[derive(Deserialize, Validate)]
struct Login {
    #[validate(length(min = 1))]
    username: String,
}

/// A custom extractor from the request head.
struct ApiVersion(u32);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ApiVersion {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .headers
            .get("x-api-version")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .map(ApiVersion)
            .ok_or_else(|| Problem::from_status(axum::http::StatusCode::BAD_REQUEST))
    }
}

#[secure(get "/greet/{name}", public)]
async fn greet(State(state): State<AppState>, Path(name): Path<String>) -> String {
    format!("{} {name}", state.greeting)
}

#[secure(get "/orgs/{org}/items/{n}", auth)]
async fn item(Path((org, n)): Path<(String, u32)>, user: Principal) -> String {
    format!("{org}/{n} for {}", user.subject())
}

#[secure(get "/items", auth)]
async fn items(State(_s): State<AppState>, Query(p): Query<Paging>) -> String {
    p.limit.to_string()
}

#[secure(post "/login", public, rate = "5/min per ip")]
async fn login(ApiVersion(v): ApiVersion, Form(l): Form<Login>) -> String {
    format!("{v} {}", l.username)
}

#[secure(get "/version", auth)]
async fn version(user: Principal, version: ApiVersion, headers: axum::http::HeaderMap) -> String {
    format!("{} {} {}", user.subject(), version.0, headers.len())
}

fn app() -> Result<axum::Router, shieldwall::BuildError> {
    Shieldwall::with_state(AppState::default())
        .jwt(Jwt::hs256(*b"0123456789abcdef0123456789abcdef"))
        .routes(routes![greet, item, items, login, version])
        .build()
}

fn main() {
    let _ = app;
}
