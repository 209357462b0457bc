//! Issuing tokens: the OAuth2 password flow (RFC 6749 §4.3), refresh-token rotation with
//! reuse detection, logout and admin revocation.
//!
//! ```no_run
//! use std::sync::Arc;
//! use shieldwall_runtime::auth::tokens::{TokenIssuer, TokenEndpoint, UserStore, UserRecord, BoxFuture};
//!
//! struct Users;
//! impl UserStore for Users {
//!     fn find<'a>(&'a self, username: &'a str) -> BoxFuture<'a, Result<Option<UserRecord>, String>> {
//!         Box::pin(async move { Ok(None) })
//!     }
//! }
//!
//! let issuer = TokenIssuer::hs256(b"an-hmac-secret-of-at-least-32-bytes!".to_vec())
//!     .issuer("https://accounts.example.com")
//!     .audience("api");
//! let endpoint = TokenEndpoint::new(issuer, Users);
//! // Shieldwall::new().tokens(endpoint) mounts POST /token and verifies what it issues.
//! # let _ = endpoint;
//! ```
//!
//! - **Access tokens** are short-lived (15 minutes by default) JWTs with the RFC 9068
//!   claims (`iss`, `aud`, `sub`, `exp`, `iat`, `jti`, `roles`, `scope`) and `typ: at+jwt`.
//! - **Refresh tokens** (14 days by default) are JWTs with `typ: rt+jwt` and
//!   `token_use: refresh`, so the verifier never takes one for an access token. Each login
//!   starts a *family*; every refresh rotates it (the presented token stops working and a
//!   new one is issued). Presenting an older token of the family again is a reuse — a sign
//!   the token was stolen — and revokes the whole family, including its access tokens.
//! - **A refresh is checked like an access token, and more.** The presented refresh token
//!   goes through the same revocation checks as an access token (its `jti`, its family, its
//!   subject with the time it was issued), so [`TokenIssuer::revoke_subject`] ends the
//!   subject's refresh families too. Then the account is looked up again: a subject the
//!   [`UserStore`] no longer has is refused (`invalid_grant`) and its family revoked.
//! - **Families are bound to the account, not its name.** Each [`UserRecord`] has a
//!   *security stamp* (ASP.NET Core Identity's model): a random value the store replaces
//!   when the account's credentials change — password change, deletion and re-creation.
//!   Every refresh token of a family carries a keyed digest of the stamp it was issued
//!   under (an HMAC with the issuer's secret: the token shows nothing of the stamp), and a
//!   refresh under another stamp is refused and the family revoked. A new account
//!   registered under a deleted account's name therefore never inherits its sessions.
//! - **Scope travels with the family** (RFC 6749 §6). The scope granted at login is in
//!   every refresh token of the family; a refresh may ask for less (`scope=`), never for
//!   more (`invalid_scope`, and the token is not spent), and scopes the user has lost since
//!   are dropped. The new access token carries the user's current roles.
//! - **Password change** ([`TokenEndpoint::change_password`]): checks the current password,
//!   stores the new hash with a new stamp ([`UserStore::set_password`]), ends every session
//!   of the account (refresh families through the stamp, access tokens through a subject
//!   revocation) and returns a fresh pair to the caller, who stays logged in. A wrong
//!   current password is a failed login: it spends the same budgets as `POST /token` (below),
//!   so a stolen access token is no better a password oracle than the login form.
//! - **One call ends every credential** of a user: [`TokenIssuer::revoke_subject`] revokes
//!   every access and refresh token issued to the subject so far and, when the app has API
//!   keys ([`crate::app::Shieldwall::api_keys`] next to `tokens`), marks every API key the
//!   subject owns revoked in the key store (a key's owner is its principal's subject, so
//!   those keys are credentials of the same user). Key revocation is permanent; token
//!   revocation holds until the tokens would have expired anyway. It ends credentials, it
//!   does not ban: a login after it works (the issuer waits out the second of the
//!   revocation, as token times are in whole seconds).
//! - **Brute force** (OWASP Authentication Cheat Sheet): the endpoint is a `login` route
//!   limited per IP (20 requests a minute). Failed logins are counted twice: per (username,
//!   client address) — the tight limit, 5 per 15 minutes — and per username from every
//!   address together — a looser ceiling, 50 an hour (see
//!   [`TokenEndpoint::failed_logins_per_client`],
//!   [`TokenEndpoint::failed_logins_per_username`]). Successful logins cost nothing. One
//!   address sustains at most 20 failures an hour, well under the ceiling's 50, and its
//!   burst (5) is under the ceiling's (50), so one address alone can never spend the
//!   ceiling: an attacker guessing alice's password from one address locks out that address
//!   only, not alice, however long they keep at it. `Shieldwall::build` refuses budgets
//!   that lose this property ([`TokenEndpoint::check_budgets`]). The trade-off: an attacker
//!   with several addresses (three at their full rate) can still spend the ceiling and keep
//!   alice out until it refills, which is the price of capping distributed guessing at 50
//!   an hour rather than 20 an hour per address. Each attempt is charged *before* Argon2
//!   runs and refunded afterwards unless it failed, in one atomic step per store (memory or
//!   Redis), so 100 guesses fired at once get exactly the budget of verifications, not 100.
//!   The budgets belong to the account the [`UserStore`] resolves (its subject), so a store
//!   that forgives case or spaces does not give each spelling of a name its own budget; an
//!   unknown name is counted under its lower-cased spelling. Unknown users and wrong
//!   passwords get the same `invalid_grant` answer after the same Argon2 work.
//! - **Argon2 off the async workers**: passwords are verified on tokio's blocking pool,
//!   at most half the cores at once; a login that waits more than 2 s for its turn is
//!   answered 503 `temporarily_unavailable` (see [`super::passwords`],
//!   [`TokenEndpoint::passwords`]).
//! - **Errors** follow RFC 6749 §5.2 (`{"error": "invalid_grant", ...}`, 400), the one
//!   place where shieldwall answers in a format other than problem+json, because OAuth2
//!   clients parse exactly that.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::json;
use subtle::ConstantTimeEq;

