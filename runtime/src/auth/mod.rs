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

pub mod jwt;

use axum::http::{header, request::Parts};

use crate::error::Rejection;
use crate::policy::AuthKind;
use crate::principal::Principal;

/// The configured authenticators of an app.
#[derive(Debug, Default)]
pub(crate) struct Authenticators {
    pub(crate) jwt: Option<jwt::JwtVerifier>,
}

impl Authenticators {
    /// Whether some authenticator can satisfy `kind`.
    pub(crate) fn supports(&self, kind: AuthKind) -> bool {
        match kind {
            AuthKind::Any | AuthKind::Jwt => self.jwt.is_some(),
            AuthKind::ApiKey => false,
        }
    }

    /// Authenticate the request for a route accepting `kind`.
    pub(crate) fn authenticate(
        &self,
        parts: &Parts,
        kind: AuthKind,
    ) -> Result<Principal, Rejection> {
        let mut values = parts.headers.get_all(header::AUTHORIZATION).iter();
        let Some(value) = values.next() else {
            return Err(Rejection::MissingCredentials);
        };
        if values.next().is_some() {
            return Err(Rejection::MalformedCredentials(
                "More than one Authorization header was sent.",
            ));
        }
        match jwt::bearer(value.as_bytes())? {
            Some(token) => match (&self.jwt, kind) {
                (Some(v), AuthKind::Any | AuthKind::Jwt) => v.verify(token),
                _ => Err(Rejection::MissingCredentials),
            },
            None => Err(Rejection::MissingCredentials),
        }
    }
}
