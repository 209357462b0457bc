//! API keys for machine clients.
//!
//! A key looks like `swk_<id>_<secret>`: the id is public and names the record, the secret
//! is 32 random bytes. Only the SHA-256 of the secret is stored (the secret is random, so a
//! slow hash adds nothing), and it is compared in constant time; an unknown id is compared
//! against a dummy hash, so timing does not reveal which ids exist. Keys are read from one
//! header (`X-API-Key` by default) and never from the query string.
//!
//! A key's owner is its principal's subject, in the same namespace as token subjects:
//! [`crate::auth::tokens::TokenIssuer::revoke_subject`] ends a user's tokens and the keys
//! owned by the same subject. So owners must be as unambiguous as subjects: a user's key is
//! owned by the user's stable id (the subject of their tokens, never their name), and a
//! service's owner must be a name no user subject can take (say user ids are `usr_…` and
//! service names may not start so). Otherwise a user registering the name `billing`, or
//! deleted and revoked under it, would be confused with the `billing` service.
//!
//! ```
//! use shieldwall_runtime::auth::api_key::{ApiKeys, MemoryKeyStore, NewKey};
//!
//! let keys = ApiKeys::new(MemoryKeyStore::new());
//! let created = keys.create(NewKey::new("billing-service").roles(["reporter"]).scopes(["reports:read"])).unwrap();
//! println!("store this now, it is shown once: {}", created.key);
//! assert!(created.key.starts_with("swk_"));
//! ```

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderName;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::Rejection;
use crate::principal::{Credential, Principal};

/// Default header carrying the key.
pub const DEFAULT_HEADER: &str = "x-api-key";
const PREFIX: &str = "swk_";
const MAX_KEY_LEN: usize = 128;

/// A stored key: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// Public id (the part after `swk_`).
    pub id: String,
    /// Who the key belongs to: the principal's subject — a user's stable id, or a service
    /// name that no user subject can equal (see the module docs).
    pub owner: String,
    /// SHA-256 of the secret.
    pub hash: [u8; 32],
    /// Roles granted.
    pub roles: Vec<String>,
    /// Scopes granted.
    pub scopes: Vec<String>,
    /// Unix time after which the key is refused.
    pub expires_at: Option<u64>,
    /// Revoked keys are refused.
    pub revoked: bool,
}

/// A key store failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyStoreError {
    /// The backing store failed.
    #[error("the API key store failed: {0}")]
    Backend(String),
}

/// Where API key records live.
pub trait ApiKeyStore: Send + Sync + 'static {
    /// The record with this id.
    fn find(&self, id: &str) -> Result<Option<ApiKeyRecord>, KeyStoreError>;
    /// Store a new record.
    fn insert(&self, record: ApiKeyRecord) -> Result<(), KeyStoreError>;
    /// Mark a key revoked; false if there is no such key.
    fn revoke(&self, id: &str) -> Result<bool, KeyStoreError>;
    /// Mark every key of `owner` revoked; how many were not revoked yet. Used when every
    /// credential of a user is ended (`TokenIssuer::revoke_subject`). The default refuses,
    /// so that call reports that it could not end the keys rather than silently leaving
    /// them working.
    fn revoke_owner(&self, owner: &str) -> Result<usize, KeyStoreError> {
        let _ = owner;
        Err(KeyStoreError::Backend(
            "this ApiKeyStore does not implement revoke_owner".into(),
        ))
    }
    /// Whether [`ApiKeyStore::find`] may wait (on a database, a file lock, the network).
    /// Such lookups run on the blocking pool, so a store that waits — a SQLite file another
    /// writer holds waits up to its busy timeout — holds a blocking thread, never one of
    /// the runtime's workers, and requests without a key keep being served. `true` unless
    /// the store only reads memory.
    fn may_block(&self) -> bool {
        true
    }
}

/// Keys in memory (tests, single-process apps).
#[derive(Debug, Default)]
pub struct MemoryKeyStore {
    keys: RwLock<HashMap<String, ApiKeyRecord>>,
}

impl MemoryKeyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl ApiKeyStore for MemoryKeyStore {
    fn find(&self, id: &str) -> Result<Option<ApiKeyRecord>, KeyStoreError> {
        Ok(self
            .keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned())
    }
    fn insert(&self, record: ApiKeyRecord) -> Result<(), KeyStoreError> {
        self.keys
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(record.id.clone(), record);
        Ok(())
    }
    fn revoke(&self, id: &str) -> Result<bool, KeyStoreError> {
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        Ok(keys.get_mut(id).map(|r| r.revoked = true).is_some())
    }
    fn revoke_owner(&self, owner: &str) -> Result<usize, KeyStoreError> {
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        let mut n = 0;
        for r in keys.values_mut().filter(|r| r.owner == owner && !r.revoked) {
            r.revoked = true;
            n += 1;
        }
        Ok(n)
    }
    fn may_block(&self) -> bool {
        false
    }
}

