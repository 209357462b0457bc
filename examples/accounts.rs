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
//!
//! The optional `recovery_email` given at registration is stored encrypted at rest
//! (`shieldwall::crypto`): the `users.recovery_email` column holds `v1.<kid>.<…>`, sealed
//! with the current key of `SHIELDWALL_ENCRYPTION_KEYS` (`kid:base64key,…`; in development
//! a generated key, so values stored in one run cannot be read in the next) and bound to
//! the user's row. `GET /me` returns it decrypted to its owner.
//!
//! Sessions are bound to the account, not to its name: each row has a `security_stamp`
//! (random, replaced on password change and new for every account created), which every
//! refresh token of a session remembers. Deleting a user — `DELETE /admin/users/{name}`, or
//! by hand in the database — ends its sessions at their next refresh at the latest, and a
//! new account registered under the same name never inherits them. `POST /me/password`
//! changes the password through the library and ends every other session.
//! `POST /admin/revoke/{name}` ends every credential of a user, API keys included.

use std::sync::{Arc, Mutex};

use rusqlite::OptionalExtension;
use shieldwall::auth::api_key::{ApiKeys, NewKey, SqliteKeyStore};
use shieldwall::auth::passwords::Passwords;
use shieldwall::auth::revocation::TokenState;
use shieldwall::auth::tokens::{
    BoxFuture, TokenEndpoint, TokenError, TokenIssuer, UserRecord, UserStore, new_security_stamp,
};
use shieldwall::prelude::*;

type Db = Arc<Mutex<rusqlite::Connection>>;

#[derive(Clone)]
struct App {
    db: Db,
    issuer: TokenIssuer,
    /// The mounted token endpoint's clone, for password changes.
    tokens: TokenEndpoint,
    keys: Arc<Keyring>,
}

/// The encryption context of a user's recovery email: column and row, so a ciphertext
/// copied to another user's row does not open there.
fn recovery_context(username: &str) -> String {
    format!("users.recovery_email/{username}")
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
    // Databases made before the column existed get it now.
    let has_recovery: bool = conn
        .prepare("SELECT 1 FROM pragma_table_info('users') WHERE name = 'recovery_email'")?
        .exists([])?;
    if !has_recovery {
        conn.execute_batch("ALTER TABLE users ADD COLUMN recovery_email TEXT")?;
    }
    // Likewise the security stamp; existing accounts get a random one each (their refresh
    // tokens from before carry none and are refused: they log in again).
    let has_stamp: bool = conn
        .prepare("SELECT 1 FROM pragma_table_info('users') WHERE name = 'security_stamp'")?
        .exists([])?;
    if !has_stamp {
        conn.execute_batch("ALTER TABLE users ADD COLUMN security_stamp TEXT")?;
    }
    conn.execute_batch(
        "UPDATE users SET security_stamp = lower(hex(randomblob(16))) WHERE security_stamp IS NULL",
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
                "SELECT username, password_hash, roles, scopes, security_stamp FROM users WHERE username = ?1",
                [username],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, Option<String>>(4)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| e.to_string())?
            .map(|(subject, password_hash, roles, scopes, stamp)| {
                Ok(UserRecord {
                    subject,
                    password_hash,
                    roles: serde_json::from_str(&roles).map_err(|e| e.to_string())?,
                    scopes: serde_json::from_str(&scopes).map_err(|e| e.to_string())?,
                    // A row written without one (by hand) gets the password hash's stand-in.
                    security_stamp: stamp.unwrap_or_default(),
                })
            })
            .transpose()
        })
    }

    fn set_password<'a>(
        &'a self,
        subject: &'a str,
        password_hash: &'a str,
        security_stamp: &'a str,
    ) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            let conn = self.0.lock().unwrap_or_else(|e| e.into_inner());
            conn.execute(
                "UPDATE users SET password_hash = ?1, security_stamp = ?2 WHERE username = ?3",
                [password_hash, security_stamp, subject],
            )
            .map(|n| n == 1)
            .map_err(|e| e.to_string())
        })
    }
}

