use axum::Json as J;
use shieldwall::prelude::*;

/// Deserialize only: a renamed `Json` must still require `Validate`.
#[derive(Deserialize)]
struct NoValidate {
    text: String,
}

#[secure(post "/notes", auth)]
async fn create_note(J(note): J<NoValidate>) -> String {
    note.text
}

fn main() {}
