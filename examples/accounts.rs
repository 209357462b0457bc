//! Accounts: register, log in (`POST /token`), refresh, log out, an admin-only route and an
//! API-key route, on a SQLite database.
//!
//! ```sh
//! cargo run --example accounts                       # serve on 127.0.0.1:3000 (SHIELDWALL_ADDR)
//! cargo run --example accounts -- create-key --owner billing --scopes reports:read
//! cargo run --example accounts -- create-user --username root --password '…' --roles admin
//! ```
//!
//! The database file comes from `SHIELDWALL_DATABASE_URL` (default `accounts.db`); the
//! HS256 secret from `SHIELDWALL_JWT_SECRET` (a random development secret otherwise);
//! `SHIELDWALL_REDIS_URL` shares rate limits and revocations between instances.

use std::sync::{Arc, Mutex};

use rusqlite::OptionalExtension;
use shieldwall::auth::api_key::{ApiKeys, NewKey, SqliteKeyStore};
use shieldwall::auth::passwords::Passwords;
use shieldwall::auth::revocation::TokenState;
use shieldwall::auth::tokens::{BoxFuture, TokenEndpoint, TokenIssuer, UserRecord, UserStore};
use shieldwall::prelude::*;

type Db = Arc<Mutex<rusqlite::Connection>>;

#[derive(Clone)]
struct App {
    db: Db,
    issuer: TokenIssuer,
}

fn open_db() -> Result<Db, Box<dyn std::error::Error>> {
    let url = std::env::var("SHIELDWALL_DATABASE_URL").unwrap_or_else(|_| "accounts.db".into());
    let path = url.strip_prefix("sqlite://").unwrap_or(&url).to_string();
    let conn = rusqlite::Connection::open(path)?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS users (
            username TEXT PRIMARY KEY NOT NULL,
            password_hash TEXT NOT NULL,
            roles TEXT NOT NULL,
            scopes TEXT NOT NULL
        );",
    )?;
    Ok(Arc::new(Mutex::new(conn)))
}

/// The token endpoint reads users from the same database.
struct SqliteUsers(Db);

impl UserStore for SqliteUsers {
    fn find<'a>(&'a self, username: &'a str) -> BoxFuture<'a, Result<Option<UserRecord>, String>> {
        Box::pin(async move {
            let conn = self.0.lock().unwrap_or_else(|e| e.into_inner());
            conn.query_row(
                "SELECT username, password_hash, roles, scopes FROM users WHERE username = ?1",
                [username],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| e.to_string())?
            .map(|(subject, password_hash, roles, scopes)| {
                Ok(UserRecord {
                    subject,
                    password_hash,
                    roles: serde_json::from_str(&roles).map_err(|e| e.to_string())?,
                    scopes: serde_json::from_str(&scopes).map_err(|e| e.to_string())?,
                })
            })
            .transpose()
        })
    }
}

fn insert_user(db: &Db, username: &str, password: &str, roles: &[&str], scopes: &[&str]) -> Result<bool, String> {
    let hash = Passwords::new().hash(password).map_err(|e| e.to_string())?;
    let conn = db.lock().unwrap_or_else(|e| e.into_inner());
    let n = conn
        .execute(
            "INSERT OR IGNORE INTO users (username, password_hash, roles, scopes) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![
                username,
                hash,
                serde_json::to_string(roles).map_err(|e| e.to_string())?,
                serde_json::to_string(scopes).map_err(|e| e.to_string())?,
            ],
        )
        .map_err(|e| e.to_string())?;
    Ok(n == 1)
}

#[derive(Deserialize, Validate)]
#[serde(deny_unknown_fields)]
struct Register {
    #[validate(length(min = 3, max = 32), custom(function = username_chars))]
    username: String,
    #[validate(length(min = 12, max = 128))]
    password: String,
}

fn username_chars(name: &str) -> Result<(), validator::ValidationError> {
    if name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c)) {
        Ok(())
    } else {
        Err(validator::ValidationError::new("username")
            .with_message("use lower-case letters, digits, '_', '.' and '-'".into()))
    }
}

/// Anyone may register (five a minute per IP); new users get the `user` role.
#[secure(post "/register", public, rate = "5/min per ip")]
async fn register(State(app): State<App>, Json(body): Json<Register>) -> Result<axum::http::StatusCode, Problem> {
    match insert_user(&app.db, &body.username, &body.password, &["user"], &["profile:read"]) {
        Ok(true) => Ok(axum::http::StatusCode::CREATED),
        Ok(false) => Err(Problem::new(axum::http::StatusCode::CONFLICT, "conflict", "Conflict")
            .with_detail("That username is taken.")),
        Err(e) => {
            tracing::error!(error = %e, "register failed");
            Err(Problem::from_status(axum::http::StatusCode::INTERNAL_SERVER_ERROR))
        }
    }
}

/// Any logged-in user.
#[secure(get "/me", auth = "jwt")]
async fn me(user: Principal) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "sub": user.subject(), "roles": user.roles(), "scopes": user.scopes() }))
}