async fn insert_user(
    db: &Db,
    username: &str,
    password: &str,
    roles: &[&str],
    scopes: &[&str],
    recovery_email: Option<&Encrypted<String>>,
) -> Result<bool, String> {
    // Off the async workers, within the process-wide hashing bound.
    let hash = Passwords::new()
        .hash_async(password)
        .await
        .map_err(|e| e.to_string())?;
    let conn = db.lock().unwrap_or_else(|e| e.into_inner());
    let n = conn
        .execute(
            "INSERT OR IGNORE INTO users (username, password_hash, roles, scopes, recovery_email, security_stamp) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            rusqlite::params![
                username,
                hash,
                serde_json::to_string(roles).map_err(|e| e.to_string())?,
                serde_json::to_string(scopes).map_err(|e| e.to_string())?,
                recovery_email.map(Encrypted::as_str),
                // Every account gets its own: one re-created under an old name is another.
                new_security_stamp(),
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
    /// Stored encrypted.
    #[validate(email)]
    recovery_email: Option<String>,
}

fn username_chars(name: &str) -> Result<(), validator::ValidationError> {
    if name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c))
    {
        Ok(())
    } else {
        Err(validator::ValidationError::new("username")
            .with_message("use lower-case letters, digits, '_', '.' and '-'".into()))
    }
}

/// Anyone may register (five a minute per IP); new users get the `user` role.
#[secure(post "/register", public, rate = "5/min per ip")]
async fn register(
    State(app): State<App>,
    Json(body): Json<Register>,
) -> Result<axum::http::StatusCode, Problem> {
    let recovery = match &body.recovery_email {
        Some(email) => Some(
            app.keys
                .seal(&recovery_context(&body.username), email)
                .map_err(|e| {
                    tracing::error!(error = %e, "sealing the recovery email failed");
                    Problem::from_status(axum::http::StatusCode::INTERNAL_SERVER_ERROR)
                })?,
        ),
        None => None,
    };
    match insert_user(
        &app.db,
        &body.username,
        &body.password,
        &["user"],
        &["profile:read"],
        recovery.as_ref(),
    )
    .await
    {
        Ok(true) => Ok(axum::http::StatusCode::CREATED),
        Ok(false) => Err(
            Problem::new(axum::http::StatusCode::CONFLICT, "conflict", "Conflict")
                .with_detail("That username is taken."),
        ),
        Err(e) => {
            tracing::error!(error = %e, "register failed");
            Err(Problem::from_status(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            ))
        }
    }
}

/// Any logged-in user; their recovery email, decrypted, if they gave one.
#[secure(get "/me", auth = "jwt")]
async fn me(State(app): State<App>, user: Principal) -> Result<Json<serde_json::Value>, Problem> {
    let stored: Option<String> = {
        let conn = app.db.lock().unwrap_or_else(|e| e.into_inner());
        conn.query_row(
            "SELECT recovery_email FROM users WHERE username = ?1",
            [user.subject()],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| {
            tracing::error!(error = %e, "reading the user failed");
            Problem::from_status(axum::http::StatusCode::INTERNAL_SERVER_ERROR)
        })?
        .flatten()
    };
    let recovery_email = match stored {
        None => None,
        Some(text) => {
            let opened = Encrypted::<String>::parse(text)
                .and_then(|enc| app.keys.open(&recovery_context(user.subject()), &enc));
            Some(opened.map_err(|e| {
                // Altered, moved from another row, or sealed with a key not in SHIELDWALL_ENCRYPTION_KEYS.
                tracing::error!(error = %e, user = user.subject(), "the recovery email does not decrypt");
                Problem::from_status(axum::http::StatusCode::INTERNAL_SERVER_ERROR)
            })?)
        }
    };
    Ok(Json(serde_json::json!({
        "sub": user.subject(), "roles": user.roles(), "scopes": user.scopes(),
        "recovery_email": recovery_email,
    })))
}

/// Revoke the presented access token and its refresh family.
#[secure(post "/logout", auth = "jwt")]
async fn logout(
    State(app): State<App>,
    user: Principal,
) -> Result<axum::http::StatusCode, Problem> {
    app.issuer
        .logout(&user)
        .await
        .map_err(|_| Problem::from_status(axum::http::StatusCode::SERVICE_UNAVAILABLE))?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Validate)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    #[validate(length(min = 1, max = 128))]
    current_password: String,
    #[validate(length(min = 12, max = 128))]
    new_password: String,
}

