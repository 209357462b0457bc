use shieldwall::prelude::*;

#[secure(get "/status", public)]
struct Status;

fn main() {}
