//! Configuration: the profile, `.env` files, secrets from the environment, and what the
//! production profile refuses.
//!
//! ```
//! use shieldwall_runtime::app::Shieldwall;
//! use shieldwall_runtime::config::Profile;
//!
//! // `Shieldwall::from_env()` takes the profile from SHIELDWALL_PROFILE; here it is set in code.
//! let err = Shieldwall::new()
//!     .profile(Profile::Production)
//!     .debug_routes(true)
//!     .build()
//!     .unwrap_err();
//! assert!(err.to_string().starts_with("SHIELDWALL_DEBUG_ROUTES: "), "{err}");
//! ```
//!
//! A deployed app needs no code for its secrets:
//!
//! ```no_run
//! # use shieldwall_runtime::app::Shieldwall;
//! // SHIELDWALL_PROFILE=production SHIELDWALL_JWT_SECRET_FILE=/run/secrets/jwt ./app
//! let app: axum::Router = Shieldwall::from_env()? // profile, .env (development only), SHIELDWALL_*
//!     // .routes(routes![me, create_user])
//!     .build()?;                                   // refuses an insecure production setup
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Profiles
//!
//! `SHIELDWALL_PROFILE` is `development` (the default) or `production`
//! ([`Profile`], or [`crate::app::Shieldwall::profile`] in code).
//!
//! In **development**, [`crate::app::Shieldwall::env`] (and so `from_env()`) first loads a
//! `.env` file from the current directory with `dotenvy`, never overriding a variable that
//! is already set. The profile itself is read from the real environment first, so a
//! production process never reads a `.env` file; a `.env` may still set
//! `SHIELDWALL_PROFILE=production`, and then every production check applies. Loading
//! `.env` sets process variables: call `from_env()` at the start of `main`. A `.env` line
//! that does not parse is reported by its line number, never its text (it may hold a
//! secret).
//!
//! In **production**, [`crate::app::Shieldwall::build`] refuses to start, with a
//! [`ProductionError`] naming the setting to fix, when:
//!
//! - a JWT HMAC secret is a development secret: one made by
//!   [`Secret::generate_development`](crate::secrets::Secret::generate_development) (the
//!   quickstart's, even copied into a variable) or a well-known placeholder
//!   ([`crate::secrets::is_development_value`]) → `SHIELDWALL_JWT_SECRET`;
//! - a route needs JWT authentication and no JWT is configured → `SHIELDWALL_JWT_SECRET`
//!   (in development this is the ordinary [`crate::app::BuildError::JwtNotConfigured`]);
//! - debug routes are enabled → `SHIELDWALL_DEBUG_ROUTES` (or `.debug_routes(true)`).
//!
//! An HMAC secret under 32 bytes is refused in every profile: from `SHIELDWALL_JWT_SECRET`
//! by `env()`, naming the variable; from code by `build()`, which checks a token issuer's
//! signing secret ([`crate::auth::tokens::TokenIssuer`]) the same way, also when the app
//! verifies with a `.jwt(...)` of its own.
//! [`Secret::from_env_or_development`](crate::secrets::Secret::from_env_or_development) and
//! [`Keyring::from_env_or_development`](crate::crypto::Keyring::from_env_or_development)
//! generate development values only in the development profile.
//!
//! # Variables
//!
//! | variable | meaning |
//! |---|---|
//! | `SHIELDWALL_PROFILE` | `development` (default) or `production` |
//! | `SHIELDWALL_JWT_SECRET` | HS256 secret (≥ 32 bytes) for the app's JWT when the code configures none |
//! | `SHIELDWALL_JWT_SECRET_FILE` | a file holding that secret (one trailing newline removed) |
//! | `SHIELDWALL_JWT_ISSUER` | required `iss` of that JWT (comma-separated: any of them) |
//! | `SHIELDWALL_JWT_AUDIENCE` | required `aud` of that JWT (comma-separated: any of them) |
//! | `SHIELDWALL_DEBUG_ROUTES` | `true`: mount `GET /_debug/routes` (development only) |
//! | `SHIELDWALL_ENCRYPTION_KEYS`, `…_FILE`, `SHIELDWALL_ENCRYPTION_CURRENT` | the [`crate::crypto::Keyring`] |
//!
//! Every `*_SECRET` and `*_KEYS` variable may be given as `NAME_FILE` instead (see
//! [`crate::secrets`]).

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use axum::routing::MethodRouter;

