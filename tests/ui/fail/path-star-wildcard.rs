use shieldwall::prelude::*;

#[secure(get "/files/*rest", auth)]
async fn get_file(Path(rest): Path<String>) -> String {
    rest
}

fn main() {}
