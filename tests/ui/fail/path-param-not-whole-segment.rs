use shieldwall::prelude::*;

#[secure(get "/files/{name}.txt", auth)]
async fn get_file(Path(name): Path<String>) -> String {
    name
}

fn main() {}
