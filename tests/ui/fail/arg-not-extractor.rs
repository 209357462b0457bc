use shieldwall::prelude::*;

struct Foo;

#[secure(get "/users", auth)]
async fn list_users(_foo: Foo, _user: Principal) -> &'static str {
    "[]"
}

fn main() {}
