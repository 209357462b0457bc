//! Authentication: turning the request's credentials into a [`Principal`].
//!
//! Each authenticator lives in its own module ([`jwt`] today; API keys join it). The route
//! policy says which may satisfy a route (`auth = "jwt" | "api_key" | "any"`); the app
//! refuses to build when a route needs an authenticator that is not configured.
//!
//! ```
//! use shieldwall_runtime::auth::jwt::{Jwt, JwtKey};
//! use jsonwebtoken::Algorithm;
//!
//! // Two rotating keys, each with its own kid and algorithm allowlist.
//! let jwt = Jwt::new()
//!     .key(JwtKey::hmac(vec![7u8; 32]).kid("2026-11").algorithms([Algorithm::HS256]))
//!     .key(JwtKey::hmac(vec![9u8; 32]).kid("2026-12").algorithms([Algorithm::HS512]));
//! # let _ = jwt;
//! ```

pub mod api_key;
pub mod jwks;
pub mod jwt;
pub mod passwords;
pub mod revocation;
pub mod token_cache;
pub mod tokens;

use axum::http::{header, request::Parts};

use crate::error::Rejection;
use crate::policy::AuthKind;
use crate::principal::{Credential, Principal};

/// The configured authenticators of an app.
#[derive(Debug, Default)]
pub(crate) struct Authenticators {
    pub(crate) jwt: Option<jwt::JwtVerifier>,
    pub(crate) api_keys: Option<api_key::ApiKeys>,
    pub(crate) revocation: Option<revocation::TokenState>,
}

/// Query parameters that carry credentials in other frameworks; a request naming one is
/// refused outright (credentials in URLs end up in logs, caches and `Referer` headers).
const QUERY_CREDENTIALS: &[&str] = &[
    "api_key",
    "apikey",
    "api-key",
    "access_token",
    "key",
    "token",
];

impl Authenticators {
    /// Whether some authenticator can satisfy `kind`.
    pub(crate) fn supports(&self, kind: AuthKind) -> bool {
        match kind {
            AuthKind::Any => self.jwt.is_some() || self.api_keys.is_some(),
            AuthKind::Jwt => self.jwt.is_some(),
            AuthKind::ApiKey => self.api_keys.is_some(),
        }
    }

    /// Authenticate the request for a route accepting `kind`.
    pub(crate) async fn authenticate(
        &self,
        parts: &Parts,
        kind: AuthKind,
    ) -> Result<Principal, Rejection> {
        if let Some(q) = parts.uri.query()
            && form_urlencoded::parse(q.as_bytes())
                .any(|(k, _)| QUERY_CREDENTIALS.iter().any(|c| k.eq_ignore_ascii_case(c)))
        {
            return Err(Rejection::MalformedCredentials(
                "Credentials are never accepted in the query string; send them in a header.",
            ));
        }
        let key_header = match (&self.api_keys, kind) {
            (Some(keys), AuthKind::Any | AuthKind::ApiKey) => {
                let mut values = parts.headers.get_all(keys.header_name()).iter();
                let first = values.next();
                if values.next().is_some() {
                    return Err(Rejection::MalformedCredentials(
                        "More than one API key was sent.",
                    ));
                }
                first.map(|v| (keys, v))
            }
            _ => None,
        };
        let mut values = parts.headers.get_all(header::AUTHORIZATION).iter();
        let authorization = values.next();
        if values.next().is_some() {
            return Err(Rejection::MalformedCredentials(
                "More than one Authorization header was sent.",
            ));
        }
        match (key_header, authorization) {
            (Some(_), Some(_)) => Err(Rejection::MalformedCredentials(
                "Send one credential: an API key or a bearer token, not both.",
            )),
            (Some((keys, value)), None) => keys.verify_async(value.as_bytes()).await,
            (None, Some(value)) => match jwt::bearer(value.as_bytes())? {
                Some(raw) => match (&self.jwt, kind) {
                    (Some(v), AuthKind::Any | AuthKind::Jwt) => {
                        let principal = v.verify_bearer(raw).await?;
                        self.check_revocation(&principal).await?;
                        Ok(principal)
                    }
                    _ => {
                        jwt::token68(raw)?;
                        Err(Rejection::MissingCredentials)
                    }
                },
                None => Err(Rejection::MissingCredentials),
            },
            (None, None) => Err(Rejection::MissingCredentials),
        }
    }

    async fn check_revocation(&self, p: &Principal) -> Result<(), Rejection> {
        let (Some(state), Credential::Jwt) = (&self.revocation, p.credential()) else {
            return Ok(());
        };
        let claims = p.claims();
        let get = |k: &str| claims.and_then(|c| c.get(k)).and_then(|v| v.as_str());
        let iat = claims
            .and_then(|c| c.get("iat"))
            .and_then(serde_json::Value::as_u64);
        match state
            .is_revoked(get("jti"), get("fam"), p.subject(), iat)
            .await
        {
            Ok(false) => Ok(()),
            Ok(true) => Err(Rejection::InvalidToken),
            Err(e) => {
                tracing::error!(target: "shieldwall::auth", error = %e, "revocation list unavailable; refusing tokens");
                Err(Rejection::Unavailable)
            }
        }
    }
}