use super::api_key::{ApiKeys, KeyStoreError};
use super::jwt::{Jwt, JwtKey};
use super::passwords::{PasswordError, Passwords};
use super::revocation::{Rotation, TokenState};
use crate::policy::{Access, Method, OnOutage, Per, Policy, Rate};
use crate::principal::{Credential, Principal};
use crate::rate::{Ident, Quota, StoreError};
use crate::route::{Charge, Finish, Guard, SecureRoute};

/// A boxed future, for the object-safe [`UserStore`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A user as the token endpoint needs it.
#[derive(Clone)]
pub struct UserRecord {
    /// The token subject: the account's stable id — random or a database key, unique, and
    /// never reused for another account — never its username. Tokens carry it for their
    /// whole lifetime, revocations and rate budgets are keyed by it, and API keys owned by
    /// it end with it: a subject that is a name would let a new account registered under a
    /// deleted one's name be read by the old account's unexpired access tokens, and let a
    /// user registering a service's name be confused with that service's API keys.
    pub subject: String,
    /// The Argon2 PHC hash ([`Passwords::hash`]).
    pub password_hash: String,
    /// Roles to put in access tokens.
    pub roles: Vec<String>,
    /// Scopes the user may request.
    pub scopes: Vec<String>,
    /// The account's security stamp: a random value ([`new_security_stamp`]) that the store
    /// replaces whenever the account's credentials change — password change, deletion and
    /// re-creation (a new account under an old name gets a new stamp), "log out everywhere".
    /// A refresh family remembers the stamp it was issued under and dies when the account's
    /// stamp differs. Empty: the password hash stands in (it changes with the password and,
    /// its salt being random, with re-creation), which is the least a store without a stamp
    /// column gets.
    pub security_stamp: String,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("subject", &self.subject)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

/// Where the app keeps its users. Implemented by the app.
pub trait UserStore: Send + Sync + 'static {
    /// The user with this username, if any.
    fn find<'a>(&'a self, username: &'a str) -> BoxFuture<'a, Result<Option<UserRecord>, String>>;

    /// The user with this token subject (at refresh and password change). Implement it when
    /// subjects are ids, as they should be ([`UserRecord::subject`]); the default,
    /// [`UserStore::find`], fits only stores whose subjects are usernames.
    fn find_subject<'a>(
        &'a self,
        subject: &'a str,
    ) -> BoxFuture<'a, Result<Option<UserRecord>, String>> {
        self.find(subject)
    }

    /// Store a new password hash and security stamp for the user with this subject, for
    /// [`TokenEndpoint::change_password`]; `Ok(false)` when there is no such user. Both must
    /// be written together (one statement or transaction). The default refuses, so a store
    /// that does not implement it cannot change passwords through the library.
    fn set_password<'a>(
        &'a self,
        subject: &'a str,
        password_hash: &'a str,
        security_stamp: &'a str,
    ) -> BoxFuture<'a, Result<bool, String>> {
        let _ = (subject, password_hash, security_stamp);
        Box::pin(std::future::ready(Err(
            "this UserStore does not implement set_password".to_string(),
        )))
    }
}

/// A fresh security stamp (128 random bits, URL-safe base64) for [`UserRecord::security_stamp`]:
/// store one when an account is created and replace it whenever its credentials change.
pub fn new_security_stamp() -> String {
    random_id()
}

/// Why [`TokenIssuer::revoke_subject`] could not end every credential.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RevokeError {
    /// The token state store failed: tokens are not revoked.
    #[error("the token state store failed: {0}")]
    Tokens(#[from] StoreError),
    /// Tokens are revoked, but the API key store failed: keys may still work.
    #[error("tokens revoked, but the API keys were not: {0}")]
    ApiKeys(#[from] KeyStoreError),
}

/// Why [`TokenEndpoint::check_budgets`] (and so `Shieldwall::build`) refused the failed-login
/// budgets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoginBudgetError {
    /// One client address could spend the per-username ceiling by itself.
    #[error(
        "failed_logins_per_client ({per_client}) lets one address spend the failed_logins_per_username ceiling ({per_username}) alone, locking the account out from every address: keep the per-client count below the ceiling's count and its rate (count per period) below the ceiling's rate, e.g. 5 per 15 minutes against 50 an hour"
    )]
    OneClientReachesTheCeiling {
        /// The per-client budget.
        per_client: String,
        /// The per-username ceiling.
        per_username: String,
    },
}

/// Why a token could not be issued (RFC 6749 §5.2 codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// A required parameter is missing or malformed.
    #[error("invalid_request")]
    InvalidRequest,
    /// Bad username/password, or a bad, expired, revoked or reused refresh token.
    #[error("invalid_grant")]
    InvalidGrant,
    /// The grant type is not supported.
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    /// A requested scope is not granted to the user.
    #[error("invalid_scope")]
    InvalidScope,
    /// A failed-login budget is spent ([`TokenEndpoint::change_password`] only; `POST
    /// /token` answers its own 429). Not an RFC 6749 code: answer 429 with `Retry-After`.
    #[error("too_many_attempts")]
    TooManyAttempts {
        /// Seconds until an attempt can be admitted again.
        retry_after_secs: u64,
    },
    /// The token state store is down (503).
    #[error("temporarily_unavailable")]
    Unavailable,
    /// Signing failed (500).
    #[error("server_error")]
    Server,
}

