use shieldwall::prelude::*;

#[derive(Deserialize)]
struct Note {
    text: String,
}

#[secure(post "/notes", auth, validate = 1)]
async fn create_note(Json(note): Json<Note>) -> String {
    note.text
}

fn main() {}
