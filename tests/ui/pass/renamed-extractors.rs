//! Renamed, aliased and re-exported `Json`, `Query`, `Form` and `Path` are validated like
//! the originals: types with `Validate`, and plain values, are accepted.
use axum::Json as J;
use shieldwall::prelude::*;

type Params<T> = axum::extract::Query<T>;
type Segments<T> = axum::extract::Path<T>;

mod input {
    pub use axum::Form as Body;
}

#[derive(Deserialize, Validate)]
struct Note {
    #[validate(length(min = 1, max = 200))]
    text: String,
}

#[derive(Deserialize, Validate)]
struct Paging {
    #[validate(range(min = 1, max = 100))]
    limit: u32,
}

#[derive(Deserialize)]
struct Unchecked {
    text: String,
}

#[secure(post "/notes", auth)]
async fn create_note(J(note): J<Note>) -> String {
    note.text
}

#[secure(get "/notes", auth)]
async fn list_notes(p: Params<Paging>) -> String {
    p.0.limit.to_string()
}

#[secure(post "/signup", public, rate = "5/min per ip")]
async fn signup(input::Body(n): input::Body<Note>) -> String {
    n.text
}

/// Plain values have nothing to validate, spelled any way.
#[secure(get "/orgs/{org}/items/{n}", auth)]
async fn item(p: Segments<(String, u32)>, J(tags): J<Vec<String>>) -> String {
    let (org, n) = p.0;
    format!("{org}/{n} {}", tags.len())
}

/// `validate = false` opts out, spelled any way.
#[secure(post "/raw-notes", auth, validate = false)]
async fn raw_note(J(note): J<Unchecked>) -> String {
    note.text
}

fn app() -> Result<axum::Router, shieldwall::BuildError> {
    Shieldwall::new()
        .jwt(Jwt::hs256(*b"0123456789abcdef0123456789abcdef"))
        .routes(routes![create_note, list_notes, signup, item, raw_note])
        .build()
}

fn main() {
    let _ = app;
}