impl TokenError {
    fn description(self) -> &'static str {
        match self {
            Self::InvalidRequest => "The request is missing a parameter or is malformed.",
            Self::InvalidGrant => "The credentials or the refresh token are invalid.",
            Self::UnsupportedGrantType => "Use grant_type=password or grant_type=refresh_token.",
            Self::InvalidScope => "A requested scope is not granted to this user.",
            Self::TooManyAttempts { .. } => "Too many failed attempts; try again later.",
            Self::Unavailable => "Try again later.",
            Self::Server => "The server could not issue a token.",
        }
    }
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        let status = match self {
            Self::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Server => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        let body = json!({ "error": self.to_string(), "error_description": self.description() });
        let mut res = no_store((status, axum::Json(body)).into_response());
        if let Self::TooManyAttempts { retry_after_secs } = self {
            res.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs.max(1)),
            );
        }
        res.extensions_mut().insert(crate::error::OwnFormat);
        res
    }
}

fn no_store(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

/// The RFC 6749 §5.1 success response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The refresh token.
    pub refresh_token: String,
    /// Granted scopes, space separated.
    pub scope: String,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn random_id() -> String {
    let bytes: [u8; 16] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Mints and rotates tokens.
#[derive(Clone)]
pub struct TokenIssuer {
    secret: Arc<Vec<u8>>,
    issuer: String,
    audience: String,
    access_ttl: Duration,
    refresh_ttl: Duration,
    state: TokenState,
    /// The app's API keys, for [`TokenIssuer::revoke_subject`]; shared by every clone, so the
    /// app builder can attach them after the app kept its own clone.
    api_keys: Arc<OnceLock<ApiKeys>>,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// A refresh token's claims. `scope` (granted at login, narrowed since) and `sst` (keyed
/// digest of the account's security stamp) travel with the family; tokens without them
/// (issued by earlier versions) do not decode and are refused.
#[derive(Serialize, Deserialize)]
struct RefreshClaims {
    iss: String,
    aud: String,
    sub: String,
    exp: u64,
    iat: u64,
    jti: String,
    fam: String,
    token_use: String,
    scope: String,
    sst: String,
}

/// Domain separation for the stamp digest.
const STAMP_CONTEXT: &[u8] = b"shieldwall/refresh-family/security-stamp/v1\0";

impl TokenIssuer {
    /// Sign with HS256 and this secret (at least 32 bytes, checked when the app builds).
    pub fn hs256(secret: impl Into<Vec<u8>>) -> Self {
        Self {
            secret: Arc::new(secret.into()),
            issuer: "shieldwall".into(),
            audience: "api".into(),
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(14 * 86_400),
            state: TokenState::memory(),
            api_keys: Arc::new(OnceLock::new()),
        }
    }
    /// The `iss` claim.
    pub fn issuer(mut self, iss: impl Into<String>) -> Self {
        self.issuer = iss.into();
        self
    }
    /// The `aud` claim.
    pub fn audience(mut self, aud: impl Into<String>) -> Self {
        self.audience = aud.into();
        self
    }
    /// Access-token lifetime (default 15 minutes).
    pub fn access_ttl(mut self, ttl: Duration) -> Self {
        self.access_ttl = ttl;
        self
    }
    /// Refresh-token lifetime (default 14 days).
    pub fn refresh_ttl(mut self, ttl: Duration) -> Self {
        self.refresh_ttl = ttl;
        self
    }
    /// Where revocations and refresh families live (default: memory; use
    /// [`TokenState::redis`] so every instance sees them).
    pub fn state(mut self, state: TokenState) -> Self {
        self.state = state;
        self
    }
    /// The shared token state.
    pub fn token_state(&self) -> &TokenState {
        &self.state
    }
    /// The app's API keys, so that [`TokenIssuer::revoke_subject`] also revokes the keys a
    /// subject owns. `Shieldwall::build` attaches the app's keys by itself when both
    /// `api_keys` and `tokens` are configured; the first keys attached stay.
    pub fn api_keys(self, keys: ApiKeys) -> Self {
        self.attach_api_keys(keys);
        self
    }
    pub(crate) fn attach_api_keys(&self, keys: ApiKeys) {
        let _ = self.api_keys.set(keys);
    }

    /// The verifier configuration that accepts exactly the access tokens issued here.
    pub fn jwt(&self) -> Jwt {
        Jwt::new()
            .key(JwtKey::hmac(self.secret.to_vec()))
            .issuer(self.issuer.clone())
            .audience(self.audience.clone())
    }

    fn key(&self) -> Result<EncodingKey, TokenError> {
        EncodingKey::from_secret(&self.secret).map_err(|_| TokenError::Server)
    }

    fn access(
        &self,
        sub: &str,
        roles: &[String],
        scope: &str,
        fam: &str,
    ) -> Result<String, TokenError> {
        let now = unix_now();
        let claims = json!({
            "iss": self.issuer, "aud": self.audience, "sub": sub,
            "iat": now, "exp": now + self.access_ttl.as_secs(),
            "jti": random_id(), "fam": fam, "roles": roles, "scope": scope,
        });
        let mut h = Header::new(Algorithm::HS256);
        h.typ = Some("at+jwt".into());
        jsonwebtoken::encode(&h, &claims, &self.key()?).map_err(|_| TokenError::Server)
    }

    fn refresh_token(
        &self,
        user: &UserRecord,
        scope: &str,
        fam: &str,
        jti: &str,
    ) -> Result<String, TokenError> {
        let now = unix_now();
        let claims = RefreshClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user.subject.clone(),
            iat: now,
            exp: now + self.refresh_ttl.as_secs(),
            jti: jti.into(),
            fam: fam.into(),
            token_use: "refresh".into(),
            scope: scope.into(),
            sst: self.stamp_digest(user)?,
        };
        let mut h = Header::new(Algorithm::HS256);
        h.typ = Some("rt+jwt".into());
        jsonwebtoken::encode(&h, &claims, &self.key()?).map_err(|_| TokenError::Server)
    }

    /// The keyed digest of the account's security stamp that a family carries: HMAC-SHA256
    /// with the issuer's secret over the subject and the stamp (the password hash when the
    /// stamp is empty), truncated to 128 bits.
    fn stamp_digest(&self, user: &UserRecord) -> Result<String, TokenError> {
        use hmac::{KeyInit, Mac};
        let stamp = if user.security_stamp.is_empty() {
            &user.password_hash
        } else {
            &user.security_stamp
        };
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.secret)
            .map_err(|_| TokenError::Server)?;
        mac.update(STAMP_CONTEXT);
        mac.update(user.subject.as_bytes());
        mac.update(b"\0");
        mac.update(stamp.as_bytes());
        let digest = mac.finalize().into_bytes();
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16]))
    }

    fn response(
        &self,
        user: &UserRecord,
        scope: &str,
        fam: &str,
        refresh_jti: &str,
    ) -> Result<TokenResponse, TokenError> {
        Ok(TokenResponse {
            access_token: self.access(&user.subject, &user.roles, scope, fam)?,
            token_type: "Bearer".into(),
            expires_in: self.access_ttl.as_secs(),
            refresh_token: self.refresh_token(user, scope, fam, refresh_jti)?,
            scope: scope.into(),
        })
    }

    /// Issue tokens for an authenticated user, starting a new refresh family. `scope`
    /// (space separated) must be a subset of the user's scopes; `None` grants them all.
    /// The family is bound to the user's security stamp and carries the granted scope.
    pub async fn issue(
        &self,
        user: &UserRecord,
        scope: Option<&str>,
    ) -> Result<TokenResponse, TokenError> {
        let scope = granted_scope(&user.scopes, scope)?;
        self.start_family(user, &scope).await
    }

    async fn start_family(
        &self,
        user: &UserRecord,
        scope: &str,
    ) -> Result<TokenResponse, TokenError> {
        self.after_revocation(&user.subject).await?;
        let fam = random_id();
        let jti = random_id();
        self.state
            .start_family(&fam, &jti, self.refresh_ttl.as_secs())
            .await
            .map_err(|_| TokenError::Unavailable)?;
        self.response(user, scope, &fam, &jti)
    }

    /// Token times are whole seconds, and a subject revocation refuses every token issued in
    /// its second or before, as the token state's epoch does (see
    /// [`super::revocation`]): a token issued in that second would be born revoked, so wait
    /// for the next second. More than about two seconds ahead means the instances' clocks
    /// disagree; then answer 503 rather than issue tokens that would be refused.
    async fn after_revocation(&self, subject: &str) -> Result<(), TokenError> {
        let at = self
            .state
            .refused_until(subject)
            .await
            .map_err(|_| TokenError::Unavailable)?;
        let deadline = Instant::now() + Duration::from_millis(2_100);
        loop {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            if now.as_secs() > at {
                return Ok(());
            }
            if Instant::now() >= deadline {
                tracing::error!(
                    target: "shieldwall::auth",
                    subject,
                    "a subject revocation or the token state's epoch is dated ahead of this instance's clock; are the clocks synchronised?"
                );
                return Err(TokenError::Unavailable);
            }
            let into_second = Duration::from_nanos(u64::from(now.subsec_nanos()));
            tokio::time::sleep(Duration::from_millis(1_001).saturating_sub(into_second)).await;
        }
    }

    /// Decode a refresh token: signature, `typ: rt+jwt`, `iss`, `aud`, `exp` (no leeway),
    /// `token_use: refresh`, and the family's scope and stamp digest.
    fn decode_refresh(&self, refresh_token: &str) -> Result<RefreshClaims, TokenError> {
        let header =
            jsonwebtoken::decode_header(refresh_token).map_err(|_| TokenError::InvalidGrant)?;
        if !header
            .typ
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("rt+jwt"))
        {
            return Err(TokenError::InvalidGrant);
        }
        let mut v = Validation::new(Algorithm::HS256);
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[&self.audience]);
        v.leeway = 0;
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let key = DecodingKey::from_secret(&self.secret).map_err(|_| TokenError::Server)?;
        let data = jsonwebtoken::decode::<RefreshClaims>(refresh_token, &key, &v)
            .map_err(|_| TokenError::InvalidGrant)?;
        if data.claims.token_use != "refresh" {
            return Err(TokenError::InvalidGrant);
        }
        Ok(data.claims)
    }

    /// The refresh grant: verify `refresh_token`, run the access-token revocation checks on
    /// it (jti, family, subject with its `iat`), look the account up in `users` and compare
    /// its security stamp with the family's, keep or narrow the family's scope (`scope`,
    /// space separated; more than the family holds is `invalid_scope`), then rotate the
    /// family. A revoked token, a vanished or re-created account, and a reused token each
    /// revoke the family. Nothing is spent before every check has passed, so a refusal for
    /// `invalid_scope` or an unreachable store leaves the token usable.
    pub async fn refresh(
        &self,
        users: &dyn UserStore,
        refresh_token: &str,
        scope: Option<&str>,
    ) -> Result<TokenResponse, TokenError> {
        let c = self.decode_refresh(refresh_token)?;
        match self
            .state
            .is_revoked(Some(&c.jti), Some(&c.fam), &c.sub, Some(c.iat))
            .await
        {
            Ok(false) => {}
            Ok(true) => return Err(self.refuse_family(&c, "revoked").await),
            Err(_) => return Err(TokenError::Unavailable),
        }
        let user = users.find_subject(&c.sub).await.map_err(|e| {
            tracing::error!(target: "shieldwall::auth", error = %e, "user store failed");
            TokenError::Unavailable
        })?;
        let user = match user {
            Some(u) if u.subject == c.sub => u,
            _ => return Err(self.refuse_family(&c, "the account no longer exists").await),
        };
        let stamp_matches: bool = self
            .stamp_digest(&user)?
            .as_bytes()
            .ct_eq(c.sst.as_bytes())
            .into();
        if !stamp_matches {
            return Err(self
                .refuse_family(&c, "the account's security stamp changed")
                .await);
        }
        let scope = refreshed_scope(&c.scope, scope, &user.scopes)?;
        let new_jti = random_id();
        let ttl = c.exp.saturating_sub(unix_now()).max(1);
        match self.state.rotate(&c.fam, &c.jti, &new_jti, ttl).await {
            Ok(Rotation::Rotated) => self.response(&user, &scope, &c.fam, &new_jti),
            Ok(Rotation::Reused) => {
                tracing::warn!(
                    target: "shieldwall::audit",
                    event = "refresh_token_reuse",
                    subject = %c.sub,
                    "a refresh token was used twice: its family is revoked"
                );
                let _ = self
                    .state
                    .revoke_family(&c.fam, self.refresh_ttl.as_secs())
                    .await;
                Err(TokenError::InvalidGrant)
            }
            Ok(Rotation::Unknown) => Err(TokenError::InvalidGrant),
            Err(_) => Err(TokenError::Unavailable),
        }
    }

    /// Refuse a refresh and revoke its family (with its access tokens).
    async fn refuse_family(&self, c: &RefreshClaims, reason: &'static str) -> TokenError {
        tracing::warn!(
            target: "shieldwall::audit",
            event = "refresh_refused",
            subject = %c.sub,
            reason,
            "a refresh was refused: its family is revoked"
        );
        if let Err(e) = self
            .state
            .revoke_family(&c.fam, self.refresh_ttl.as_secs())
            .await
        {
            tracing::error!(target: "shieldwall::auth", error = %e, "could not revoke a refused family");
        }
        TokenError::InvalidGrant
    }

    /// Revoke the presented access token and its refresh family (logout).
    pub async fn logout(&self, principal: &Principal) -> Result<(), crate::rate::StoreError> {
        let claims = principal.claims();
        let get = |k: &str| claims.and_then(|c| c.get(k)).and_then(|v| v.as_str());
        let exp = claims
            .and_then(|c| c.get("exp"))
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        if let Some(jti) = get("jti") {
            self.state
                .revoke_jti(jti, exp.saturating_sub(unix_now()).max(1))
                .await?;
        }
        if let Some(fam) = get("fam") {
            self.state
                .revoke_family(fam, self.refresh_ttl.as_secs())
                .await?;
        }
        Ok(())
    }

    /// End every credential of `subject` — the one call an admin needs: every access and
    /// refresh token issued to it so far (refresh families included) and, when API keys are
    /// attached ([`TokenIssuer::api_keys`]; `Shieldwall::build` does it), every API key the
    /// subject owns, marked revoked in the key store for good. Tokens are revoked first; a
    /// key-store failure is reported as [`RevokeError::ApiKeys`] after that.
    pub async fn revoke_subject(&self, subject: &str) -> Result<(), RevokeError> {
        self.end_sessions(subject).await?;
        let keys = match self.api_keys.get() {
            // A store that may wait (a locked database) waits on the blocking pool.
            Some(keys) if keys.store().may_block() => {
                let (keys, owner) = (keys.clone(), subject.to_owned());
                tokio::task::spawn_blocking(move || keys.revoke_owner(&owner))
                    .await
                    .map_err(|e| KeyStoreError::Backend(e.to_string()))??
            }
            Some(keys) => keys.revoke_owner(subject)?,
            None => 0,
        };
        tracing::info!(
            target: "shieldwall::audit",
            event = "subject_revoked",
            subject,
            api_keys = keys,
            "every credential of the subject is revoked"
        );
        Ok(())
    }

    /// Revoke every token issued to `subject` so far (not its API keys): the marker lives
    /// as long as the longest-lived token issued before it.
    async fn end_sessions(&self, subject: &str) -> Result<(), StoreError> {
        let ttl = self.refresh_ttl.max(self.access_ttl).as_secs();
        self.state.revoke_subject(subject, ttl).await
    }
}

