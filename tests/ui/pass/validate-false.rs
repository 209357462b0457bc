use shieldwall::prelude::*;

/// Deserialize only: no `Validate`, which `validate = false` allows.
#[derive(Deserialize)]
struct Note {
    text: String,
}

#[derive(Deserialize)]
struct Search {
    q: String,
}

#[secure(post "/notes", auth, validate = false)]
async fn create_note(Json(note): Json<Note>) -> String {
    note.text
}

#[secure(get "/search", auth, validate = false)]
async fn search(Query(s): Query<Search>) -> String {
    s.q
}

#[derive(Deserialize, Validate)]
struct Checked {
    #[validate(length(min = 1))]
    text: String,
}

#[secure(post "/checked", auth, validate = true)]
async fn checked(Json(c): Json<Checked>) -> String {
    c.text
}

fn app() -> Result<axum::Router, shieldwall::BuildError> {
    Shieldwall::new()
        .jwt(Jwt::hs256(*b"0123456789abcdef0123456789abcdef"))
        .routes(routes![create_note, search, checked])
        .build()
}

fn main() {
    let _ = app;
}
