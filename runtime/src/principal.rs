//! The authenticated caller: [`Principal`], and custom token claims through [`Claims<T>`].
//!
//! Both are axum extractors that only work behind a `#[secure]` route: the generated code
//! authenticates first and then hands the principal to the handler.
//! (It travels in a private request extension: take it with these extractors, not with
//! `Extension<Principal>`.) A handler mounted
//! without that enforcement (for example the bare function passed to `axum::routing::get`)
//! gets a 500 from these extractors, never an unauthenticated call.
//!
//! (The `#[secure]` function itself also refuses to run outside its route.) Handlers keep
//! their signatures, so a unit test builds a principal directly, and calls the handler
//! through `shieldwall::testing::as_enforced`:
//!
//! ```
//! use shieldwall_runtime::principal::Principal;
//!
//! let admin = Principal::new("alice").with_roles(["admin"]).with_scopes(["users:write"]);
//! assert!(admin.has_role("admin"));
//! assert!(admin.has_scope("users:write"));
//! ```

use std::sync::Arc;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::error::Rejection;

/// How a principal authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Credential {
    /// A JWT bearer token.
    Jwt,
    /// An API key, with its id.
    ApiKey {
        /// The key's public id.
        id: String,
    },
    /// Built in code (tests).
    Manual,
}

#[derive(Debug)]
struct Inner {
    subject: Arc<str>,
    credential: Credential,
    roles: Vec<String>,
    scopes: Vec<String>,
    claims: Option<serde_json::Value>,
}

/// The authenticated caller of a route.
#[derive(Debug, Clone)]
pub struct Principal {
    inner: Arc<Inner>,
    /// Roles as a bit mask over the app's known roles, hierarchy applied. Computed by the
    /// runtime at authentication; `u64::MAX` bits beyond known roles are never set.
    pub(crate) role_mask: u64,
    /// The client address of the request it authenticated (set by the runtime).
    pub(crate) client_ip: Option<std::net::IpAddr>,
}

impl Principal {
    /// A principal with the given subject and no roles or scopes.
    pub fn new(subject: impl Into<String>) -> Self {
        Self::from_parts(
            subject.into(),
            Credential::Manual,
            Vec::new(),
            Vec::new(),
            None,
        )
    }

