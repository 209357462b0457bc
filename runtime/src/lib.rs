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
#[doc(hidden)]
pub mod bench_support;
pub mod client_ip;
pub mod clock;
pub mod config;
pub mod cors;
pub mod crypto;
pub mod csrf;
pub mod error;
pub mod fallback;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod hardening;
pub mod headers;
pub mod health;
pub mod hosts;
pub mod observe;
pub mod policy;
pub mod principal;
pub mod rate;
pub mod route;
pub mod secrets;
#[cfg(feature = "sentry")]
pub mod sentry;
pub mod server;
pub mod static_files;
pub mod tls;
pub mod validate;

#[cfg(test)]
mod parser_props;

#[doc(hidden)]
pub mod __private;
