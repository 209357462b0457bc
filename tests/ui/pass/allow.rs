use axum::http::request::Parts;
use shieldwall::prelude::*;

enum AppRole {
    Admin,
}

impl Role for AppRole {
    fn name(&self) -> &'static str {
        "admin"
    }
}

fn is_staff(user: &Principal, parts: &Parts) -> bool {
    user.has_role("staff") && parts.headers.contains_key("x-staff")
}

mod policy {
    use axum::http::request::Parts;
    use shieldwall::Principal;

    pub fn office_hours(_user: &Principal, _parts: &Parts) -> bool {
        true
    }
}

#[secure(get "/a", allow = role("admin"))]
async fn a() -> &'static str {
    "a"
}

#[secure(get "/b", allow = scope("b:read"))]
async fn b() -> &'static str {
    "b"
}

#[secure(get "/users/{id}", allow = any(role("admin"), owner("id")))]
async fn get_user(Path(id): Path<String>) -> String {
    id
}

#[secure(get "/c", allow = all(scope("c:read"), not(role("banned"))))]
async fn c() -> &'static str {
    "c"
}

#[secure(get "/d", allow = is_staff)]
async fn d() -> &'static str {
    "d"
}

#[secure(get "/e", allow = any(policy::office_hours, role(AppRole::Admin)))]
async fn e() -> &'static str {
    "e"
}

#[secure(
    get "/orgs/{org}/users/{user}",
    role = "member",
    allow = any(role("admin"), all(owner("user"), not(scope("readonly")), is_staff)),
)]
async fn member(Path((org, user)): Path<(String, String)>) -> String {
    format!("{org}/{user}")
}

fn app() -> Result<axum::Router, shieldwall::BuildError> {
    Shieldwall::new()
        .jwt(Jwt::hs256(*b"0123456789abcdef0123456789abcdef"))
        .routes(routes![a, b, get_user, c, d, e, member])
        .build()
}

fn main() {
    let _ = app;
}