fn granted_scope(user_scopes: &[String], requested: Option<&str>) -> Result<String, TokenError> {
    match requested.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(user_scopes.join(" ")),
        Some(req) => {
            let wanted: Vec<&str> = req.split(' ').filter(|s| !s.is_empty()).collect();
            if wanted.iter().all(|w| user_scopes.iter().any(|s| s == w)) {
                Ok(wanted.join(" "))
            } else {
                Err(TokenError::InvalidScope)
            }
        }
    }
}

/// The scope of a refreshed family: the requested scopes (all of the family's when none are
/// requested), each of which the family must hold (RFC 6749 §6: never more than originally
/// granted), less any the user no longer has.
fn refreshed_scope(
    family: &str,
    requested: Option<&str>,
    user_scopes: &[String],
) -> Result<String, TokenError> {
    let held: Vec<&str> = family.split(' ').filter(|s| !s.is_empty()).collect();
    let wanted: Vec<&str> = match requested.map(str::trim).filter(|s| !s.is_empty()) {
        None => held.clone(),
        Some(req) => {
            let wanted: Vec<&str> = req.split(' ').filter(|s| !s.is_empty()).collect();
            if !wanted.iter().all(|w| held.contains(w)) {
                return Err(TokenError::InvalidScope);
            }
            wanted
        }
    };
    Ok(wanted
        .into_iter()
        .filter(|w| user_scopes.iter().any(|s| s == w))
        .collect::<Vec<_>>()
        .join(" "))
}

