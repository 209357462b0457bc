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
//! - **Brute force** (OWASP Authentication Cheat Sheet): the endpoint is a `login` route
//!   limited per IP (20 requests a minute). Failed logins are counted twice: per (username,
//!   client address) — the tight limit, 5 a minute — and per username from every address
//!   together — a looser ceiling, 50 an hour (see [`TokenEndpoint::failed_logins_per_client`],
//!   [`TokenEndpoint::failed_logins_per_username`]). Successful logins cost nothing, so an
//!   attacker guessing alice's password from one address locks out that address only, not
//!   alice. The trade-off: an attacker with many addresses can still spend the ceiling and
//!   keep alice out until it refills, which is the price of capping distributed guessing at
//!   50 an hour rather than 5 a minute per address. Each attempt is charged *before* Argon2
//!   runs and refunded afterwards unless it failed, in one atomic step per store (memory or
//!   Redis), so 100 guesses fired at once get exactly the budget of verifications, not 100.
//!   Unknown users and wrong passwords get the same `invalid_grant` answer after the same
//!   Argon2 work, and unknown usernames are counted like known ones.
//! - **Argon2 off the async workers**: passwords are verified on tokio's blocking pool,
//!   at most half the cores at once; a login that waits more than 2 s for its turn is
//!   answered 503 `temporarily_unavailable` (see [`super::passwords`],
//!   [`TokenEndpoint::passwords`]).
//! - **Errors** follow RFC 6749 §5.2 (`{"error": "invalid_grant", ...}`, 400), the one
//!   place where shieldwall answers in a format other than problem+json, because OAuth2
//!   clients parse exactly that.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::jwt::{Jwt, JwtKey};
use super::passwords::Passwords;
use super::revocation::{Rotation, TokenState};
use crate::policy::{Access, Method, OnOutage, Per, Policy, Rate};
use crate::principal::Principal;
use crate::rate::{Ident, Quota};
use crate::route::{Guard, SecureRoute};

/// A boxed future, for the object-safe [`UserStore`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A user as the token endpoint needs it.
#[derive(Clone)]
pub struct UserRecord {
    /// The token subject (a stable user id).
    pub subject: String,
    /// The Argon2 PHC hash ([`Passwords::hash`]).
    pub password_hash: String,
    /// Roles to put in access tokens.
    pub roles: Vec<String>,
    /// Scopes the user may request.
    pub scopes: Vec<String>,
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

