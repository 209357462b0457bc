//! The quickstart: `cargo run --example quickstart`.
//!
//! Starts on 127.0.0.1:3000 (`SHIELDWALL_ADDR` changes it) with no setup. The HS256
//! secret comes from `SHIELDWALL_JWT_SECRET` or the file `SHIELDWALL_JWT_SECRET_FILE` names
//! (a `.env` file is read in development); without either a random development secret is
//! generated and loudly marked as such. Prints ready-to-paste curl commands with demo
//! tokens (an admin's among them) in development only: a production server prints no
//! credential.
//!
//! `SHIELDWALL_PROFILE=production` turns on the production refusals: no development or
//! placeholder secret, no missing or short secret, no debug routes
//! (`SHIELDWALL_DEBUG_ROUTES`).
//!
//! Serves HTTPS when `SHIELDWALL_TLS_CERT` and `SHIELDWALL_TLS_KEY` name PEM files, and
//! applies `SHIELDWALL_ALLOWED_HOSTS`, `SHIELDWALL_CORS_ORIGINS` and the other settings of
//! `Shieldwall::env()` (see the README's hardening section).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use shieldwall::prelude::*;

const ISSUER: &str = "shieldwall-quickstart";
const AUDIENCE: &str = "quickstart-api";

#[derive(Clone, Default)]
struct AppState {
    users: Arc<Mutex<HashMap<String, User>>>,
}

#[derive(Clone, Serialize)]
struct User {
    id: String,
    username: String,
    email: String,
    age: u8,
}

#[derive(Deserialize, Validate)]
#[serde(deny_unknown_fields)]
struct NewUser {
    #[validate(length(min = 1, max = 50))]
    username: String,
    #[validate(email)]
    email: String,
    #[validate(range(min = 0, max = 150))]
    age: u8,
}

/// Who am I? Any authenticated caller.
#[secure(get "/me", auth)]
async fn me(user: Principal) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "sub": user.subject(),
        "roles": user.roles(),
        "scopes": user.scopes(),
    }))
}

/// Create a user. Admins only, five a minute per caller.
#[secure(post "/users", role = "admin", rate = "5/min")]
async fn create_user(
    State(state): State<AppState>,
    Json(body): Json<NewUser>,
) -> (axum::http::StatusCode, Json<User>) {
    let user = User {
        id: body.username.clone(),
        username: body.username,
        email: body.email,
        age: body.age,
    };
    state
        .users
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(user.id.clone(), user.clone());
    (axum::http::StatusCode::CREATED, Json(user))
}

/// Read a user: admins any record, users their own.
#[secure(get "/users/{id}", allow = any(role("admin"), owner("id")))]
async fn get_user(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<User>, Problem> {
    state
        .users
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&id)
        .cloned()
        .map(Json)
        .ok_or_else(|| {
            Problem::new(axum::http::StatusCode::NOT_FOUND, "not-found", "Not Found")
                .with_detail("No user with that id.")
        })
}