/// Keys in a SQLite database (table `shieldwall_api_keys`, created if missing).
#[cfg(feature = "sqlite")]
pub struct SqliteKeyStore {
    conn: std::sync::Mutex<rusqlite::Connection>,
}

#[cfg(feature = "sqlite")]
impl std::fmt::Debug for SqliteKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteKeyStore")
    }
}

#[cfg(feature = "sqlite")]
impl SqliteKeyStore {
    /// Open (or create) the database at `path`.
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<Self, KeyStoreError> {
        let conn = rusqlite::Connection::open(path).map_err(backend)?;
        Self::with_connection(conn)
    }

    /// Use an open connection.
    pub fn with_connection(conn: rusqlite::Connection) -> Result<Self, KeyStoreError> {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS shieldwall_api_keys (
                id TEXT PRIMARY KEY NOT NULL,
                owner TEXT NOT NULL,
                hash BLOB NOT NULL,
                roles TEXT NOT NULL,
                scopes TEXT NOT NULL,
                expires_at INTEGER,
                revoked INTEGER NOT NULL DEFAULT 0,
                created_at INTEGER NOT NULL
            );",
        )
        .map_err(backend)?;
        Ok(Self {
            conn: std::sync::Mutex::new(conn),
        })
    }
}

#[cfg(feature = "sqlite")]
fn backend(e: impl std::fmt::Display) -> KeyStoreError {
    KeyStoreError::Backend(e.to_string())
}

#[cfg(feature = "sqlite")]
impl ApiKeyStore for SqliteKeyStore {
    fn find(&self, id: &str) -> Result<Option<ApiKeyRecord>, KeyStoreError> {
        use rusqlite::OptionalExtension;
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let mut stmt = conn
            .prepare_cached(
                "SELECT owner, hash, roles, scopes, expires_at, revoked FROM shieldwall_api_keys WHERE id = ?1",
            )
            .map_err(backend)?;
        let row = stmt
            .query_row([id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            })
            .optional()
            .map_err(backend)?;
        let Some((owner, hash, roles, scopes, expires_at, revoked)) = row else {
            return Ok(None);
        };
        let hash: [u8; 32] = hash.try_into().map_err(|_| backend("corrupt key hash"))?;
        Ok(Some(ApiKeyRecord {
            id: id.to_string(),
            owner,
            hash,
            roles: serde_json::from_str(&roles).map_err(backend)?,
            scopes: serde_json::from_str(&scopes).map_err(backend)?,
            expires_at: expires_at.and_then(|e| u64::try_from(e).ok()),
            revoked: revoked != 0,
        }))
    }

    fn insert(&self, r: ApiKeyRecord) -> Result<(), KeyStoreError> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        conn.execute(
            "INSERT INTO shieldwall_api_keys (id, owner, hash, roles, scopes, expires_at, revoked, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            rusqlite::params![
                r.id,
                r.owner,
                r.hash.to_vec(),
                serde_json::to_string(&r.roles).map_err(backend)?,
                serde_json::to_string(&r.scopes).map_err(backend)?,
                r.expires_at.and_then(|e| i64::try_from(e).ok()),
                i64::from(r.revoked),
                i64::try_from(unix_now()).unwrap_or(i64::MAX),
            ],
        )
        .map_err(backend)?;
        Ok(())
    }

    fn revoke(&self, id: &str) -> Result<bool, KeyStoreError> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let n = conn
            .execute(
                "UPDATE shieldwall_api_keys SET revoked = 1 WHERE id = ?1",
                [id],
            )
            .map_err(backend)?;
        Ok(n > 0)
    }

    fn revoke_owner(&self, owner: &str) -> Result<usize, KeyStoreError> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        conn.execute(
            "UPDATE shieldwall_api_keys SET revoked = 1 WHERE owner = ?1 AND revoked = 0",
            [owner],
        )
        .map_err(backend)
    }
}

/// A key to create.
#[derive(Debug, Clone)]
pub struct NewKey {
    owner: String,
    roles: Vec<String>,
    scopes: Vec<String>,
    expires_in: Option<Duration>,
}

