//! CORS on tower-http, from a configuration that `build()` validates.
//!
//! ```
//! use shieldwall_runtime::cors::{Cors, CorsError};
//!
//! let cors = Cors::origins(["https://app.example.com", "http://localhost:5173"]).credentials(true);
//! assert!(cors.validate().is_ok());
//!
//! // Refused at build time, never served:
//! assert_eq!(Cors::any().credentials(true).validate(), Err(CorsError::WildcardWithCredentials));
//! assert_eq!(Cors::origins(["null"]).validate(), Err(CorsError::NullOrigin));
//! assert!(Cors::origins(["example.com"]).validate().is_err()); // not an absolute URL
//! ```
//!
//! Origins are listed exactly (`scheme://host[:port]`, no path); an `Origin` that is not
//! listed — including `null`, which sandboxed frames and `file:` pages send — gets no
//! `Access-Control-Allow-Origin` and so cannot read the response. Preflight answers list
//! only the methods the app's routes use (GET implies HEAD), and only the request headers
//! they need: `authorization` when a route authenticates, `content-type` when a route
//! takes a body, the API-key header when API keys are configured (`x-api-key`, or the name
//! given to [`ApiKeys::header`](crate::auth::api_key::ApiKeys::header)), plus those named
//! with [`Cors::allow_headers`]. Without any `Cors`
//! configured, no CORS headers are sent at all (same-origin only).

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, Uri};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Why a CORS configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CorsError {
    /// `*` cannot be combined with credentials (browsers refuse it; it would be unsafe).
    #[error(
        "CORS: `*` (any origin) cannot be combined with credentials: list the origins that may send credentials"
    )]
    WildcardWithCredentials,
    /// The `null` origin is sent by sandboxed and `file:` documents: never trust it.
    #[error(
        "CORS: the `null` origin is refused (any sandboxed iframe can send it); list real origins"
    )]
    NullOrigin,
    /// An origin is not `scheme://host[:port]`.
    #[error("CORS origin {origin:?}: {why}")]
    NotAbsolute {
        /// The origin as given.
        origin: String,
        /// What to write instead.
        why: &'static str,
    },
    /// No origins were given.
    #[error("CORS: no origins listed; write at least one, e.g. `https://app.example.com`")]
    Empty,
    /// A header name is not valid.
    #[error("CORS header {0:?} is not a valid header name")]
    InvalidHeader(String),
}

/// Cross-origin resource sharing policy. See the [module docs](self).
#[derive(Debug, Clone, Default)]
pub struct Cors {
    origins: Vec<String>,
    any: bool,
    credentials: bool,
    allow_headers: Vec<String>,
    expose_headers: Vec<String>,
    max_age: Option<Duration>,
}

impl Cors {
    /// Allow exactly these origins (`https://app.example.com`).
    pub fn origins<I, T>(origins: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        Self {
            origins: origins
                .into_iter()
                .map(|o| o.as_ref().trim().to_string())
                .filter(|o| !o.is_empty())
                .collect(),
            max_age: Some(Duration::from_secs(600)),
            ..Self::default()
        }
    }

    /// Parse a comma-separated list (the `SHIELDWALL_CORS_ORIGINS` format); `*` is
    /// [`Cors::any`].
    pub fn parse(csv: &str) -> Self {
        if csv.trim() == "*" {
            return Self::any();
        }
        Self::origins(csv.split(','))
    }

    /// Allow any origin, without credentials (public, read-only data).
    pub fn any() -> Self {
        Self {
            any: true,
            max_age: Some(Duration::from_secs(600)),
            ..Self::default()
        }
    }

    /// Let listed origins send cookies / `Authorization` (`Access-Control-Allow-Credentials`).
    pub fn credentials(mut self, yes: bool) -> Self {
        self.credentials = yes;
        self
    }