use crate::app::{BuildError, ConfigError};
use crate::auth::jwt::{Jwt, MIN_HMAC_SECRET_LEN};
use crate::policy::{Access, AuthKind, Policy};
use crate::secrets::{Origin, is_development_value, read_var};

/// `development` or `production`.
pub const PROFILE_VAR: &str = "SHIELDWALL_PROFILE";
/// `true` mounts [`DEBUG_ROUTES_PATH`].
pub const DEBUG_ROUTES_VAR: &str = "SHIELDWALL_DEBUG_ROUTES";
/// The app's HS256 secret (or `…_FILE`).
pub const JWT_SECRET_VAR: &str = "SHIELDWALL_JWT_SECRET";
/// The JWT's required issuers.
pub const JWT_ISSUER_VAR: &str = "SHIELDWALL_JWT_ISSUER";
/// The JWT's required audiences.
pub const JWT_AUDIENCE_VAR: &str = "SHIELDWALL_JWT_AUDIENCE";
/// Where debug routes are mounted.
pub const DEBUG_ROUTES_PATH: &str = "/_debug/routes";
/// The file loaded in development.
pub const DOTENV_FILE: &str = ".env";

/// Which checks apply: see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Profile {
    /// Local development: `.env` is loaded, development secrets are allowed.
    #[default]
    Development,
    /// A deployment: no `.env`, no development secrets, no debug routes.
    Production,
}

impl Profile {
    /// The profile in `SHIELDWALL_PROFILE` (development when unset).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(var)
    }

    /// The profile in `SHIELDWALL_PROFILE`, read through `vars`.
    pub fn from_vars(vars: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        match vars(PROFILE_VAR).filter(|v| !v.trim().is_empty()) {
            None => Ok(Self::Development),
            Some(v) => v.parse().map_err(|why| ConfigError::Invalid {
                name: PROFILE_VAR,
                why,
            }),
        }
    }

    /// Whether this is [`Profile::Production`].
    pub fn is_production(self) -> bool {
        self == Self::Production
    }

    /// `development` or `production`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Production => "production",
        }
    }
}

impl FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "development" | "dev" => Ok(Self::Development),
            "production" | "prod" => Ok(Self::Production),
            other => Err(format!("{other:?}: write `development` or `production`")),
        }
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Read the profile from `SHIELDWALL_PROFILE` and, in development, load `.env`
/// ([`load_dotenv`]); then read the profile again, since `.env` may set it. This is the
/// first thing [`crate::app::Shieldwall::env`] does; call it yourself when the program
/// reads variables before building the app.
pub fn init() -> Result<Profile, ConfigError> {
    if !Profile::from_env()?.is_production() {
        load_dotenv()?;
    }
    Profile::from_env()
}

/// A process variable, `None` when unset, empty or only whitespace.
pub(crate) fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Load `.env` from the current directory into the process environment without
/// overriding variables already set. `Ok(false)` when there is no such file. Called by
/// [`crate::app::Shieldwall::env`] in the development profile.
pub fn load_dotenv() -> Result<bool, ConfigError> {
    load_dotenv_from(Path::new(DOTENV_FILE))
}