/// The `POST /token` endpoint (password and refresh-token grants). Cloning it is cheap and
/// shares the user store, so the app can keep a clone for
/// [`TokenEndpoint::change_password`] after mounting it.
#[derive(Clone)]
pub struct TokenEndpoint {
    issuer: TokenIssuer,
    users: Arc<dyn UserStore>,
    passwords: Passwords,
    /// Failed logins per (username, client address).
    per_client: Quota,
    /// Failed logins per username, from every address together.
    per_username: Quota,
    /// The mounted route's guard, shared by every clone: [`TokenEndpoint::change_password`]
    /// charges the failed-login budgets through it. Set when the app is built.
    mounted: Arc<OnceLock<Guard>>,
}

/// One attempt's charges to the failed-login budgets, to give back unless it failed.
struct Attempt {
    per_client: Option<Charge>,
    per_username: Charge,
}

/// The failed-login limits' bucket names: route-local limit indices (counting down from
/// `u32::MAX`, clear of declared limits), stable store scopes, and RateLimit field names.
const FAILED_PER_CLIENT: (u32, &str, &str) = (
    u32::MAX,
    "POST /token#failed-per-client",
    "failed-logins-per-client",
);
const FAILED_PER_USERNAME: (u32, &str, &str) = (
    u32::MAX - 1,
    "POST /token#failed-per-username",
    "failed-logins-per-username",
);

