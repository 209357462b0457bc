use shieldwall::prelude::*;

struct Foo;

#[secure(post "/users", auth)]
async fn create_user(_user: Principal, _foo: Foo) -> &'static str {
    "ok"
}

fn main() {}
