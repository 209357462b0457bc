//! Accounts: register, log in (`POST /token`), refresh, log out, an admin-only route and an
//! API-key route, on a SQLite database.
//!
//! ```sh
//! cargo run --example accounts                       # serve on 127.0.0.1:3000 (SHIELDWALL_ADDR)
//! cargo run --example accounts -- create-key --owner billing --scopes reports:read   # a service's key
//! cargo run --example accounts -- create-user --username root --password '…' --roles admin
//! cargo run --example accounts -- create-key --user root --scopes reports:read      # a user's key
//! ```
//!
//! The database file comes from `SHIELDWALL_DATABASE_URL` (default `accounts.db`); the
//! HS256 secret from `SHIELDWALL_JWT_SECRET` (a random development secret otherwise);
//! `SHIELDWALL_REDIS_URL` shares rate limits and revocations between instances (a Redis that
//! persists: when the token state is lost — this process restarting without Redis, or a
//! volatile Redis restarting — every token issued before is refused and everyone logs in
//! again; see `shieldwall::auth::revocation`).
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
//!
//! Tokens name an account, not a name: each row has an `id`, `usr_` and 128 random bits in
//! hex, made when the row is created (databases from before the column get one per row;
//! their tokens, which named usernames, are refused and their users log in again) and
//! never reused. It is the token subject, so a token of a deleted account names nothing —
//! `GET /me` answers 401 — even after someone registers the same name again. Routes that
//! take a username (`/admin/revoke/{name}`, `/admin/users/{name}`) resolve it to the id.
//!
//! API keys are owned by a subject too, and the two kinds cannot collide: `create-key
//! --user NAME` gives the key to that user (its owner is the user's id, so revoking or
//! deleting the user ends it, and so does removing the row by hand: triggers revoke the
//! keys of a deleted row or a changed id, and `AccountKeys` refuses a user's key whose id
//! no row has, however the row went — `INSERT OR REPLACE` deletes without firing delete
//! triggers), `create-key --owner NAME` to a service, whose name may not begin
//! with `usr_`. A user registering the name `billing` has nothing to do with the `billing`
//! service's keys. Keys made before ids existed keep the owner they were given, and count as
//! a service's: re-issue a user's old key with `--user`.

use std::sync::{Arc, Mutex};

use rusqlite::OptionalExtension;
use shieldwall::auth::api_key::{
    ApiKeyRecord, ApiKeyStore, ApiKeys, KeyStoreError, NewKey, SqliteKeyStore,
};
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

/// Prefix of every user's subject (`usr_` and 32 hex digits). Service key owners may not
/// begin with it, so no service can be named like a user's subject, nor the reverse.
const USER_SUBJECT_PREFIX: &str = "usr_";

/// SQL for a new user id: `usr_` and 128 random bits in hex.
const NEW_USER_ID: &str = "'usr_' || lower(hex(randomblob(16)))";

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
    // And the account id, the token subject: one per row, random, unique, never reused.
    // Tokens from before named the username; no row has that id, so they are refused.
    let has_id: bool = conn
        .prepare("SELECT 1 FROM pragma_table_info('users') WHERE name = 'id'")?
        .exists([])?;
    if !has_id {
        conn.execute_batch("ALTER TABLE users ADD COLUMN id TEXT")?;
    }
    conn.execute_batch(&format!(
        "UPDATE users SET id = {NEW_USER_ID} WHERE id IS NULL;
         CREATE UNIQUE INDEX IF NOT EXISTS users_id ON users (id);
         -- a row inserted by hand without one gets one
         DROP TRIGGER IF EXISTS users_id_default;
         CREATE TRIGGER users_id_default AFTER INSERT ON users
           WHEN NEW.id IS NULL OR substr(NEW.id, 1, 4) <> 'usr_'
           BEGIN UPDATE users SET id = {NEW_USER_ID} WHERE rowid = NEW.rowid; END;"
    ))?;
    // The API keys live in the same file; a deleted row (through the app or by hand) takes
    // the keys of its account with it, and so does a changed id. (A row replaced by
    // `INSERT OR REPLACE` is deleted without firing delete triggers: `AccountKeys` below
    // refuses the keys of an id no row has, whatever removed it.)
    drop(SqliteKeyStore::with_connection(reopen()?)?);
    conn.execute_batch(
        "CREATE TRIGGER IF NOT EXISTS users_delete_revokes_keys AFTER DELETE ON users
           BEGIN UPDATE shieldwall_api_keys SET revoked = 1 WHERE owner = OLD.id; END;
         CREATE TRIGGER IF NOT EXISTS users_id_change_revokes_keys AFTER UPDATE OF id ON users
           WHEN OLD.id IS NOT NEW.id
           BEGIN UPDATE shieldwall_api_keys SET revoked = 1 WHERE owner = OLD.id; END;",
    )?;
    Ok(Arc::new(Mutex::new(conn)))
}

