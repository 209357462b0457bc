use axum::http::StatusCode;
use shieldwall::prelude::*;

#[derive(Serialize)]
struct User {
    id: String,
}

#[secure(get "/users/{id}", auth)]
async fn get_user(Path(id): Path<String>) -> Result<Json<User>, Problem> {
    if id == "missing" {
        return Err(
            Problem::new(StatusCode::NOT_FOUND, "not-found", "Not Found")
                .with_detail("No user with that id."),
        );
    }
    Ok(Json(User { id }))
}

#[secure(delete "/users/{id}", role = "admin")]
async fn delete_user(Path(_id): Path<String>) -> Result<StatusCode, Problem> {
    Ok(StatusCode::NO_CONTENT)
}

fn app() -> Result<axum::Router, shieldwall::BuildError> {
    Shieldwall::new()
        .jwt(Jwt::hs256(*b"0123456789abcdef0123456789abcdef"))
        .routes(routes![get_user, delete_user])
        .build()
}

fn main() {
    let _ = app;
}
