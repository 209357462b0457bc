//! The runtime of shieldwall: it enforces the policies `#[secure]` declares and builds the
//! app around them. Users depend on the `shieldwall` facade crate, which re-exports this.
//!
//! ```
//! use shieldwall_runtime::error::Rejection;
//! assert_eq!(Rejection::MissingCredentials.status(), 401);
//! ```

pub mod app;
pub mod auth;
pub mod authz;
pub mod client_ip;
pub mod clock;
pub mod error;
pub mod policy;
pub mod principal;
pub mod rate;
pub mod route;
pub mod validate;

#[doc(hidden)]
pub mod __private;