fn quota(count: u32, period: Duration) -> Quota {
    let count = count.max(1);
    Quota::new(count, period.as_secs().max(1), count)
}

impl std::fmt::Debug for TokenEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenEndpoint")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// `POST /token`: a public `login` route limited to 20 requests a minute per IP.
pub static TOKEN_POLICY: Policy = Policy {
    method: Method::Post,
    path: "/token",
    handler: "token_endpoint",
    access: Access::Public,
    rates: &[Rate {
        count: 20,
        period_secs: 60,
        per: Per::Ip,
        burst: 20,
        text: "20/min per ip",
    }],
    body_limit: Some(16 * 1024),
    validate: true,
    login: true,
    on_outage: Some(OnOutage::FailClosed),
};

#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    username: Option<String>,
    password: Option<String>,
    refresh_token: Option<String>,
    scope: Option<String>,
}

impl TokenEndpoint {
    /// The endpoint for `issuer`, checking passwords against `users`.
    pub fn new(issuer: TokenIssuer, users: impl UserStore) -> Self {
        Self {
            issuer,
            users: Arc::new(users),
            passwords: Passwords::new(),
            per_client: quota(5, Duration::from_secs(15 * 60)),
            per_username: quota(50, Duration::from_secs(3600)),
            mounted: Arc::new(OnceLock::new()),
        }
    }

    /// Failed logins allowed for one username from one client address (IPv6 by its
    /// prefix): `count` per `period`, all at once at most (default 5 per 15 minutes: after
    /// five failures, one more every 3 minutes). This is the tight limit against guessing;
    /// an attacker spending it locks out only their own address. Successful logins cost
    /// nothing.
    ///
    /// It must stay under the per-username ceiling
    /// ([`TokenEndpoint::failed_logins_per_username`]) in both burst (`count`) and
    /// sustained rate (`count / period`): otherwise one address alone could spend the
    /// ceiling and lock the account out from everywhere. `Shieldwall::build` refuses such a
    /// pair ([`LoginBudgetError`]). The defaults keep a wide margin: one address sustains
    /// 20 failures an hour against a ceiling of 50.
    pub fn failed_logins_per_client(mut self, count: u32, period: Duration) -> Self {
        self.per_client = quota(count, period);
        self
    }

    /// Failed logins allowed for one username from every address together: `count` per
    /// `period` (default 50 an hour). The ceiling against guessing spread over many
    /// addresses; once spent, the username cannot log in from anywhere until it refills —
    /// the price of the ceiling (see the module docs). It must stay above the per-client
    /// budget in burst and sustained rate ([`TokenEndpoint::failed_logins_per_client`]).
    pub fn failed_logins_per_username(mut self, count: u32, period: Duration) -> Self {
        self.per_username = quota(count, period);
        self
    }

    /// Refuse failed-login budgets under which one client address alone could spend the
    /// per-username ceiling: a per-client burst or sustained rate at least the ceiling's.
    /// With both strictly under, what one address can spend in any stretch of time
    /// (`burst + rate × time`) stays below what the ceiling admits in it. Called by
    /// `Shieldwall::tokens`, which reports it from `build()`.
    pub fn check_budgets(&self) -> Result<(), LoginBudgetError> {
        let (c, u) = (&self.per_client, &self.per_username);
        let burst = |q: &Quota| q.tolerance / q.emission.max(1);
        if burst(c) >= burst(u) || c.emission <= u.emission {
            return Err(LoginBudgetError::OneClientReachesTheCeiling {
                per_client: format!("{} per {} s", c.count, c.period_secs),
                per_username: format!("{} per {} s", u.count, u.period_secs),
            });
        }
        Ok(())
    }

    /// The password hasher (default [`Passwords::new`]: Argon2id, off the async workers,
    /// within the process-wide concurrency bound and a 2 s queue deadline).
    pub fn passwords(mut self, passwords: Passwords) -> Self {
        self.passwords = passwords;
        self
    }

    /// The issuer.
    pub fn issuer(&self) -> &TokenIssuer {
        &self.issuer
    }