    /// Extra request headers a preflight may allow (beyond what the routes need).
    pub fn allow_headers<I, T>(mut self, headers: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        self.allow_headers
            .extend(headers.into_iter().map(|h| h.as_ref().to_string()));
        self
    }

    /// Response headers scripts may read (`Access-Control-Expose-Headers`).
    pub fn expose_headers<I, T>(mut self, headers: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        self.expose_headers
            .extend(headers.into_iter().map(|h| h.as_ref().to_string()));
        self
    }

    /// How long browsers may cache a preflight answer (default 10 minutes).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// The normalized allowed origins (empty for [`Cors::any`]).
    pub fn allowed_origins(&self) -> Result<Vec<String>, CorsError> {
        self.origins.iter().map(|o| normalize_origin(o)).collect()
    }

    /// Check the configuration; `build()` calls this.
    pub fn validate(&self) -> Result<(), CorsError> {
        if self.any {
            if self.credentials {
                return Err(CorsError::WildcardWithCredentials);
            }
        } else if self.origins.is_empty() {
            return Err(CorsError::Empty);
        }
        if self.origins.iter().any(|o| o == "*") {
            return Err(if self.credentials {
                CorsError::WildcardWithCredentials
            } else {
                CorsError::NotAbsolute {
                    origin: "*".into(),
                    why: "use Cors::any() (or SHIELDWALL_CORS_ORIGINS=*) alone to allow every origin",
                }
            });
        }
        self.allowed_origins()?;
        for h in self.allow_headers.iter().chain(&self.expose_headers) {
            HeaderName::from_bytes(h.as_bytes())
                .map_err(|_| CorsError::InvalidHeader(h.clone()))?;
        }
        Ok(())
    }