/// Change one's own password (five tries a minute): every other session ends; the answer is
/// a fresh token pair for this one.
#[secure(post "/me/password", auth = "jwt", rate = "5/min")]
async fn change_password(
    State(app): State<App>,
    user: Principal,
    Json(body): Json<PasswordChange>,
) -> Result<Json<shieldwall::auth::tokens::TokenResponse>, Problem> {
    use axum::http::StatusCode;
    match app
        .tokens
        .change_password(&user, &body.current_password, &body.new_password)
        .await
    {
        Ok(pair) => Ok(Json(pair)),
        Err(TokenError::InvalidGrant) => Err(Problem::from_status(StatusCode::FORBIDDEN)
            .with_detail("The current password is not right.")),
        Err(TokenError::InvalidRequest) => {
            Err(Problem::from_status(StatusCode::UNPROCESSABLE_ENTITY)
                .with_detail("The new password is not acceptable."))
        }
        Err(_) => Err(Problem::from_status(StatusCode::SERVICE_UNAVAILABLE)),
    }
}

/// Admins only.
#[secure(get "/admin/users", role = "admin")]
async fn list_users(State(app): State<App>) -> Json<Vec<String>> {
    let conn = app.db.lock().unwrap_or_else(|e| e.into_inner());
    let names = conn
        .prepare("SELECT username FROM users ORDER BY username")
        .and_then(|mut s| {
            s.query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()
        })
        .unwrap_or_default();
    Json(names)
}

/// Admins end every credential a user holds: access and refresh tokens, and API keys.
#[secure(post "/admin/revoke/{username}", role = "admin")]
async fn revoke_user(
    State(app): State<App>,
    Path(username): Path<String>,
) -> Result<axum::http::StatusCode, Problem> {
    app.issuer.revoke_subject(&username).await.map_err(|e| {
        tracing::error!(error = %e, "revoking a user failed");
        Problem::from_status(axum::http::StatusCode::SERVICE_UNAVAILABLE)
    })?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// Admins delete a user: the row goes, and every credential it held ends.
#[secure(delete "/admin/users/{username}", role = "admin")]
async fn delete_user(
    State(app): State<App>,
    Path(username): Path<String>,
) -> Result<axum::http::StatusCode, Problem> {
    use axum::http::StatusCode;
    let deleted = {
        let conn = app.db.lock().unwrap_or_else(|e| e.into_inner());
        conn.execute("DELETE FROM users WHERE username = ?1", [&username])
    };
    match deleted {
        Ok(0) => return Err(Problem::from_status(StatusCode::NOT_FOUND)),
        Ok(_) => {}
        Err(e) => {
            tracing::error!(error = %e, "deleting a user failed");
            return Err(Problem::from_status(StatusCode::INTERNAL_SERVER_ERROR));
        }
    }
    app.issuer.revoke_subject(&username).await.map_err(|e| {
        // The row is gone, so refreshes are refused anyway; access tokens live out their
        // 15 minutes.
        tracing::error!(error = %e, "revoking a deleted user's credentials failed");
        Problem::from_status(StatusCode::SERVICE_UNAVAILABLE)
    })?;
    Ok(StatusCode::NO_CONTENT)
}

/// Machine clients with an API key carrying `reports:read`; 100 a minute per key.
#[secure(get "/reports", auth = "api_key", scope = "reports:read", rate = "100/min per key")]
async fn reports(client: Principal) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "owner": client.subject(), "reports": ["2026-q3", "2026-q4"] }))
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn list(v: Option<String>) -> Vec<String> {
    v.map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    })
    .unwrap_or_default()
}