/// Run `f` on the database off the async workers. SQLite waits (up to its busy timeout)
/// while another connection holds the file — a backup, a migration, a long write — and a
/// worker waiting there would serve no one else: every route, `/health` included, would
/// stall with it (`bench/abuse/faults.sh sqlite_locked`).
async fn on_db<T, F>(db: &Db, f: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce(&rusqlite::Connection) -> T + Send + 'static,
{
    let db = db.clone();
    tokio::task::spawn_blocking(move || {
        let conn = db.lock().unwrap_or_else(|e| e.into_inner());
        f(&conn)
    })
    .await
    .map_err(|e| e.to_string())
}

/// The API keys, with one more rule: a user's key (owned by a `usr_…` id) is refused once
/// no account has that id, however the row went (deleted, replaced or renumbered by hand).
struct AccountKeys {
    keys: SqliteKeyStore,
    db: Db,
}

impl ApiKeyStore for AccountKeys {
    fn find(&self, id: &str) -> Result<Option<ApiKeyRecord>, KeyStoreError> {
        let Some(mut record) = self.keys.find(id)? else {
            return Ok(None);
        };
        if !record.revoked && record.owner.starts_with(USER_SUBJECT_PREFIX) {
            let conn = self.db.lock().unwrap_or_else(|e| e.into_inner());
            let live = conn
                .prepare_cached("SELECT 1 FROM users WHERE id = ?1")
                .and_then(|mut q| q.exists([&record.owner]))
                .map_err(|e| KeyStoreError::Backend(e.to_string()))?;
            record.revoked = !live;
        }
        Ok(Some(record))
    }
    fn insert(&self, record: ApiKeyRecord) -> Result<(), KeyStoreError> {
        self.keys.insert(record)
    }
    fn revoke(&self, id: &str) -> Result<bool, KeyStoreError> {
        self.keys.revoke(id)
    }
    fn revoke_owner(&self, owner: &str) -> Result<usize, KeyStoreError> {
        self.keys.revoke_owner(owner)
    }
}

/// The token endpoint reads users from the same database.
struct SqliteUsers(Db);

impl SqliteUsers {
    /// The user whose `column` (`username` or `id`) is `value`.
    async fn user_where(
        &self,
        column: &'static str,
        value: &str,
    ) -> Result<Option<UserRecord>, String> {
        let value = value.to_string();
        on_db(&self.0, move |conn| user_where(conn, column, &value)).await?
    }
}

fn user_where(
    conn: &rusqlite::Connection,
    column: &str,
    value: &str,
) -> Result<Option<UserRecord>, String> {
    {
        conn.query_row(
            &format!(
                "SELECT id, password_hash, roles, scopes, security_stamp FROM users WHERE {column} = ?1"
            ),
            [value],
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
                // The account's id: stable, never reused, never a username.
                subject,
                password_hash,
                roles: serde_json::from_str(&roles).map_err(|e| e.to_string())?,
                scopes: serde_json::from_str(&scopes).map_err(|e| e.to_string())?,
                // A row written without one (by hand) gets the password hash's stand-in.
                security_stamp: stamp.unwrap_or_default(),
            })
        })
        .transpose()
    }
}