impl NewKey {
    /// A key for `owner` with no roles or scopes. `owner` becomes the principal's subject:
    /// a user's stable id for a user's key, or a service name that cannot be a user's
    /// subject (see the module docs).
    pub fn new(owner: impl Into<String>) -> Self {
        Self {
            owner: owner.into(),
            roles: Vec::new(),
            scopes: Vec::new(),
            expires_in: None,
        }
    }
    /// Roles granted.
    pub fn roles<I: IntoIterator<Item = T>, T: Into<String>>(mut self, roles: I) -> Self {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }
    /// Scopes granted.
    pub fn scopes<I: IntoIterator<Item = T>, T: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }
    /// Expire the key after this long.
    pub fn expires_in(mut self, d: Duration) -> Self {
        self.expires_in = Some(d);
        self
    }
}

/// A freshly created key. `key` is the only copy of the secret: show it once.
#[derive(Clone)]
pub struct CreatedKey {
    /// Public id.
    pub id: String,
    /// The full key to hand to the client.
    pub key: String,
}

impl std::fmt::Debug for CreatedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// API key authentication: a store and the header to read.
#[derive(Clone)]
pub struct ApiKeys {
    store: Arc<dyn ApiKeyStore>,
    header: HeaderName,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys")
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn sha256(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

impl ApiKeys {
    /// Keys from `store`, read from `X-API-Key`.
    pub fn new(store: impl ApiKeyStore) -> Self {
        Self::shared(Arc::new(store))
    }

    /// Keys from a shared store.
    pub fn shared(store: Arc<dyn ApiKeyStore>) -> Self {
        Self {
            store,
            header: HeaderName::from_static(DEFAULT_HEADER),
        }
    }

    /// Read keys from another header (never from the query string). Every layer follows
    /// the name: responses to requests carrying it are `Cache-Control: no-store`, CORS
    /// preflights allow it, and error reports scrub it.
    pub fn header(mut self, name: HeaderName) -> Self {
        self.header = name;
        self
    }

    /// The header keys are read from.
    pub fn header_name(&self) -> &HeaderName {
        &self.header
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn ApiKeyStore> {
        &self.store
    }

    /// Create a key and store its hash. The returned secret is never stored.
    pub fn create(&self, new: NewKey) -> Result<CreatedKey, KeyStoreError> {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let id_bytes: [u8; 9] = rand::random();
        let id = b64.encode(id_bytes).replace(['-', '_'], "x");
        let secret_bytes: [u8; 32] = rand::random();
        let secret = b64.encode(secret_bytes);
        self.store.insert(ApiKeyRecord {
            id: id.clone(),
            owner: new.owner,
            hash: sha256(secret.as_bytes()),
            roles: new.roles,
            scopes: new.scopes,
            expires_at: new
                .expires_in
                .map(|d| unix_now().saturating_add(d.as_secs())),
            revoked: false,
        })?;
        Ok(CreatedKey {
            key: format!("{PREFIX}{id}_{secret}"),
            id,
        })
    }

    /// Revoke a key by id.
    pub fn revoke(&self, id: &str) -> Result<bool, KeyStoreError> {
        self.store.revoke(id)
    }

    /// Revoke every key `owner` has; how many were still live.
    pub fn revoke_owner(&self, owner: &str) -> Result<usize, KeyStoreError> {
        self.store.revoke_owner(owner)
    }

    /// Authenticate a presented key.
    pub fn verify(&self, presented: &[u8]) -> Result<Principal, Rejection> {
        let (id, secret) = parse(presented)?;
        let record = self.store.find(id).map_err(store_failed)?;
        check(record, secret)
    }

    /// [`ApiKeys::verify`] for the request path: the store lookup runs on the blocking pool
    /// when the store may wait ([`ApiKeyStore::may_block`]), so a locked database delays
    /// the requests carrying keys and nothing else.
    pub async fn verify_async(&self, presented: &[u8]) -> Result<Principal, Rejection> {
        let (id, secret) = parse(presented)?;
        let record = if self.store.may_block() {
            let store = self.store.clone();
            let id = id.to_owned();
            tokio::task::spawn_blocking(move || store.find(&id))
                .await
                .map_err(|e| {
                    tracing::error!(target: "shieldwall::auth", error = %e, "API key lookup failed");
                    Rejection::Unavailable
                })?
        } else {
            self.store.find(id)
        }
        .map_err(store_failed)?;
        check(record, secret)
    }
}

/// The id and secret of a presented key (`swk_<id>_<secret>`).
fn parse(presented: &[u8]) -> Result<(&str, &str), Rejection> {
    if presented.len() > MAX_KEY_LEN {
        return Err(Rejection::MalformedCredentials("The API key is malformed."));
    }
    let text = std::str::from_utf8(presented)
        .map_err(|_| Rejection::MalformedCredentials("The API key is malformed."))?;
    text.strip_prefix(PREFIX)
        .and_then(|rest| rest.split_once('_'))
        .filter(|(id, s)| !id.is_empty() && !s.is_empty())
        .ok_or(Rejection::InvalidToken)
}

fn store_failed(e: KeyStoreError) -> Rejection {
    tracing::error!(target: "shieldwall::auth", error = %e, "API key store failed");
    Rejection::Unavailable
}

/// The principal of a key whose stored record is `record`, if `secret` is its secret.
fn check(record: Option<ApiKeyRecord>, secret: &str) -> Result<Principal, Rejection> {
    let presented_hash = sha256(secret.as_bytes());
    let expected = record.as_ref().map_or([0u8; 32], |r| r.hash);
    let matches: bool = presented_hash.ct_eq(&expected).into();
    let Some(record) = record.filter(|_| matches) else {
        return Err(Rejection::InvalidToken);
    };
    if record.revoked || record.expires_at.is_some_and(|e| unix_now() >= e) {
        return Err(Rejection::InvalidToken);
    }
    Ok(Principal::from_parts(
        record.owner,
        Credential::ApiKey { id: record.id },
        record.roles,
        record.scopes,
        None,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_verify_revoke() {
        let keys = ApiKeys::new(MemoryKeyStore::new());
        let k = keys
            .create(NewKey::new("svc").roles(["r"]).scopes(["s"]))
            .unwrap();
        let p = keys.verify(k.key.as_bytes()).unwrap();
        assert_eq!(p.subject(), "svc");
        assert_eq!(p.credential(), &Credential::ApiKey { id: k.id.clone() });
        // the stored record has no secret in it
        let rec = keys.store().find(&k.id).unwrap().unwrap();
        let secret = k.key.splitn(3, '_').nth(2).unwrap();
        assert!(!format!("{rec:?}").contains(secret));
        // wrong secret, unknown id, garbage
        let wrong = format!("swk_{}_{}", k.id, "A".repeat(43));
        assert!(matches!(
            keys.verify(wrong.as_bytes()),
            Err(Rejection::InvalidToken)
        ));
        assert!(matches!(
            keys.verify(b"swk_nope_secret"),
            Err(Rejection::InvalidToken)
        ));
        assert!(matches!(
            keys.verify(b"garbage"),
            Err(Rejection::InvalidToken)
        ));
        assert!(keys.revoke(&k.id).unwrap());
        assert!(matches!(
            keys.verify(k.key.as_bytes()),
            Err(Rejection::InvalidToken)
        ));
    }

    #[test]
    fn expired_keys_are_refused() {
        let keys = ApiKeys::new(MemoryKeyStore::new());
        let k = keys
            .create(NewKey::new("svc").expires_in(Duration::ZERO))
            .unwrap();
        assert!(matches!(
            keys.verify(k.key.as_bytes()),
            Err(Rejection::InvalidToken)
        ));
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn sqlite_store_round_trip() {
        let store =
            SqliteKeyStore::with_connection(rusqlite::Connection::open_in_memory().unwrap())
                .unwrap();
        let keys = ApiKeys::new(store);
        let k = keys
            .create(NewKey::new("svc").roles(["a", "b"]).scopes(["x"]))
            .unwrap();
        let p = keys.verify(k.key.as_bytes()).unwrap();
        assert_eq!(p.roles(), ["a", "b"]);
        assert_eq!(p.scopes(), ["x"]);
        assert!(keys.revoke(&k.id).unwrap());
        assert!(keys.verify(k.key.as_bytes()).is_err());
        revoke_owner_ends_only_that_owners_keys(keys);
    }

    fn revoke_owner_ends_only_that_owners_keys(keys: ApiKeys) {
        let a1 = keys.create(NewKey::new("alice")).unwrap();
        let a2 = keys.create(NewKey::new("alice")).unwrap();
        let b = keys.create(NewKey::new("bob")).unwrap();
        assert_eq!(keys.revoke_owner("alice").unwrap(), 2);
        assert_eq!(keys.revoke_owner("alice").unwrap(), 0);
        assert!(keys.verify(a1.key.as_bytes()).is_err());
        assert!(keys.verify(a2.key.as_bytes()).is_err());
        assert!(keys.verify(b.key.as_bytes()).is_ok());
    }

    #[test]
    fn memory_store_revokes_by_owner() {
        revoke_owner_ends_only_that_owners_keys(ApiKeys::new(MemoryKeyStore::new()));
    }
}