fn mint(secret: &[u8], sub: &str, roles: &[&str]) -> String {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = serde_json::json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": sub, "roles": roles,
        "scope": "users:read", "iat": now, "exp": now + 3600,
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.typ = Some("at+jwt".into());
    jsonwebtoken::EncodingKey::from_secret(secret)
        .and_then(|key| jsonwebtoken::encode(&header, &claims, &key))
        .unwrap_or_default()
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // Errors print as their message (which names the setting to fix), not as `Debug`.
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    // SHIELDWALL_LOG=json: JSON lines with the request id on each; RUST_LOG filters.
    shieldwall::observe::init_logging_from_env();

    // SHIELDWALL_PROFILE (development by default: a .env file is loaded first);
    // SHIELDWALL_REDIS_URL shares rate limits between instances; SHIELDWALL_TRUSTED_PROXIES
    // names the proxies whose X-Forwarded-For is believed; SHIELDWALL_TLS_CERT/_KEY turn on
    // HTTPS; SHIELDWALL_ALLOWED_HOSTS and SHIELDWALL_CORS_ORIGINS open the app to real hosts
    // and browser origins; SHIELDWALL_DEBUG_ROUTES=true mounts GET /_debug/routes.
    let app = Shieldwall::with_state(AppState::default()).env()?;

    // SHIELDWALL_JWT_SECRET, or SHIELDWALL_JWT_SECRET_FILE naming a file that holds it. In
    // development a random secret is generated when neither is set; with
    // SHIELDWALL_PROFILE=production a missing, short (< 32 bytes) or development secret,
    // and debug routes, are refused at start-up, each naming the setting to fix.
    let secret = Secret::from_env_or_development("SHIELDWALL_JWT_SECRET")?;
    if secret.is_development() {
        eprintln!(
            "\n!!! DEVELOPMENT SECRET: SHIELDWALL_JWT_SECRET is not set (or is a placeholder),"
        );
        eprintln!(
            "!!! so tokens are signed with a development secret. Tokens die with the process."
        );
        eprintln!("!!! SHIELDWALL_PROFILE=production refuses to start like this.\n");
    }

    let server = app
        .jwt(
            Jwt::hs256(secret.expose().as_bytes().to_vec())
                .issuer(ISSUER)
                .audience(AUDIENCE),
        )
        .routes(routes![me, create_user, get_user])
        // GET /health (liveness) and GET /ready (readiness: Redis when configured).
        .health(shieldwall::health::Health::new())
        .server()?;

    // SHIELDWALL_METRICS_ADDR: Prometheus metrics on their own listener, never on the API port.
    if let Ok(addr) = std::env::var("SHIELDWALL_METRICS_ADDR")
        && let Some(metrics) = shieldwall::observe::Metrics::install()
    {
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        println!("metrics on http://{}/metrics", listener.local_addr()?);
        tokio::spawn(metrics.serve(listener));
    }

    let bound = server.bind().await?;
    let base = bound.url();
    println!("shieldwall quickstart listening on {base}\n");
    // Demo tokens are credentials (one is an admin's): a production server prints none.
    if Profile::from_env()?.is_production() {
        println!(
            "# production profile: no demo tokens are printed; tokens come from your identity provider\n"
        );
        bound.run().await?;
        return Ok(());
    }
    let admin = mint(secret.expose().as_bytes(), "alice", &["admin"]);
    let user = mint(secret.expose().as_bytes(), "bob", &["user"]);

    if base.starts_with("https") {
        println!(
            "# HTTPS: add --cacert <your CA file> to each curl (or -k for a self-signed dev certificate)\n"
        );
    }
    println!("ADMIN={admin}");
    println!("USER={user}\n");
    println!("# 200: public health check\ncurl -i {base}/health\n");
    println!("# 401: no token\ncurl -i {base}/me\n");
    println!("# 200: who am I\ncurl -i -H \"Authorization: Bearer $USER\" {base}/me\n");
    println!(
        "# 403: bob is not an admin\ncurl -i -H \"Authorization: Bearer $USER\" -H 'Content-Type: application/json' \\\n  -d '{{\"username\":\"carol\",\"email\":\"carol@example.com\",\"age\":30}}' {base}/users\n"
    );
    println!(
        "# 201: alice creates bob\ncurl -i -H \"Authorization: Bearer $ADMIN\" -H 'Content-Type: application/json' \\\n  -d '{{\"username\":\"bob\",\"email\":\"bob@example.com\",\"age\":30}}' {base}/users\n"
    );
    println!(
        "# 422: invalid body (empty username, bad email, age out of range)\ncurl -i -H \"Authorization: Bearer $ADMIN\" -H 'Content-Type: application/json' \\\n  -d '{{\"username\":\"\",\"email\":\"nope\",\"age\":200}}' {base}/users\n"
    );
    println!(
        "# 429: the sixth create within a minute\nfor i in 1 2 3 4 5 6; do curl -s -o /dev/null -w '%{{http_code}}\\n' -H \"Authorization: Bearer $ADMIN\" \\\n  -H 'Content-Type: application/json' -d \"{{\\\"username\\\":\\\"u$i\\\",\\\"email\\\":\\\"u$i@example.com\\\",\\\"age\\\":1}}\" {base}/users; done\n"
    );
    println!(
        "# 200: bob reads his own record; 403: bob reads alice's\ncurl -i -H \"Authorization: Bearer $USER\" {base}/users/bob\ncurl -i -H \"Authorization: Bearer $USER\" {base}/users/alice\n"
    );

    bound.run().await?;
    Ok(())
}