    /// The route, for [`crate::app::Shieldwall::routes`] (the builder's `tokens` does this).
    pub fn into_route<S: Clone + Send + Sync + 'static>(self) -> SecureRoute<S> {
        let this = Arc::new(self);
        SecureRoute::from_parts(&TOKEN_POLICY, move |guard: Guard| -> MethodRouter<S> {
            // The first app that mounts the endpoint keeps it: its clones charge there.
            let _ = this.mounted.set(guard.clone());
            axum::routing::post(move |req: Request| {
                let guard = guard.clone();
                let this = this.clone();
                async move { this.handle(guard, req).await }
            })
        })
    }

    async fn handle(&self, guard: Guard, req: Request) -> Response {
        let (parts, body, mut fin) = match guard.enter(TOKEN_POLICY.handler, req).await {
            Ok(v) => v,
            Err(res) => return res,
        };
        let limit = fin.body_limit();
        let form: TokenForm =
            match crate::validate::form(Request::from_parts(parts, body), limit).await {
                Ok(f) => f,
                Err(crate::error::Rejection::PayloadTooLarge) => {
                    return fin.reject(crate::error::Rejection::PayloadTooLarge);
                }
                Err(_) => return fin.finish(TokenError::InvalidRequest.into_response()),
            };
        let result = match form.grant_type.as_deref() {
            Some("password") => {
                let (Some(username), Some(password)) = (form.username, form.password) else {
                    return fin.finish(TokenError::InvalidRequest.into_response());
                };
                // The budgets belong to the account the store resolves (a store that forgives
                // case or spaces must not give each spelling its own budget), else to the
                // name as typed, lower-cased. The lookup is cheap next to Argon2.
                let user = match self.users.find(&username).await {
                    Ok(user) => user,
                    Err(e) => {
                        tracing::error!(target: "shieldwall::auth", error = %e, "user store failed");
                        return fin.finish(TokenError::Unavailable.into_response());
                    }
                };
                let name: Arc<str> = match &user {
                    Some(u) => u.subject.as_str().into(),
                    None => username.to_lowercase().into(),
                };
                // Failures are what is counted, but each attempt is charged *before* its
                // password is verified and refunded when it was not a failure: concurrent
                // guesses can never get more verifications than the budget.
                let attempt = match self.charge_attempt(&mut fin, name, true).await {
                    Ok(a) => a,
                    Err(res) => return res,
                };
                let result = self
                    .password_grant(user, &password, form.scope.as_deref())
                    .await;
                // Only a wrong password (or an unknown user) is a failure. A right password
                // with a bad scope, or a login shed before Argon2 ran, gives the charge back.
                let failed = matches!(result, Err(TokenError::InvalidGrant));
                Self::settle(&mut fin, attempt, failed).await;
                result
            }
            Some("refresh_token") => match form.refresh_token {
                Some(rt) => {
                    self.issuer
                        .refresh(self.users.as_ref(), &rt, form.scope.as_deref())
                        .await
                }
                None => Err(TokenError::InvalidRequest),
            },
            Some(_) => Err(TokenError::UnsupportedGrantType),
            None => Err(TokenError::InvalidRequest),
        };
        let res = match result {
            Ok(tokens) => no_store(axum::Json(tokens).into_response()),
            Err(e) => e.into_response(),
        };
        fin.finish(res)
    }

    /// Charge one password attempt for the account `name` to the failed-login budgets: per
    /// (account, client address) when `per_client` (the address is known, or the unknown
    /// peers' shared bucket stands in), and per account. On refusal, the response (429, or
    /// 503 when the store is down) and nothing stays charged.
    async fn charge_attempt(
        &self,
        fin: &mut Finish,
        name: Arc<str>,
        per_client: bool,
    ) -> Result<Attempt, Response> {
        let per_client = if per_client {
            let ip = fin.client_rate_ip();
            let (index, scope, label) = FAILED_PER_CLIENT;
            Some(
                fin.charge_extra(
                    index,
                    label,
                    scope,
                    self.per_client,
                    Ident::UsernameFrom(name.clone(), ip),
                )
                .await?,
            )
        } else {
            None
        };
        let (index, scope, label) = FAILED_PER_USERNAME;
        match fin
            .charge_extra(
                index,
                label,
                scope,
                self.per_username,
                Ident::Username(name),
            )
            .await
        {
            Ok(per_username) => Ok(Attempt {
                per_client,
                per_username,
            }),
            Err(res) => {
                if let Some(c) = per_client {
                    fin.refund(c).await;
                }
                Err(res)
            }
        }
    }

    /// Keep an attempt's charges if it `failed`, else give them back.
    async fn settle(fin: &mut Finish, attempt: Attempt, failed: bool) {
        if failed {
            return;
        }
        if let Some(c) = attempt.per_client {
            fin.refund(c).await;
        }
        fin.refund(attempt.per_username).await;
    }

    async fn password_grant(
        &self,
        user: Option<UserRecord>,
        password: &str,
        scope: Option<&str>,
    ) -> Result<TokenResponse, TokenError> {
        // Same Argon2 work for unknown users and wrong passwords; same answer. The work runs
        // on the blocking pool, within the hasher's concurrency bound.
        let ok = self
            .passwords
            .verify_async(password, user.as_ref().map(|u| u.password_hash.as_str()))
            .await
            .map_err(|e| {
                tracing::warn!(target: "shieldwall::auth", error = %e, "login shed: password hashing saturated");
                TokenError::Unavailable
            })?;
        match (ok, user) {
            (true, Some(user)) => self.issuer.issue(&user, scope).await,
            _ => {
                tracing::info!(target: "shieldwall::audit", event = "login_failed");
                Err(TokenError::InvalidGrant)
            }
        }
    }

    /// Change the password of the account `principal` (authenticated by an access token
    /// from this issuer) is logged in to. The current password is verified first; then the
    /// new hash is stored with a new security stamp ([`UserStore::set_password`]), every
    /// session of the account ends — its refresh families through the stamp, its access
    /// tokens (the caller's included) through a subject revocation — and the caller gets a
    /// fresh pair in a new family, with no more scope than its token carried. Both Argon2
    /// computations run off the async workers.
    ///
    /// A wrong current password is a failed login: each attempt is charged to the same
    /// failed-login budgets as `POST /token` — per (account, client address)
    /// ([`Principal::client_ip`], when known) and the per-account ceiling — before Argon2
    /// runs, and given back unless the password was wrong. So a stolen access token gives no
    /// more guesses than the login form, and guesses here and there share one budget. The
    /// budgets live on the mounted endpoint: call this on a clone of the endpoint given to
    /// `Shieldwall::tokens` (it refuses, [`TokenError::Unavailable`], before the app is
    /// built). A tight per-user `rate` on the route remains good practice.
    ///
    /// Errors: [`TokenError::InvalidGrant`] for a wrong current password, an account that no
    /// longer exists or a principal that did not authenticate with a token;
    /// [`TokenError::TooManyAttempts`] when a failed-login budget is spent (nothing was
    /// verified); [`TokenError::InvalidRequest`] for a new password that is empty or longer
    /// than [`super::passwords::MAX_PASSWORD_BYTES`] (the app checks its own policy before);
    /// [`TokenError::Unavailable`] when the store, the token state, the rate store or the
    /// hasher is unavailable (a store without `set_password` included).
    pub async fn change_password(
        &self,
        principal: &Principal,
        current_password: &str,
        new_password: &str,
    ) -> Result<TokenResponse, TokenError> {
        if !matches!(principal.credential(), Credential::Jwt) {
            return Err(TokenError::InvalidGrant);
        }
        let Some(route) = self.mounted.get().and_then(Guard::route).cloned() else {
            tracing::error!(
                target: "shieldwall::auth",
                "change_password on a token endpoint that is not mounted: its failed-login \
                 budgets cannot be charged, so the password is not checked; call it on a \
                 clone of the endpoint given to Shieldwall::tokens"
            );
            return Err(TokenError::Unavailable);
        };
        let subject = principal.subject();
        let user = self
            .users
            .find_subject(subject)
            .await
            .map_err(|e| {
                tracing::error!(target: "shieldwall::auth", error = %e, "user store failed");
                TokenError::Unavailable
            })?
            .filter(|u| u.subject == subject);
        // The budgets of the account (its subject, as logins count it), charged before the
        // password is verified.
        let mut fin = Finish::for_route(route, principal.client_ip(), Some(principal.clone()));
        let per_client = fin.has_ip();
        let attempt = match self
            .charge_attempt(&mut fin, principal.subject_shared(), per_client)
            .await
        {
            Ok(a) => a,
            Err(_) => {
                return Err(match fin.refused_retry_after() {
                    Some(retry_after_secs) => {
                        tracing::info!(target: "shieldwall::audit", event = "password_change_refused", subject, reason = "failed-login budget spent");
                        TokenError::TooManyAttempts { retry_after_secs }
                    }
                    None => TokenError::Unavailable,
                });
            }
        };
        let verified = self
            .passwords
            .verify_async(
                current_password,
                user.as_ref().map(|u| u.password_hash.as_str()),
            )
            .await;
        let ok = match verified {
            Ok(ok) => ok,
            Err(_) => {
                Self::settle(&mut fin, attempt, false).await;
                return Err(TokenError::Unavailable);
            }
        };
        let failed = !ok || user.is_none();
        Self::settle(&mut fin, attempt, failed).await;
        let Some(mut user) = user.filter(|_| ok) else {
            tracing::info!(target: "shieldwall::audit", event = "password_change_refused", subject);
            return Err(TokenError::InvalidGrant);
        };
        let hash = self
            .passwords
            .hash_async(new_password)
            .await
            .map_err(|e| match e {
                PasswordError::BadLength => TokenError::InvalidRequest,
                PasswordError::Busy => TokenError::Unavailable,
                _ => TokenError::Server,
            })?;
        let stamp = new_security_stamp();
        match self.users.set_password(subject, &hash, &stamp).await {
            Ok(true) => {}
            Ok(false) => return Err(TokenError::InvalidGrant),
            Err(e) => {
                tracing::error!(target: "shieldwall::auth", error = %e, "storing the new password failed");
                return Err(TokenError::Unavailable);
            }
        }
        // The password is changed: from here on a failure leaves the other sessions to end
        // at their next refresh (the stamp changed) instead of now.
        if let Err(e) = self.issuer.end_sessions(subject).await {
            tracing::error!(target: "shieldwall::auth", error = %e, "password changed, but its sessions could not be revoked");
            return Err(TokenError::Unavailable);
        }
        tracing::info!(target: "shieldwall::audit", event = "password_changed", subject);
        user.password_hash = hash;
        user.security_stamp = stamp;
        let scope = principal
            .scopes()
            .iter()
            .filter(|s| user.scopes.contains(s))
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" ");
        self.issuer.start_family(&user, &scope).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_refresh_keeps_or_narrows_the_family_scope() {
        let user = scopes(&["a", "b", "c"]);
        assert_eq!(refreshed_scope("a b", None, &user).unwrap(), "a b");
        assert_eq!(refreshed_scope("a b", Some(" b "), &user).unwrap(), "b");
        assert_eq!(
            refreshed_scope("a b", Some("a c"), &user),
            Err(TokenError::InvalidScope),
            "c was not granted to the family, though the user has it"
        );
        assert_eq!(
            refreshed_scope("", Some("a"), &user),
            Err(TokenError::InvalidScope)
        );
        assert_eq!(refreshed_scope("", None, &user).unwrap(), "");
        // a scope the user lost since is dropped, silently (RFC 6749 §5.1: the response names the scope)
        assert_eq!(refreshed_scope("a b", None, &scopes(&["a"])).unwrap(), "a");
    }

    #[test]
    fn the_stamp_digest_binds_subject_and_stamp() {
        let issuer = TokenIssuer::hs256(vec![7u8; 32]);
        let user = |sub: &str, hash: &str, stamp: &str| UserRecord {
            subject: sub.into(),
            password_hash: hash.into(),
            roles: Vec::new(),
            scopes: Vec::new(),
            security_stamp: stamp.into(),
        };
        let d = |u: &UserRecord| issuer.stamp_digest(u).unwrap();
        let base = d(&user("dave", "h1", "s1"));
        assert_eq!(
            base,
            d(&user("dave", "h2", "s1")),
            "the stamp decides, not the hash"
        );
        assert_ne!(base, d(&user("dave", "h1", "s2")));
        assert_ne!(base, d(&user("eve", "h1", "s1")));
        // no stamp: the password hash stands in
        assert_ne!(d(&user("dave", "h1", "")), d(&user("dave", "h2", "")));
        // keyed: another issuer secret gives another digest, and the stamp does not show
        let other = TokenIssuer::hs256(vec![8u8; 32]);
        assert_ne!(base, other.stamp_digest(&user("dave", "h1", "s1")).unwrap());
        assert!(!base.contains("s1"));
    }
}