    pub(crate) fn from_parts(
        subject: String,
        credential: Credential,
        roles: Vec<String>,
        scopes: Vec<String>,
        claims: Option<serde_json::Value>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                subject: subject.into(),
                credential,
                roles,
                scopes,
                claims,
            }),
            role_mask: 0,
            client_ip: None,
        }
    }

    /// Replace the roles.
    pub fn with_roles<I: IntoIterator<Item = T>, T: Into<String>>(self, roles: I) -> Self {
        let client_ip = self.client_ip;
        let inner = Inner {
            roles: roles.into_iter().map(Into::into).collect(),
            ..self.into_inner()
        };
        Self {
            inner: Arc::new(inner),
            role_mask: 0,
            client_ip,
        }
    }

    /// Replace the scopes.
    pub fn with_scopes<I: IntoIterator<Item = T>, T: Into<String>>(self, scopes: I) -> Self {
        let client_ip = self.client_ip;
        let inner = Inner {
            scopes: scopes.into_iter().map(Into::into).collect(),
            ..self.into_inner()
        };
        Self {
            inner: Arc::new(inner),
            role_mask: 0,
            client_ip,
        }
    }

    /// Replace the raw claims (for testing handlers that read [`Claims<T>`]).
    pub fn with_claims(self, claims: serde_json::Value) -> Self {
        let client_ip = self.client_ip;
        let inner = Inner {
            claims: Some(claims),
            ..self.into_inner()
        };
        Self {
            inner: Arc::new(inner),
            role_mask: 0,
            client_ip,
        }
    }

    /// Set the client address (for testing handlers that read [`Principal::client_ip`]).
    pub fn with_client_ip(mut self, ip: std::net::IpAddr) -> Self {
        self.client_ip = Some(ip);
        self
    }

    fn into_inner(self) -> Inner {
        Arc::try_unwrap(self.inner).unwrap_or_else(|arc| Inner {
            subject: arc.subject.clone(),
            credential: arc.credential.clone(),
            roles: arc.roles.clone(),
            scopes: arc.scopes.clone(),
            claims: arc.claims.clone(),
        })
    }

    /// The subject (`sub` claim, or the API key's owner).
    pub fn subject(&self) -> &str {
        &self.inner.subject
    }

    /// The subject, shared (a rate-limit key without a copy).
    pub(crate) fn subject_shared(&self) -> Arc<str> {
        self.inner.subject.clone()
    }

    /// The address of the client whose request authenticated this principal, as the app
    /// sees it: the socket peer, or behind trusted proxies the forwarded client
    /// ([`crate::client_ip`]). `None` when the server did not record the peer, and for
    /// principals built in code. [`crate::auth::tokens::TokenEndpoint::change_password`]
    /// charges its failures to this address's login budget.
    pub fn client_ip(&self) -> Option<std::net::IpAddr> {
        self.client_ip
    }

    /// How the principal authenticated.
    pub fn credential(&self) -> &Credential {
        &self.inner.credential
    }

    /// Roles as presented by the credential (hierarchy not expanded).
    pub fn roles(&self) -> &[String] {
        &self.inner.roles
    }

    /// Scopes as presented by the credential.
    pub fn scopes(&self) -> &[String] {
        &self.inner.scopes
    }

    /// Whether the credential names this role directly.
    pub fn has_role(&self, role: &str) -> bool {
        self.inner.roles.iter().any(|r| r == role)
    }

    /// Whether the credential carries this scope.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.inner.scopes.iter().any(|s| s == scope)
    }

    /// The verified token's claims, if the principal came from a token.
    pub fn claims(&self) -> Option<&serde_json::Value> {
        self.inner.claims.as_ref()
    }

    /// Deserialize the verified claims into `T`.
    pub fn claims_as<T: DeserializeOwned>(&self) -> Option<T> {
        self.inner
            .claims
            .as_ref()
            .and_then(|c| T::deserialize(c).ok())
    }
}

/// Marker inserted by generated route code once the route's policy has been enforced,
/// carrying the authenticated principal (none on a public route). Clients cannot set
/// extensions, so its presence proves the request went through `#[secure]` enforcement.
#[derive(Debug, Clone)]
pub(crate) struct Enforced {
    pub(crate) handler: &'static str,
    pub(crate) principal: Option<Principal>,
}

/// Rejection of [`Principal`] and [`Claims`] outside enforcement.
#[derive(Debug)]
pub struct PrincipalRejection(Rejection);

impl IntoResponse for PrincipalRejection {
    fn into_response(self) -> Response {
        self.0.into_problem("api").into_response()
    }
}

fn unenforced() -> PrincipalRejection {
    tracing::error!(
        target: "shieldwall::audit",
        reason = "handler served without #[secure] enforcement",
        "refusing request: a Principal was requested by a handler that was not reached \
         through its #[secure] route; mount routes with Shieldwall::routes(routes![...])"
    );
    PrincipalRejection(Rejection::Internal)
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = PrincipalRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(enforced) = parts.extensions.get::<Enforced>() else {
            return Err(unenforced());
        };
        match &enforced.principal {
            Some(p) => Ok(p.clone()),
            None => {
                tracing::error!(
                    target: "shieldwall::audit",
                    handler = enforced.handler,
                    "a public route asked for a Principal; use Option<Principal>"
                );
                Err(PrincipalRejection(Rejection::Internal))
            }
        }
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Principal {
    type Rejection = PrincipalRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        match parts.extensions.get::<Enforced>() {
            Some(enforced) => Ok(enforced.principal.clone()),
            None => Err(unenforced()),
        }
    }
}

/// The verified token's claims deserialized into `T` (custom claims included).
///
/// Rejects with 401 `invalid_token` when the token's claims do not fit `T`.
#[derive(Debug, Clone)]
pub struct Claims<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Claims<T> {
    type Rejection = PrincipalRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let principal =
            <Principal as FromRequestParts<S>>::from_request_parts(parts, state).await?;
        principal
            .claims_as::<T>()
            .map(Claims)
            .ok_or(PrincipalRejection(Rejection::InvalidToken))
    }
}
