//! The code `#[secure]` generates is lint-clean: this crate denies every warning and every
//! default clippy lint, and uses every form of the attribute. CI runs clippy on it with
//! `-D warnings`; `cargo test` builds it and checks that the app builds and serves.
#![deny(warnings, clippy::all)]

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{Request, StatusCode};
use shieldwall::policy::{Access, AuthKind};
use shieldwall::prelude::*;
use tower::ServiceExt;

/// The router state.
#[derive(Clone, Default)]
struct AppState {
    greeting: &'static str,
}

/// The app's roles.
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

#[derive(Deserialize, Validate)]
#[serde(deny_unknown_fields)]
struct NewUser {
    #[validate(length(min = 1, max = 50))]
    username: String,
    #[validate(range(min = 0, max = 150))]
    age: u8,
}

#[derive(Deserialize, Validate)]
struct Paging {
    #[validate(range(min = 1, max = 100))]
    limit: u32,
}

#[derive(Deserialize, Validate)]
struct Login {
    #[validate(length(min = 1, max = 64))]
    username: String,
}

#[derive(Deserialize, Validate)]
struct OrgPath {
    #[validate(length(max = 64))]
    org: String,
}

/// Deserialize only: `validate = false` accepts it.
#[derive(Deserialize)]
struct Note {
    text: String,
}

/// Custom claims.
#[derive(Deserialize)]
struct Tenant {
    tenant: String,
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
            .ok_or_else(|| Problem::from_status(StatusCode::BAD_REQUEST))
    }
}

/// A predicate for `allow = ...`.
fn is_staff(user: &Principal, parts: &Parts) -> bool {
    user.has_role("staff") && parts.headers.contains_key("x-staff")
}

/// Public handlers, documented as a public API would be.
pub mod api {
    use shieldwall::prelude::*;

    /// Liveness.
    #[secure(get "/health", public)]
    pub async fn health() -> &'static str {
        "ok"
    }

    /// Crate-visible handler in a public module.
    #[secure(head "/ping", public)]
    pub(crate) async fn ping() {}

    /// Preflight-style endpoint.
    #[secure(options "/ping", public, rate = "10/30s per ip")]
    pub(crate) async fn ping_options() {}
}

mod users {
    use shieldwall::prelude::*;

    #[secure(put "/users/{id}", role = "admin", body_limit = "16KiB")]
    pub(crate) async fn replace(Path(id): Path<String>, body: String) -> String {
        format!("{id}: {body}")
    }

    #[secure(patch "/users/{id}", roles = ["admin", "editor"])]
    pub(crate) async fn patch(Path(id): Path<String>) -> String {
        id
    }

    #[secure(delete "/users/{id}", role = "admin", rate = ["5/min", "100/day per key"])]
    pub(crate) async fn delete(Path(_id): Path<String>) -> Result<axum::http::StatusCode, Problem> {
        Ok(axum::http::StatusCode::NO_CONTENT)
    }
}

#[secure(get "/status", public, rate = ["60/min per ip", "1000/min global burst 100"])]
async fn status(user: Option<Principal>) -> String {
    user.map_or_else(|| "anonymous".to_owned(), |u| u.subject().to_owned())
}

#[secure(get "/greet/{name}", public)]
async fn greet(State(state): State<AppState>, Path(name): Path<String>) -> String {
    format!("{} {name}", state.greeting)
}

#[secure(get "/me", auth)]
async fn me(user: Principal) -> String {
    user.subject().to_owned()
}

#[secure(get "/me/jwt", auth = "jwt", rate = "30/min per user")]
async fn me_jwt(Claims(c): Claims<Tenant>) -> String {
    c.tenant
}

#[secure(get "/me/any", auth = "any")]
async fn me_any(user: Principal) -> String {
    user.subject().to_owned()
}

#[secure(get "/keys/me", auth = "api_key")]
async fn me_key(user: Principal) -> String {
    user.subject().to_owned()
}

#[secure(post "/users", role = "admin", rate = "5/min")]
async fn create_user(user: Principal, Json(body): Json<NewUser>) -> Result<Json<String>, Problem> {
    Ok(Json(format!(
        "{} created {} ({})",
        user.subject(),
        body.username,
        body.age
    )))
}

#[secure(get "/admin", role = AppRole::Admin)]
async fn admin() -> &'static str {
    "admin"
}

#[secure(get "/posts", roles = [AppRole::Admin, AppRole::Editor, "author"])]
async fn posts() -> &'static str {
    "posts"
}

#[secure(get "/users", scope = "users:read")]
async fn list_users(State(state): State<AppState>, Query(p): Query<Paging>) -> String {
    format!("{} {}", state.greeting, p.limit)
}

#[secure(post "/reports", scopes = ["reports:read", "reports:write"], rate = "10/30s burst 5")]
async fn create_report(ApiVersion(v): ApiVersion, Form(l): Form<Login>) -> String {
    format!("v{v} {}", l.username)
}

#[secure(get "/users/{id}", allow = any(role("admin"), owner("id")))]
async fn get_user(Path(id): Path<String>) -> String {
    id
}

#[secure(get "/orgs/{org}/items/{n}", allow = all(scope("items:read"), not(role("banned"))))]
async fn item(Path((org, n)): Path<(String, u32)>) -> String {
    format!("{org}/{n}")
}

#[secure(get "/orgs/{org}", allow = any(is_staff, role(AppRole::Admin), scope("orgs:read")))]
async fn org(Path(p): Path<OrgPath>) -> String {
    p.org
}

#[secure(get "/internal", allow = is_staff, rate = "100/h per user")]
async fn internal() -> &'static str {
    "internal"
}

#[secure(post "/notes", auth, validate = false, body_limit = "1MiB")]
async fn create_note(Json(note): Json<Note>) -> String {
    note.text
}

#[secure(post "/checked", auth, validate = true)]
async fn checked(Json(u): Json<NewUser>) -> String {
    u.username
}

const SECRET: &[u8] = b"lint-test-secret-0123456789abcdef-0123";

fn app() -> Result<axum::Router, shieldwall::BuildError> {
    Shieldwall::with_state(AppState { greeting: "hello" })
        .jwt(Jwt::hs256(SECRET.to_vec()).issuer("lints").audience("api"))
        .routes(routes![
            api::health,
            api::ping,
            api::ping_options,
            users::replace,
            users::patch,
            users::delete,
            status,
            greet,
            me,
            me_jwt,
            me_any,
            create_user,
            admin,
            posts,
            list_users,
            create_report,
            get_user,
            item,
            org,
            internal,
            create_note,
            checked,
        ])
        .build()
}

#[tokio::test]
async fn every_form_builds_and_serves() {
    let app = app().expect("every attribute form builds into one app");

    let res = app
        .clone()
        .oneshot(Request::get("/greet/ada").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    let res = app
        .oneshot(Request::get("/me").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[test]
fn api_key_route_compiles_with_its_policy() {
    let routes: Vec<shieldwall::SecureRoute<AppState>> = routes![me_key];
    let Access::Authenticated(req) = routes[0].policy().access else {
        panic!("`auth = \"api_key\"` must not be public");
    };
    assert_eq!(req.auth, AuthKind::ApiKey);
}