fn load_dotenv_from(path: &Path) -> Result<bool, ConfigError> {
    let invalid = |why: String| ConfigError::Invalid {
        name: DOTENV_FILE,
        why,
    };
    let iter = match dotenvy::from_path_iter(path) {
        Ok(iter) => iter,
        Err(e) if e.not_found() => return Ok(false),
        Err(_) => return Err(invalid(format!("{} cannot be read", path.display()))),
    };
    // Parse every line before setting anything, so a broken file sets nothing. The parser's
    // own error quotes the line, which may hold a secret: only its number is reported.
    for item in iter {
        if let Err(e) = item {
            let line = match &e {
                dotenvy::Error::LineParse(text, _) => line_number(path, text),
                _ => None,
            };
            return Err(invalid(match line {
                Some(n) => format!(
                    "line {n} of {} does not parse (its text is not shown: it may hold a secret)",
                    path.display()
                ),
                None => format!(
                    "{} does not parse (the text is not shown: it may hold a secret)",
                    path.display()
                ),
            }));
        }
    }
    dotenvy::from_path(path)
        .map_err(|_| invalid(format!("{} cannot be loaded", path.display())))?;
    Ok(true)
}

fn line_number(path: &Path, text: &str) -> Option<usize> {
    let contents = std::fs::read_to_string(path).ok()?;
    let first = text.lines().next()?.trim();
    contents
        .lines()
        .position(|l| l.trim() == first)
        .map(|i| i + 1)
}

/// What the production profile refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// A development or placeholder secret.
    DevelopmentSecret,
    /// A secret the app needs is not configured.
    MissingSecret,
    /// Debug routes are enabled.
    DebugRoutes,
}

/// Why the production profile refused to start: the setting to fix and how.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {why}")]
#[non_exhaustive]
pub struct ProductionError {
    /// What was refused.
    pub refusal: Refusal,
    /// The setting to fix.
    pub setting: &'static str,
    /// What is wrong and what to do.
    pub why: String,
}

/// The builder's profile and environment-derived settings.
#[derive(Debug, Clone, Default)]
pub(crate) struct Settings {
    pub(crate) profile: Profile,
    /// What enabled debug routes (`SHIELDWALL_DEBUG_ROUTES` or `.debug_routes(true)`).
    pub(crate) debug_routes: Option<&'static str>,
    /// The JWT from `SHIELDWALL_JWT_SECRET`, used when the code configures none.
    pub(crate) env_jwt: Option<Jwt>,
    /// Verification configs of token issuers, whose secrets are checked too.
    pub(crate) issuers: Vec<Jwt>,
}

fn flag(name: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => Err(ConfigError::Invalid {
            name,
            why: format!("{other:?}: write `true` or `false`"),
        }),
    }
}

fn list(v: &str) -> impl Iterator<Item = String> + '_ {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

/// Whether a route needs a JWT when `api_keys` tells whether API keys are configured.
fn needs_jwt(p: &Policy, api_keys: bool) -> bool {
    match p.access {
        Access::Public => false,
        Access::Authenticated(req) => match req.auth {
            AuthKind::Jwt => true,
            AuthKind::Any => !api_keys,
            AuthKind::ApiKey => false,
        },
    }
}

impl Settings {
    /// The profile, `.env` in development, then [`Settings::apply`] on the process
    /// environment.
    pub(crate) fn env(&mut self) -> Result<(), ConfigError> {
        if self.profile.is_production() {
            Profile::from_env()?;
        } else {
            init()?;
        }
        self.apply(&var)
    }