/// Revoke the presented access token and its refresh family.
#[secure(post "/logout", auth = "jwt")]
async fn logout(State(app): State<App>, user: Principal) -> Result<axum::http::StatusCode, Problem> {
    app.issuer.logout(&user).await.map_err(|_| Problem::from_status(axum::http::StatusCode::SERVICE_UNAVAILABLE))?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// Admins only.
#[secure(get "/admin/users", role = "admin")]
async fn list_users(State(app): State<App>) -> Json<Vec<String>> {
    let conn = app.db.lock().unwrap_or_else(|e| e.into_inner());
    let names = conn
        .prepare("SELECT username FROM users ORDER BY username")
        .and_then(|mut s| s.query_map([], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>())
        .unwrap_or_default();
    Json(names)
}

/// Admins revoke every token a user holds.
#[secure(post "/admin/revoke/{username}", role = "admin")]
async fn revoke_user(State(app): State<App>, Path(username): Path<String>) -> Result<axum::http::StatusCode, Problem> {
    app.issuer
        .revoke_subject(&username)
        .await
        .map_err(|_| Problem::from_status(axum::http::StatusCode::SERVICE_UNAVAILABLE))?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// Machine clients with an API key carrying `reports:read`; 100 a minute per key.
#[secure(get "/reports", auth = "api_key", scope = "reports:read", rate = "100/min per key")]
async fn reports(client: Principal) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "owner": client.subject(), "reports": ["2026-q3", "2026-q4"] }))
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn list(v: Option<String>) -> Vec<String> {
    v.map(|s| s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect())
        .unwrap_or_default()
}

fn secret() -> Vec<u8> {
    match std::env::var("SHIELDWALL_JWT_SECRET") {
        Ok(s) if !s.is_empty() => s.into_bytes(),
        _ => {
            let s: [u8; 32] = rand::random();
            eprintln!("\n!!! DEVELOPMENT SECRET: SHIELDWALL_JWT_SECRET is not set; tokens die with the process.\n");
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, s).into_bytes()
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let db = open_db()?;

    match args.first().map(String::as_str) {
        Some("create-key") => {
            let owner = arg(&args, "--owner").ok_or("--owner is required")?;
            let keys = ApiKeys::new(SqliteKeyStore::with_connection(reopen()?)?);
            let created = keys.create(
                NewKey::new(owner).roles(list(arg(&args, "--roles"))).scopes(list(arg(&args, "--scopes"))),
            )?;
            println!("API key id {} — store the key now, it is not shown again:", created.id);
            println!("{}", created.key);
            return Ok(());
        }
        Some("revoke-key") => {
            let id = arg(&args, "--id").ok_or("--id is required")?;
            let keys = ApiKeys::new(SqliteKeyStore::with_connection(reopen()?)?);
            println!("{}", if keys.revoke(&id)? { "revoked" } else { "no such key" });
            return Ok(());
        }
        Some("create-user") => {
            let username = arg(&args, "--username").ok_or("--username is required")?;
            let password = arg(&args, "--password").ok_or("--password is required")?;
            let roles = list(arg(&args, "--roles"));
            let scopes = list(arg(&args, "--scopes"));
            let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
            let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
            let created = insert_user(&db, &username, &password, &roles, &scopes)?;
            println!("{}", if created { "created" } else { "that username exists" });
            return Ok(());
        }
        Some(other) => return Err(format!("unknown command {other:?}: create-key, revoke-key, create-user").into()),
        None => {}
    }

    let state = match std::env::var("SHIELDWALL_REDIS_URL") {
        Ok(url) if !url.is_empty() => TokenState::redis(shieldwall::rate::redis::RedisStore::new(&url)?),
        _ => TokenState::memory(),
    };
    let issuer = TokenIssuer::hs256(secret())
        .issuer("shieldwall-accounts")
        .audience("accounts-api")
        .state(state);
    let app = Shieldwall::with_state(App { db: db.clone(), issuer: issuer.clone() })
        .env()?
        .api_keys(ApiKeys::new(SqliteKeyStore::with_connection(reopen()?)?))
        .tokens(TokenEndpoint::new(issuer, SqliteUsers(db)))
        .routes(routes![register, me, logout, list_users, revoke_user, reports])
        .build()?;

    let addr = std::env::var("SHIELDWALL_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("shieldwall accounts listening on http://{}", listener.local_addr()?);
    shieldwall::serve(app, listener).await?;
    Ok(())
}

/// A second connection to the same database file, for the API-key store.
fn reopen() -> Result<rusqlite::Connection, Box<dyn std::error::Error>> {
    let url = std::env::var("SHIELDWALL_DATABASE_URL").unwrap_or_else(|_| "accounts.db".into());
    let path = url.strip_prefix("sqlite://").unwrap_or(&url).to_string();
    Ok(rusqlite::Connection::open(path)?)
}