/// SHIELDWALL_JWT_SECRET (or _FILE); a generated development secret when unset, which the
/// production profile refuses.
fn secret() -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let secret = Secret::from_env_or_development("SHIELDWALL_JWT_SECRET")?;
    if secret.is_development() {
        eprintln!(
            "\n!!! DEVELOPMENT SECRET: SHIELDWALL_JWT_SECRET is not set; tokens die with the process.\n"
        );
    }
    Ok(secret.expose().as_bytes().to_vec())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // SHIELDWALL_LOG=json: JSON lines with the request id on each; RUST_LOG filters.
    shieldwall::observe::init_logging_from_env();
    // SHIELDWALL_PROFILE; in development, a .env file (before any variable is read).
    shieldwall::config::init()?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let db = open_db()?;

    match args.first().map(String::as_str) {
        Some("create-key") => {
            let owner = arg(&args, "--owner").ok_or("--owner is required")?;
            let keys = ApiKeys::new(SqliteKeyStore::with_connection(reopen()?)?);
            let created = keys.create(
                NewKey::new(owner)
                    .roles(list(arg(&args, "--roles")))
                    .scopes(list(arg(&args, "--scopes"))),
            )?;
            println!(
                "API key id {} — store the key now, it is not shown again:",
                created.id
            );
            println!("{}", created.key);
            return Ok(());
        }
        Some("revoke-key") => {
            let id = arg(&args, "--id").ok_or("--id is required")?;
            let keys = ApiKeys::new(SqliteKeyStore::with_connection(reopen()?)?);
            println!(
                "{}",
                if keys.revoke(&id)? {
                    "revoked"
                } else {
                    "no such key"
                }
            );
            return Ok(());
        }
        Some("create-user") => {
            let username = arg(&args, "--username").ok_or("--username is required")?;
            let password = arg(&args, "--password").ok_or("--password is required")?;
            let roles = list(arg(&args, "--roles"));
            let scopes = list(arg(&args, "--scopes"));
            let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
            let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
            let created = insert_user(&db, &username, &password, &roles, &scopes, None).await?;
            println!(
                "{}",
                if created {
                    "created"
                } else {
                    "that username exists"
                }
            );
            return Ok(());
        }
        Some(other) => {
            return Err(
                format!("unknown command {other:?}: create-key, revoke-key, create-user").into(),
            );
        }
        None => {}
    }

    let state = match std::env::var("SHIELDWALL_REDIS_URL") {
        Ok(url) if !url.is_empty() => {
            TokenState::redis(shieldwall::rate::redis::RedisStore::new(&url)?)
        }
        _ => TokenState::memory(),
    };
    let issuer = TokenIssuer::hs256(secret()?)
        .issuer("shieldwall-accounts")
        .audience("accounts-api")
        .state(state);
    let keys = Keyring::from_env_or_development()?;
    if keys.is_development() {
        eprintln!(
            "\n!!! DEVELOPMENT KEY: SHIELDWALL_ENCRYPTION_KEYS is not set; recovery emails stored now"
        );
        eprintln!(
            "!!! cannot be decrypted after a restart. Set it to kid:base64key (openssl rand -base64 32).\n"
        );
    }
    let tokens = TokenEndpoint::new(issuer.clone(), SqliteUsers(db.clone()));
    let app = Shieldwall::with_state(App {
        db: db.clone(),
        issuer,
        tokens: tokens.clone(),
        keys: Arc::new(keys),
    })
    .env()?
    .api_keys(ApiKeys::new(SqliteKeyStore::with_connection(reopen()?)?))
    .tokens(tokens)
    // GET /health (liveness) and GET /ready.
    .health(shieldwall::health::Health::new())
    .routes(routes![
        register,
        me,
        change_password,
        logout,
        list_users,
        revoke_user,
        delete_user,
        reports
    ])
    // build() + the listening configuration: SHIELDWALL_ADDR (default 127.0.0.1:3000), and
    // the trusted proxies the connection limits exempt.
    .server()?;

    let bound = app.bind().await?;
    println!("shieldwall accounts listening on {}", bound.url());
    bound.run().await?;
    Ok(())
}

/// A second connection to the same database file, for the API-key store.
fn reopen() -> Result<rusqlite::Connection, Box<dyn std::error::Error>> {
    let url = std::env::var("SHIELDWALL_DATABASE_URL").unwrap_or_else(|_| "accounts.db".into());
    let path = url.strip_prefix("sqlite://").unwrap_or(&url).to_string();
    Ok(rusqlite::Connection::open(path)?)
}