    /// Apply the variables `vars` returns.
    pub(crate) fn apply(
        &mut self,
        vars: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        let get = |n: &str| vars(n).filter(|v| !v.trim().is_empty());
        if get(PROFILE_VAR).is_some() {
            self.profile = Profile::from_vars(get)?;
        }
        if let Some(v) = get(DEBUG_ROUTES_VAR) {
            self.debug_routes = flag(DEBUG_ROUTES_VAR, &v)?.then_some(DEBUG_ROUTES_VAR);
        }
        let issuers: Vec<String> = get(JWT_ISSUER_VAR)
            .map(|v| list(&v).collect())
            .unwrap_or_default();
        let audiences: Vec<String> = get(JWT_AUDIENCE_VAR)
            .map(|v| list(&v).collect())
            .unwrap_or_default();
        match read_var(JWT_SECRET_VAR, vars)? {
            Some((secret, origin)) => {
                let name = match origin {
                    Origin::Var => JWT_SECRET_VAR,
                    Origin::File => "SHIELDWALL_JWT_SECRET_FILE",
                };
                if secret.len() < MIN_HMAC_SECRET_LEN {
                    return Err(ConfigError::Invalid {
                        name,
                        why: format!(
                            "the secret is {} bytes; at least {MIN_HMAC_SECRET_LEN} random bytes are required (generate one with `openssl rand -base64 48`)",
                            secret.len()
                        ),
                    });
                }
                let mut jwt = Jwt::hs256(secret.expose().as_bytes().to_vec());
                for iss in issuers {
                    jwt = jwt.issuer(iss);
                }
                for aud in audiences {
                    jwt = jwt.audience(aud);
                }
                self.env_jwt = Some(jwt);
            }
            None if !issuers.is_empty() || !audiences.is_empty() => {
                let name = if issuers.is_empty() {
                    JWT_AUDIENCE_VAR
                } else {
                    JWT_ISSUER_VAR
                };
                return Err(ConfigError::Invalid {
                    name,
                    why: format!(
                        "it configures the JWT built from {JWT_SECRET_VAR}, which is not set: set {JWT_SECRET_VAR} (or {JWT_SECRET_VAR}_FILE), or configure issuer and audience in code"
                    ),
                });
            }
            None => {}
        }
        Ok(())
    }

    /// The checks `build()` makes before anything else: the debug route's path is free, and
    /// in production, the refusals of the [module docs](self).
    pub(crate) fn check(
        &self,
        policies: &[&'static Policy],
        jwt: Option<&Jwt>,
        api_keys: bool,
    ) -> Result<(), BuildError> {
        let production = self.profile.is_production();
        if let Some(source) = self.debug_routes {
            if let Some(p) = policies.iter().find(|p| p.path == DEBUG_ROUTES_PATH) {
                return Err(BuildError::DuplicateRoute {
                    method: p.method.as_str(),
                    path: DEBUG_ROUTES_PATH,
                    first: p.handler,
                    second: "shieldwall debug routes",
                });
            }
            if production {
                return Err(ProductionError {
                    refusal: Refusal::DebugRoutes,
                    setting: DEBUG_ROUTES_VAR,
                    why: format!(
                        "debug routes (GET {DEBUG_ROUTES_PATH}) are enabled by {source}, and the production profile refuses them: unset {DEBUG_ROUTES_VAR}{}",
                        if source == DEBUG_ROUTES_VAR { "" } else { " and remove `.debug_routes(true)`" }
                    ),
                }
                .into());
            }
        }
        if !production {
            return Ok(());
        }
        let development = jwt
            .into_iter()
            .chain(&self.issuers)
            .any(|j| j.hmac_secrets().any(is_development_value));
        if development {
            return Err(ProductionError {
                refusal: Refusal::DevelopmentSecret,
                setting: JWT_SECRET_VAR,
                why: format!(
                    "the JWT secret is a development secret (generated for development, or a placeholder such as `changeme`), and the production profile refuses it: set {JWT_SECRET_VAR} (or {JWT_SECRET_VAR}_FILE) to at least {MIN_HMAC_SECRET_LEN} random bytes, e.g. `openssl rand -base64 48`"
                ),
            }
            .into());
        }
        if jwt.is_none()
            && let Some(p) = policies.iter().find(|p| needs_jwt(p, api_keys))
        {
            return Err(ProductionError {
                refusal: Refusal::MissingSecret,
                setting: JWT_SECRET_VAR,
                why: format!(
                    "not set, and route {} {} (`{}`) needs JWT authentication: set {JWT_SECRET_VAR} or {JWT_SECRET_VAR}_FILE to at least {MIN_HMAC_SECRET_LEN} random bytes (the production profile generates no development secret)",
                    p.method.as_str(),
                    p.path,
                    p.handler
                ),
            }
            .into());
        }
        Ok(())
    }

    /// `GET /_debug/routes` listing every route's policy, when enabled.
    pub(crate) fn debug_route<S: Clone + Send + Sync + 'static>(
        &self,
        policies: &[&'static Policy],
    ) -> Option<MethodRouter<S>> {
        self.debug_routes?;
        tracing::warn!(
            target: "shieldwall::config",
            "debug routes are enabled: GET {DEBUG_ROUTES_PATH} lists every route's policy (development profile only)"
        );
        let body = Arc::new(serde_json::Value::Array(
            policies.iter().map(|p| describe(p)).collect(),
        ));
        Some(axum::routing::get(move || {
            let body = body.clone();
            async move { axum::Json(body.as_ref().clone()) }
        }))
    }
}

/// One route's policy as JSON, for the debug route.
fn describe(p: &Policy) -> serde_json::Value {
    use serde_json::json;
    let mut v = json!({
        "method": p.method.as_str(),
        "path": p.path,
        "handler": p.handler,
        "public": p.is_public(),
        "rates": p.rates.iter().map(|r| json!({"quota": r.text, "per": r.per.as_str()})).collect::<Vec<_>>(),
        "body_limit": p.body_limit,
        "validate": p.validate,
    });
    if let Access::Authenticated(req) = p.access {
        v["auth"] = json!(match req.auth {
            AuthKind::Any => "any",
            AuthKind::Jwt => "jwt",
            AuthKind::ApiKey => "api_key",
        });
        v["roles"] = json!(req.roles.iter().map(|r| r.name()).collect::<Vec<_>>());
        v["scopes"] = json!(req.scopes);
        v["allow"] = json!(req.allow.map(|e| format!("{e:?}")));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |n| pairs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())
    }

