//! # shieldwall
//!
//! Secure axum APIs by declaration. A handler carries one attribute, and that attribute is
//! the whole truth about the route: method and path, who may call it, how often, and what
//! input it accepts. The runtime enforces it.
//!
//! ```no_run
//! use shieldwall::prelude::*;
//!
//! #[derive(Deserialize, Validate)]
//! #[serde(deny_unknown_fields)]
//! struct NewUser {
//!     #[validate(length(min = 1, max = 50))]
//!     username: String,
//! }
//!
//! /// Admins only, five a minute per caller.
//! #[secure(post "/users", role = "admin", rate = "5/min")]
//! async fn create_user(user: Principal, Json(body): Json<NewUser>) -> String {
//!     format!("{} created {}", user.subject(), body.username)
//! }
//!
//! #[secure(get "/health", public)]
//! async fn health() -> &'static str {
//!     "ok"
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let app = Shieldwall::new()
//!     .jwt(Jwt::hs256_from_env("SHIELDWALL_JWT_SECRET")?.issuer("me").audience("api"))
//!     .routes(routes![create_user, health])
//!     .build()?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! shieldwall::serve(app, listener).await?;
//! # Ok(())
//! # }
//! ```
//!
//! See the README for the attribute reference.

extern crate self as shieldwall;

pub use shieldwall_macros::secure;
pub use shieldwall_runtime::{
    app, auth, authz, client_ip, clock, cors, csrf, error, fallback, hardening, headers, hosts,
    policy, principal, rate, route, server, static_files, tls, validate,
};

pub use shieldwall_runtime::app::{BuildError, ConfigError, Shieldwall, serve};
pub use shieldwall_runtime::auth::jwks::Jwks;
pub use shieldwall_runtime::auth::jwt::{Jwt, JwtKey};
pub use shieldwall_runtime::authz::RoleHierarchy;
pub use shieldwall_runtime::cors::Cors;
pub use shieldwall_runtime::csrf::Csrf;
pub use shieldwall_runtime::error::{FieldError, Problem, Rejection};
pub use shieldwall_runtime::headers::SecurityHeaders;
pub use shieldwall_runtime::hosts::AllowedHosts;
pub use shieldwall_runtime::policy::Role;
pub use shieldwall_runtime::principal::{Claims, Principal};
pub use shieldwall_runtime::route::SecureRoute;
pub use shieldwall_runtime::server::Limits;
pub use shieldwall_runtime::static_files::StaticFiles;
pub use shieldwall_runtime::tls::{HttpPolicy, Tls};
// Configuration, secrets and encryption at rest.
pub use shieldwall_runtime::config::Profile;
pub use shieldwall_runtime::crypto::{Encrypted, Keyring};
pub use shieldwall_runtime::secrets::Secret;
#[cfg(feature = "sentry")]
pub use shieldwall_runtime::sentry;
pub use shieldwall_runtime::{config, crypto, health, observe, secrets};

/// Build the route list for [`Shieldwall::routes`] from `#[secure]` handlers.
///
/// ```ignore
/// Shieldwall::new().routes(routes![create_user, get_user, health])
/// ```
#[macro_export]
macro_rules! routes {
    ($($route:path),* $(,)?) => {
        ::std::vec![$(<$route as $crate::__private::RouteFactory<_, _>>::route()),*]
    };
}

/// Everything a handler module needs: `use shieldwall::prelude::*;`.
pub mod prelude {
    pub use crate::routes;
    pub use crate::{AllowedHosts, Cors, SecurityHeaders, StaticFiles, Tls};
    pub use crate::{
        Claims, Jwt, JwtKey, Principal, Problem, Role, RoleHierarchy, Shieldwall, secure,
    };
    pub use crate::{Encrypted, Keyring, Profile, Secret};
    pub use axum::Json;
    pub use axum::extract::{Form, Path, Query, State};
    pub use serde::{Deserialize, Serialize};
    pub use validator::Validate;
}

/// Unit-testing `#[secure]` handlers.
///
/// A `#[secure]` function keeps its name and signature, but its body runs only when its
/// own route calls it, after the route's policy has passed. Mounted as a plain axum handler
/// (`Router::new().route("/users", post(create_user))`), or called from another `#[secure]`
/// function, it refuses: it logs why on the `shieldwall::audit` target and panics before
/// any of its code runs. A unit test arms the one call it makes with
/// [`as_enforced`](crate::testing::as_enforced):
///
/// ```
/// use shieldwall::prelude::*;
/// use shieldwall::testing::as_enforced;
///
/// #[derive(Deserialize, Validate)]
/// struct NewUser {
///     #[validate(length(min = 1, max = 50))]
///     username: String,
/// }
///
/// #[secure(post "/users", role = "admin", rate = "5/min")]
/// async fn create_user(user: Principal, Json(body): Json<NewUser>) -> String {
///     format!("{} created {}", user.subject(), body.username)
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let admin = Principal::new("alice").with_roles(["admin"]);
/// let body = NewUser { username: "bob".into() };
/// let out = as_enforced(create_user(admin, Json(body))).await;
/// assert_eq!(out, "alice created bob");
/// # }
/// ```
///
/// The test then exercises the body only: the attribute's policy (authentication, roles,
/// limits, validation) is not run, since the arguments are given directly. Test the policy
/// over HTTP through `Shieldwall::build()`.
pub mod testing {
    use std::future::Future;

    /// Run `call`, the future of a `#[secure]` function, as its route runs it once the
    /// policy has passed: its body may run (once; a `#[secure]` function it calls directly
    /// is still refused).
    ///
    /// Meant for tests. In application code it would serve the handler without its policy;
    /// mount handlers with [`Shieldwall::routes`](crate::Shieldwall::routes) instead.
    pub fn as_enforced<F: Future>(call: F) -> impl Future<Output = F::Output> {
        shieldwall_runtime::route::enforce_entry(call)
    }
}

#[doc(hidden)]
pub mod __private {
    pub use shieldwall_runtime::__private::*;
}