impl UserStore for SqliteUsers {
    fn find<'a>(&'a self, username: &'a str) -> BoxFuture<'a, Result<Option<UserRecord>, String>> {
        Box::pin(self.user_where("username", username))
    }

    /// Tokens name the account's id.
    fn find_subject<'a>(
        &'a self,
        subject: &'a str,
    ) -> BoxFuture<'a, Result<Option<UserRecord>, String>> {
        Box::pin(self.user_where("id", subject))
    }

    fn set_password<'a>(
        &'a self,
        subject: &'a str,
        password_hash: &'a str,
        security_stamp: &'a str,
    ) -> BoxFuture<'a, Result<bool, String>> {
        let args = [password_hash, security_stamp, subject].map(str::to_string);
        Box::pin(async move {
            on_db(&self.0, move |conn| {
                conn.execute(
                    "UPDATE users SET password_hash = ?1, security_stamp = ?2 WHERE id = ?3",
                    args,
                )
                .map(|n| n == 1)
                .map_err(|e| e.to_string())
            })
            .await?
        })
    }
}

/// The id (token subject) of the user with this name.
async fn user_id(db: &Db, username: &str) -> Result<Option<String>, String> {
    let username = username.to_string();
    on_db(db, move |conn| {
        conn.query_row(
            "SELECT id FROM users WHERE username = ?1",
            [username],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| e.to_string())
    })
    .await?
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
    let row = (
        username.to_string(),
        hash,
        serde_json::to_string(roles).map_err(|e| e.to_string())?,
        serde_json::to_string(scopes).map_err(|e| e.to_string())?,
        recovery_email.map(|e| e.as_str().to_string()),
        // Every account gets its own: one re-created under an old name is another.
        new_security_stamp(),
    );
    let n = on_db(db, move |conn| {
        conn.execute(
            &format!(
                "INSERT OR IGNORE INTO users (username, password_hash, roles, scopes, recovery_email, security_stamp, id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, {NEW_USER_ID})"
            ),
            rusqlite::params![row.0, row.1, row.2, row.3, row.4, row.5],
        )
        .map_err(|e| e.to_string())
    })
    .await??;
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

/// Any logged-in user; their account, and its recovery email, decrypted, if they gave one.
/// The token names the account by its id: a token of a deleted account names nothing,
/// whatever has been registered under its name since.
#[secure(get "/me", auth = "jwt")]
async fn me(State(app): State<App>, user: Principal) -> Result<Json<serde_json::Value>, Problem> {
    let id = user.subject().to_string();
    let row: Option<(String, Option<String>)> = on_db(&app.db, move |conn| {
        conn.query_row(
            "SELECT username, recovery_email FROM users WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(|e| e.to_string())
    })
    .await
    .and_then(|r| r)
    .map_err(|e| {
        tracing::error!(error = %e, "reading the user failed");
        Problem::from_status(axum::http::StatusCode::INTERNAL_SERVER_ERROR)
    })?;
    let Some((username, stored)) = row else {
        // The account is gone: the token is as good as revoked.
        return Err(shieldwall::Rejection::InvalidToken.into_problem("api"));
    };
    let recovery_email = match stored {
        None => None,
        Some(text) => {
            let opened = Encrypted::<String>::parse(text)
                .and_then(|enc| app.keys.open(&recovery_context(&username), &enc));
            Some(opened.map_err(|e| {
                // Altered, moved from another row, or sealed with a key not in SHIELDWALL_ENCRYPTION_KEYS.
                tracing::error!(error = %e, user = user.subject(), "the recovery email does not decrypt");
                Problem::from_status(axum::http::StatusCode::INTERNAL_SERVER_ERROR)
            })?)
        }
    };
    Ok(Json(serde_json::json!({
        "sub": user.subject(), "username": username, "roles": user.roles(),
        "scopes": user.scopes(), "recovery_email": recovery_email,
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

/// Change one's own password (five tries a minute; wrong current passwords also spend the
/// login budgets): every other session ends; the answer is a fresh token pair for this one.
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
        // Wrong current passwords spend the login budgets: this account's from this address,
        // and the account's ceiling.
        Err(TokenError::TooManyAttempts { retry_after_secs }) => {
            Err(shieldwall::Rejection::RateLimited {
                retry_after: retry_after_secs,
            }
            .into_problem("api"))
        }
        Err(_) => Err(Problem::from_status(StatusCode::SERVICE_UNAVAILABLE)),
    }
}

/// Admins only.
#[secure(get "/admin/users", role = "admin")]
async fn list_users(State(app): State<App>) -> Json<Vec<String>> {
    let names = on_db(&app.db, |conn| {
        conn.prepare("SELECT username FROM users ORDER BY username")
            .and_then(|mut s| {
                s.query_map([], |r| r.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap_or_default()
    })
    .await
    .unwrap_or_default();
    Json(names)
}

/// Admins end every credential a user holds: access and refresh tokens, and API keys. The
/// name is resolved to the account's id, the subject its credentials carry.
#[secure(post "/admin/revoke/{username}", role = "admin")]
async fn revoke_user(
    State(app): State<App>,
    Path(username): Path<String>,
) -> Result<axum::http::StatusCode, Problem> {
    use axum::http::StatusCode;
    let id = user_id(&app.db, &username)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "reading the user failed");
            Problem::from_status(StatusCode::INTERNAL_SERVER_ERROR)
        })?
        .ok_or_else(|| Problem::from_status(StatusCode::NOT_FOUND))?;
    app.issuer.revoke_subject(&id).await.map_err(|e| {
        tracing::error!(error = %e, "revoking a user failed");
        Problem::from_status(StatusCode::SERVICE_UNAVAILABLE)
    })?;
    Ok(StatusCode::NO_CONTENT)
}

/// Admins delete a user: the row goes, and every credential its account held ends.
#[secure(delete "/admin/users/{username}", role = "admin")]
async fn delete_user(
    State(app): State<App>,
    Path(username): Path<String>,
) -> Result<axum::http::StatusCode, Problem> {
    use axum::http::StatusCode;
    let deleted: Result<Option<String>, String> = on_db(&app.db, move |conn| {
        conn.query_row(
            "DELETE FROM users WHERE username = ?1 RETURNING id",
            [&username],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| e.to_string())
    })
    .await
    .and_then(|r| r);
    let id = match deleted {
        Ok(Some(id)) => id,
        Ok(None) => return Err(Problem::from_status(StatusCode::NOT_FOUND)),
        Err(e) => {
            tracing::error!(error = %e, "deleting a user failed");
            return Err(Problem::from_status(StatusCode::INTERNAL_SERVER_ERROR));
        }
    };
    app.issuer.revoke_subject(&id).await.map_err(|e| {
        // The row is gone, so refreshes are refused, `/me` answers 401, and the trigger
        // revoked its keys; other routes' access tokens live out their 15 minutes.
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
            // A user's key is owned by the user's id; a service's by its name, which may not
            // look like a user's id: the two can never be confused.
            let owner = match (arg(&args, "--user"), arg(&args, "--owner")) {
                (Some(username), None) => user_id(&db, &username)
                    .await?
                    .ok_or_else(|| format!("--user {username:?}: no such user"))?,
                (None, Some(service)) if service.is_empty() => {
                    return Err("--owner needs a service name".into());
                }
                (None, Some(service)) if service.starts_with(USER_SUBJECT_PREFIX) => {
                    return Err(format!(
                        "--owner {service:?}: service names may not begin with {USER_SUBJECT_PREFIX:?} (user ids do); for a user's key, write --user <username>"
                    )
                    .into());
                }
                (None, Some(service)) => service,
                _ => {
                    return Err(
                        "give either --user <username> (a user's key) or --owner <service> (a service's key)"
                            .into(),
                    );
                }
            };
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
    .api_keys(ApiKeys::new(AccountKeys {
        keys: SqliteKeyStore::with_connection(reopen()?)?,
        db: db.clone(),
    }))
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