    #[test]
    fn profile_parses() {
        assert_eq!(Profile::from_vars(vars(&[])).unwrap(), Profile::Development);
        assert_eq!(
            Profile::from_vars(vars(&[(PROFILE_VAR, "Production")])).unwrap(),
            Profile::Production
        );
        let e = Profile::from_vars(vars(&[(PROFILE_VAR, "prd")])).unwrap_err();
        assert!(
            e.to_string().starts_with("SHIELDWALL_PROFILE: \"prd\""),
            "{e}"
        );
    }

    #[test]
    fn jwt_secret_from_vars() {
        let mut s = Settings::default();
        s.apply(&vars(&[
            (JWT_SECRET_VAR, "0123456789abcdef0123456789abcdef"),
            (JWT_ISSUER_VAR, "me"),
            (JWT_AUDIENCE_VAR, "api, web"),
        ]))
        .unwrap();
        let jwt = s.env_jwt.unwrap();
        assert_eq!(jwt.hmac_secrets().count(), 1);

        let mut s = Settings::default();
        let e = s
            .apply(&vars(&[(JWT_SECRET_VAR, "short-but-secret")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("SHIELDWALL_JWT_SECRET: the secret is 16 bytes; at least 32"),
            "{e}"
        );
        assert!(!e.contains("short-but-secret"), "{e}");

        let e = Settings::default()
            .apply(&vars(&[(JWT_ISSUER_VAR, "me")]))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("SHIELDWALL_JWT_ISSUER: "), "{e}");
    }

    #[test]
    fn debug_flag() {
        let mut s = Settings::default();
        s.apply(&vars(&[(DEBUG_ROUTES_VAR, "1")])).unwrap();
        assert_eq!(s.debug_routes, Some(DEBUG_ROUTES_VAR));
        s.apply(&vars(&[(DEBUG_ROUTES_VAR, "off")])).unwrap();
        assert_eq!(s.debug_routes, None);
        assert!(s.apply(&vars(&[(DEBUG_ROUTES_VAR, "maybe")])).is_err());
    }

    #[test]
    fn dotenv_errors_hide_the_line() {
        let dir = std::env::temp_dir().join(format!("sw-dotenv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join(".env");
        std::fs::write(&f, "A=1\nTOP_SECRET_VALUE 'unterminated\n").unwrap();
        let e = load_dotenv_from(&f).unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
        assert!(!e.contains("TOP_SECRET_VALUE"), "{e}");
        assert!(!load_dotenv_from(&dir.join("missing.env")).unwrap());
        let _ = std::fs::remove_dir_all(dir);
    }
}