    /// The tower-http layer for an app whose routes use `methods`; `auth`: some route
    /// authenticates; `body`: some route takes a body.
    pub(crate) fn layer(
        &self,
        methods: &[Method],
        auth: bool,
        body: bool,
    ) -> Result<CorsLayer, CorsError> {
        self.validate()?;
        let origin = if self.any {
            AllowOrigin::any()
        } else {
            let values = self
                .allowed_origins()?
                .into_iter()
                .filter_map(|o| HeaderValue::from_str(&o).ok())
                .collect::<Vec<_>>();
            AllowOrigin::list(values)
        };
        let mut methods = methods.to_vec();
        if methods.contains(&Method::GET) && !methods.contains(&Method::HEAD) {
            methods.push(Method::HEAD);
        }
        let mut headers: Vec<HeaderName> = Vec::new();
        if auth {
            headers.push(axum::http::header::AUTHORIZATION);
        }
        if body {
            headers.push(axum::http::header::CONTENT_TYPE);
        }
        for h in &self.allow_headers {
            let n = HeaderName::from_bytes(h.as_bytes())
                .map_err(|_| CorsError::InvalidHeader(h.clone()))?;
            if !headers.contains(&n) {
                headers.push(n);
            }
        }
        let expose = self
            .expose_headers
            .iter()
            .map(|h| {
                HeaderName::from_bytes(h.as_bytes())
                    .map_err(|_| CorsError::InvalidHeader(h.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut layer = CorsLayer::new()
            .allow_origin(origin)
            .allow_methods(methods)
            .allow_headers(headers)
            .expose_headers(expose)
            .allow_credentials(self.credentials);
        if let Some(age) = self.max_age {
            layer = layer.max_age(age);
        }
        Ok(layer)
    }

    /// Trusted origins for cross-site request protection: the listed CORS origins.
    pub(crate) fn trusted_origins(&self) -> Vec<String> {
        self.allowed_origins().unwrap_or_default()
    }
}

/// `scheme://host[:port]`, lower-cased, default port dropped, or why not.
fn normalize_origin(origin: &str) -> Result<String, CorsError> {
    let bad = |why| CorsError::NotAbsolute {
        origin: origin.to_string(),
        why,
    };
    if origin.eq_ignore_ascii_case("null") {
        return Err(CorsError::NullOrigin);
    }
    if origin == "*" {
        return Err(bad("use Cors::any() to allow every origin"));
    }
    let uri: Uri = origin
        .parse()
        .map_err(|_| bad("not a URL; write `https://host[:port]`"))?;
    let scheme = uri
        .scheme_str()
        .ok_or_else(|| bad("no scheme; write `https://host[:port]`"))?
        .to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return Err(bad("only http and https origins can be listed"));
    }
    let authority = uri.authority().ok_or_else(|| bad("no host"))?;
    if authority.as_str().contains('@') {
        return Err(bad("an origin has no user information"));
    }
    if authority.host().contains('*') {
        return Err(bad("wildcards are not allowed: list each origin"));
    }
    let path_ok = matches!(uri.path(), "" | "/") && uri.query().is_none();
    if !path_ok {
        return Err(bad(
            "an origin has no path or query: write `https://host[:port]`",
        ));
    }
    // `http` reads a port it cannot parse as no port (`:99999` would become the default
    // port) and `http://:80` as an empty host.
    if authority.host().is_empty() {
        return Err(bad("no host"));
    }
    let port_ok = match authority.as_str()[authority.host().len()..].strip_prefix(':') {
        None => true,
        Some(p) => {
            p.is_empty() || (p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok())
        }
    };
    if !port_ok {
        return Err(bad("the port is not a number from 0 to 65535"));
    }
    let host = authority.host().to_ascii_lowercase();
    let default_port = if scheme == "https" { 443 } else { 80 };
    Ok(match authority.port_u16() {
        Some(p) if p != default_port => format!("{scheme}://{host}:{p}"),
        _ => format!("{scheme}://{host}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalized() {
        let c = Cors::origins([
            "HTTPS://App.Example.com/",
            "http://localhost:5173",
            "https://a.example:443",
        ]);
        assert_eq!(
            c.allowed_origins().unwrap(),
            [
                "https://app.example.com",
                "http://localhost:5173",
                "https://a.example"
            ]
        );
    }

    #[test]
    fn insecure_configurations_are_refused() {
        assert_eq!(
            Cors::any().credentials(true).validate(),
            Err(CorsError::WildcardWithCredentials)
        );
        assert_eq!(
            Cors::origins(["*"]).credentials(true).validate(),
            Err(CorsError::WildcardWithCredentials)
        );
        assert_eq!(
            Cors::origins(["null"]).validate(),
            Err(CorsError::NullOrigin)
        );
        assert_eq!(
            Cors::origins(Vec::<String>::new()).validate(),
            Err(CorsError::Empty)
        );
        for bad in [
            "example.com",
            "//example.com",
            "ftp://example.com",
            "https://example.com/app",
            "https://example.com?x=1",
            "https://user@example.com",
            "https://*.example.com",
            "file:///etc/passwd",
        ] {
            assert!(
                matches!(
                    Cors::origins([bad]).validate(),
                    Err(CorsError::NotAbsolute { .. })
                ),
                "{bad}"
            );
        }
        // A port that is not a number from 0 to 65535 is a mistake, not the default port
        // (found by fuzz/fuzz_targets/origin.rs: `:99999` was dropped, trusting
        // `https://example.com` itself).
        // Nor is an origin without a host (`http://:80` normalized to `http://`).
        for bad in [
            "https://example.com:99999",
            "http://[::1]:65536",
            "http://:80",
            "http://:[a:b::]:80",
        ] {
            assert!(
                matches!(
                    Cors::origins([bad]).validate(),
                    Err(CorsError::NotAbsolute { .. })
                ),
                "{bad}"
            );
        }
        assert!(Cors::any().validate().is_ok());
        assert!(Cors::parse("*").credentials(false).validate().is_ok());
        assert!(
            Cors::origins(["https://a.example"])
                .allow_headers(["bad header"])
                .validate()
                .is_err()
        );
    }
}