    /// The user with this token subject (at refresh). Defaults to [`UserStore::find`], for
    /// stores whose subjects are usernames.
    fn find_subject<'a>(
        &'a self,
        subject: &'a str,
    ) -> BoxFuture<'a, Result<Option<UserRecord>, String>> {
        self.find(subject)
    }
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
            Self::Unavailable => "Try again later.",
            Self::Server => "The server could not issue a token.",
        }
    }
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        let status = match self {
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Server => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        let body = json!({ "error": self.to_string(), "error_description": self.description() });
        let mut res = no_store((status, axum::Json(body)).into_response());
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
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

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
}

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

    fn refresh(&self, sub: &str, fam: &str, jti: &str) -> Result<String, TokenError> {
        let now = unix_now();
        let claims = RefreshClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: sub.into(),
            iat: now,
            exp: now + self.refresh_ttl.as_secs(),
            jti: jti.into(),
            fam: fam.into(),
            token_use: "refresh".into(),
        };
        let mut h = Header::new(Algorithm::HS256);
        h.typ = Some("rt+jwt".into());
        jsonwebtoken::encode(&h, &claims, &self.key()?).map_err(|_| TokenError::Server)
    }

    fn response(
        &self,
        sub: &str,
        roles: &[String],
        scope: &str,
        fam: &str,
        refresh_jti: &str,
    ) -> Result<TokenResponse, TokenError> {
        Ok(TokenResponse {
            access_token: self.access(sub, roles, scope, fam)?,
            token_type: "Bearer".into(),
            expires_in: self.access_ttl.as_secs(),
            refresh_token: self.refresh(sub, fam, refresh_jti)?,
            scope: scope.into(),
        })
    }

    /// Issue tokens for an authenticated user, starting a new refresh family. `scope`
    /// (space separated) must be a subset of the user's scopes; `None` grants them all.
    pub async fn issue(
        &self,
        user: &UserRecord,
        scope: Option<&str>,
    ) -> Result<TokenResponse, TokenError> {
        let scope = granted_scope(&user.scopes, scope)?;
        let fam = random_id();
        let jti = random_id();
        self.state
            .start_family(&fam, &jti, self.refresh_ttl.as_secs())
            .await
            .map_err(|_| TokenError::Unavailable)?;
        let roles = user.roles.clone();
        let mut res = self.response(&user.subject, &roles, &scope, &fam, &jti)?;
        // The family's roles and scope travel in the refresh token's family record only
        // implicitly: a refresh re-reads them from the user store.
        res.scope = scope;
        Ok(res)
    }

    /// Verify a refresh token and rotate its family. Reusing an old token revokes the family.
    pub async fn rotate(
        &self,
        refresh_token: &str,
    ) -> Result<(String, String, String), TokenError> {
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
        let c = data.claims;
        if c.token_use != "refresh" {
            return Err(TokenError::InvalidGrant);
        }
        let new_jti = random_id();
        let ttl = c.exp.saturating_sub(unix_now()).max(1);
        match self.state.rotate(&c.fam, &c.jti, &new_jti, ttl).await {
            Ok(Rotation::Rotated) => Ok((c.sub, c.fam, new_jti)),
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

    /// Revoke every token issued to `subject` so far (admin revoke).
    pub async fn revoke_subject(&self, subject: &str) -> Result<(), crate::rate::StoreError> {
        self.state
            .revoke_subject(subject, self.refresh_ttl.as_secs())
            .await
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

/// The `POST /token` endpoint (password and refresh-token grants).
pub struct TokenEndpoint {
    issuer: TokenIssuer,
    users: Arc<dyn UserStore>,
    passwords: Passwords,
    /// Failed logins per (username, client address).
    per_client: Quota,
    /// Failed logins per username, from every address together.
    per_username: Quota,
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
            per_client: quota(5, Duration::from_secs(60)),
            per_username: quota(50, Duration::from_secs(3600)),
        }
    }

    /// Failed logins allowed for one username from one client address (IPv6 by its
    /// prefix): `count` per `period`, all at once at most (default 5 a minute). This is the
    /// tight limit against guessing; an attacker spending it locks out only their own
    /// address. Successful logins cost nothing.
    pub fn failed_logins_per_client(mut self, count: u32, period: Duration) -> Self {
        self.per_client = quota(count, period);
        self
    }

    /// Failed logins allowed for one username from every address together: `count` per
    /// `period` (default 50 an hour). The ceiling against guessing spread over many
    /// addresses; once spent, the username cannot log in from anywhere until it refills —
    /// the price of the ceiling (see the module docs).
    pub fn failed_logins_per_username(mut self, count: u32, period: Duration) -> Self {
        self.per_username = quota(count, period);
        self
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
                // Failures are what is counted, but each attempt is charged *before* its
                // password is verified and refunded when it was not a failure: concurrent
                // guesses can never get more verifications than the budget.
                let name: Arc<str> = username.to_lowercase().into();
                let ip = fin.client_rate_ip();
                let (index, scope, label) = FAILED_PER_CLIENT;
                let per_client = match fin
                    .charge_extra(
                        index,
                        label,
                        scope,
                        self.per_client,
                        Ident::UsernameFrom(name.clone(), ip),
                    )
                    .await
                {
                    Ok(c) => c,
                    Err(res) => return res,
                };
                let (index, scope, label) = FAILED_PER_USERNAME;
                let per_username = match fin
                    .charge_extra(
                        index,
                        label,
                        scope,
                        self.per_username,
                        Ident::Username(name),
                    )
                    .await
                {
                    Ok(c) => c,
                    Err(res) => {
                        fin.refund(per_client).await;
                        return res;
                    }
                };
                let result = self
                    .password_grant(&username, &password, form.scope.as_deref())
                    .await;
                // Only a wrong password (or an unknown user) is a failure. A right password
                // with a bad scope, or a login shed before Argon2 ran, gives the charge back.
                if !matches!(result, Err(TokenError::InvalidGrant)) {
                    fin.refund(per_client).await;
                    fin.refund(per_username).await;
                }
                result
            }
            Some("refresh_token") => match form.refresh_token {
                Some(rt) => self.refresh_grant(&rt).await,
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

    async fn password_grant(
        &self,
        username: &str,
        password: &str,
        scope: Option<&str>,
    ) -> Result<TokenResponse, TokenError> {
        let user = self.users.find(username).await.map_err(|e| {
            tracing::error!(target: "shieldwall::auth", error = %e, "user store failed");
            TokenError::Unavailable
        })?;
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

    async fn refresh_grant(&self, refresh_token: &str) -> Result<TokenResponse, TokenError> {
        let (sub, fam, new_jti) = self.issuer.rotate(refresh_token).await?;
        // Roles and scopes are re-read so that a demoted user's next access token says so.
        let user = self
            .users
            .find_subject(&sub)
            .await
            .map_err(|_| TokenError::Unavailable)?;
        let (roles, scope) = match user {
            Some(u) if u.subject == sub => (u.roles, u.scopes.join(" ")),
            _ => (Vec::new(), String::new()),
        };
        self.issuer.response(&sub, &roles, &scope, &fam, &new_jti)
    }
}
