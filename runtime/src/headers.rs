//! Security headers on every response, from a preset; every loosening is a call.
//!
//! ```
//! use shieldwall_runtime::headers::SecurityHeaders;
//!
//! // The default: `api`. A page-serving app picks `relaxed` and adjusts explicitly.
//! let headers = SecurityHeaders::relaxed()
//!     .header("content-security-policy", "default-src 'self'; img-src 'self' https://img.example.com")
//!     .hsts_preload();
//! assert!(headers.validate().is_ok());
//! ```
//!
//! | header | `api` (default) | `strict` | `relaxed` |
//! |---|---|---|---|
//! | `Strict-Transport-Security` (HTTPS only) | `max-age=31536000; includeSubDomains` | same | same |
//! | `Content-Security-Policy` | `default-src 'none'; frame-ancestors 'none'` | `default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'` | `default-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'` |
//! | `X-Content-Type-Options` | `nosniff` | `nosniff` | `nosniff` |
//! | `X-Frame-Options` | `DENY` | `DENY` | `SAMEORIGIN` |
//! | `Referrer-Policy` | `no-referrer` | `no-referrer` | `strict-origin-when-cross-origin` |
//! | `Cross-Origin-Resource-Policy` | `same-origin` | `same-origin` | `same-site` |
//! | `Permissions-Policy` | — | every powerful feature off | same as `strict` |
//! | `Cross-Origin-Opener-Policy` | — | `same-origin` | `same-origin` |
//! | `Cross-Origin-Embedder-Policy` | — | `require-corp` | — |
//! | `X-Permitted-Cross-Domain-Policies` | — | `none` | — |
//! | `Cache-Control: no-store` | responses to requests with credentials | every response | credentials |
//!
//! `api` is the set the OWASP REST Security Cheat Sheet gives for API responses: with
//! `nosniff` and a JSON content type a browser never runs a response as a document, and
//! `default-src 'none'` would stop everything if it did. Policies that only govern HTML
//! documents (`Permissions-Policy`, `Cross-Origin-Opener-Policy`, `base-uri`,
//! `form-action`) add about 400 bytes to every response and protect nothing there; they
//! are in `strict` and in `relaxed`, the preset for apps that serve pages.
//!
//! HSTS is sent only on responses that travel over TLS (the server marks each connection)
//! — or, behind a trusted TLS-terminating proxy, when the proxy says the client is on
//! HTTPS ([`crate::client_ip::ClientScheme`]) — never over plain HTTP where it means
//! nothing and could be injected. `preload` is opt-in ([`SecurityHeaders::hsts_preload`]):
//! it is hard to undo.
//!
//! A request "carries credentials" when it has an `Authorization` or `Cookie` header, or an
//! API-key header (the one named with
//! [`ApiKeys::header`](crate::auth::api_key::ApiKeys::header), and `X-API-Key`): its
//! response is made `Cache-Control: no-store`, replacing what the handler set, so no shared
//! or browser cache keeps a personal answer. `Server` and `X-Powered-By` are removed from
//! every response.
//!
//! The preset headers replace what a handler set; to change one for the whole app, call
//! [`SecurityHeaders::header`] (or [`SecurityHeaders::without`]) on the builder — the one
//! place where policy is declared.

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};

/// Why a security-header configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeadersError {
    /// A header name or value is not valid HTTP.
    #[error("security header {name:?}: {why}")]
    Invalid {
        /// The header name as given.
        name: String,
        /// What is wrong.
        why: &'static str,
    },
    /// HSTS preload needs a max-age of at least one year and `includeSubDomains`.
    #[error(
        "HSTS preload needs max-age >= 31536000 and includeSubDomains (https://hstspreload.org)"
    )]
    PreloadNeedsLongMaxAge,
}

/// A named preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// Maximal lockdown: `api` plus COEP, no-store on every response.
    Strict,
    /// For JSON APIs (the default).
    Api,
    /// For apps that also serve pages and assets to browsers from their own origin.
    Relaxed,
}

impl std::str::FromStr for Preset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "strict" => Ok(Self::Strict),
            "api" => Ok(Self::Api),
            "relaxed" => Ok(Self::Relaxed),
            other => Err(format!("{other:?}: write `strict`, `api` or `relaxed`")),
        }
    }
}

/// One year, the HSTS max-age browsers' preload lists ask for.
pub const ONE_YEAR_SECS: u64 = 31_536_000;

const PERMISSIONS: &str = "accelerometer=(), autoplay=(), camera=(), display-capture=(), \
     encrypted-media=(), fullscreen=(), geolocation=(), gyroscope=(), magnetometer=(), \
     microphone=(), midi=(), payment=(), picture-in-picture=(), publickey-credentials-get=(), \
     screen-wake-lock=(), sync-xhr=(), usb=(), xr-spatial-tracking=()";

static X_POWERED_BY: HeaderName = HeaderName::from_static("x-powered-by");
static X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// The headers set on every response. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct SecurityHeaders {
    preset: Preset,
    set: Vec<(HeaderName, HeaderValue)>,
    hsts_max_age: Option<u64>,
    hsts_subdomains: bool,
    hsts_preload: bool,
    no_store_always: bool,
    errors: Vec<HeadersError>,
}

impl Default for SecurityHeaders {
    fn default() -> Self {
        Self::api()
    }
}

impl SecurityHeaders {
    /// The preset for JSON APIs (the default).
    pub fn api() -> Self {
        Self::preset(Preset::Api)
    }

    /// `api` plus `Cross-Origin-Embedder-Policy: require-corp`,
    /// `X-Permitted-Cross-Domain-Policies: none` and `no-store` on every response.
    pub fn strict() -> Self {
        Self::preset(Preset::Strict)
    }

    /// For same-origin pages and assets: `'self'` sources, `SAMEORIGIN` framing.
    pub fn relaxed() -> Self {
        Self::preset(Preset::Relaxed)
    }

    /// The headers of a preset.
    pub fn preset(preset: Preset) -> Self {
        let s = HeaderValue::from_static;
        let mut set = vec![(header::X_CONTENT_TYPE_OPTIONS, s("nosniff"))];
        match preset {
            Preset::Api => {
                // The OWASP REST set: what protects a JSON response. Headers that only
                // govern HTML documents are left to `strict` and `relaxed`.
                set.push((
                    header::CONTENT_SECURITY_POLICY,
                    s("default-src 'none'; frame-ancestors 'none'"),
                ));
                set.push((header::X_FRAME_OPTIONS, s("DENY")));
                set.push((header::REFERRER_POLICY, s("no-referrer")));
                set.push((
                    HeaderName::from_static("cross-origin-resource-policy"),
                    s("same-origin"),
                ));
            }
            Preset::Strict => {
                set.push((
                    header::CONTENT_SECURITY_POLICY,
                    s("default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
                ));
                set.push((header::X_FRAME_OPTIONS, s("DENY")));
                set.push((header::REFERRER_POLICY, s("no-referrer")));
                set.push((
                    HeaderName::from_static("cross-origin-resource-policy"),
                    s("same-origin"),
                ));
            }
            Preset::Relaxed => {
                set.push((
                    header::CONTENT_SECURITY_POLICY,
                    s("default-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'"),
                ));
                set.push((header::X_FRAME_OPTIONS, s("SAMEORIGIN")));
                set.push((
                    header::REFERRER_POLICY,
                    s("strict-origin-when-cross-origin"),
                ));
                set.push((
                    HeaderName::from_static("cross-origin-resource-policy"),
                    s("same-site"),
                ));
            }
        }
        if preset != Preset::Api {
            // Document-only policies: powerful features off, no shared browsing context.
            set.push((
                HeaderName::from_static("permissions-policy"),
                s(PERMISSIONS),
            ));
            set.push((
                HeaderName::from_static("cross-origin-opener-policy"),
                s("same-origin"),
            ));
        }
        if preset == Preset::Strict {
            set.push((
                HeaderName::from_static("cross-origin-embedder-policy"),
                s("require-corp"),
            ));
            set.push((
                HeaderName::from_static("x-permitted-cross-domain-policies"),
                s("none"),
            ));
        }
        Self {
            preset,
            set,
            hsts_max_age: Some(ONE_YEAR_SECS),
            hsts_subdomains: true,
            hsts_preload: false,
            no_store_always: preset == Preset::Strict,
            errors: Vec::new(),
        }
    }

    /// Which preset this started from.
    pub fn preset_name(&self) -> Preset {
        self.preset
    }

    /// Set (or replace) one header on every response, e.g. a site-specific
    /// `Content-Security-Policy`. An invalid name or value is reported by `build()`.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let n = match HeaderName::from_bytes(name.as_bytes()) {
            Ok(n) => n,
            Err(_) => {
                self.errors.push(HeadersError::Invalid {
                    name: name.into(),
                    why: "not a valid header name",
                });
                return self;
            }
        };
        let v = match HeaderValue::from_str(value) {
            Ok(v) => v,
            Err(_) => {
                self.errors.push(HeadersError::Invalid {
                    name: name.into(),
                    why: "not a valid header value",
                });
                return self;
            }
        };
        self.set.retain(|(k, _)| k != n);
        self.set.push((n, v));
        self
    }

    /// Stop sending one of the preset's headers (an explicit loosening).
    pub fn without(mut self, name: &str) -> Self {
        self.set
            .retain(|(k, _)| !k.as_str().eq_ignore_ascii_case(name));
        self
    }

    /// HSTS max-age in seconds (default one year).
    pub fn hsts_max_age(mut self, secs: u64) -> Self {
        self.hsts_max_age = Some(secs);
        self
    }

    /// Leave `includeSubDomains` out of HSTS (it is in by default).
    pub fn hsts_without_subdomains(mut self) -> Self {
        self.hsts_subdomains = false;
        self
    }

    /// Add `preload` to HSTS (opt-in: submitting a domain to the browsers' preload lists is
    /// hard to undo). Needs a max-age of a year or more and `includeSubDomains`.
    pub fn hsts_preload(mut self) -> Self {
        self.hsts_preload = true;
        self
    }

    /// Send no HSTS at all (for an app whose TLS is terminated and HSTS set by a proxy).
    pub fn without_hsts(mut self) -> Self {
        self.hsts_max_age = None;
        self
    }

    /// Check the configuration; `build()` calls this.
    pub fn validate(&self) -> Result<(), HeadersError> {
        if let Some(e) = self.errors.first() {
            return Err(e.clone());
        }
        if self.hsts_preload
            && (!self.hsts_subdomains || self.hsts_max_age.is_none_or(|a| a < ONE_YEAR_SECS))
        {
            return Err(HeadersError::PreloadNeedsLongMaxAge);
        }
        Ok(())
    }

    /// The `Strict-Transport-Security` value, if HSTS is on.
    pub fn hsts_value(&self) -> Option<HeaderValue> {
        let age = self.hsts_max_age?;
        let mut v = format!("max-age={age}");
        if self.hsts_subdomains {
            v.push_str("; includeSubDomains");
        }
        if self.hsts_preload {
            v.push_str("; preload");
        }
        HeaderValue::from_str(&v).ok()
    }

    /// Compile into what the per-response code applies.
    pub(crate) fn compile(&self) -> CompiledHeaders {
        CompiledHeaders {
            set: self.set.clone(),
            hsts: self.hsts_value(),
            no_store_always: self.no_store_always,
        }
    }
}

/// The response-side form of [`SecurityHeaders`].
#[derive(Debug, Clone)]
pub(crate) struct CompiledHeaders {
    set: Vec<(HeaderName, HeaderValue)>,
    hsts: Option<HeaderValue>,
    no_store_always: bool,
}

/// Whether a request carries credentials (its response must not be stored): an
/// `Authorization` or `Cookie` header, the header API keys are read from (`key_header`,
/// when API keys are configured), or `X-API-Key` (the default name, counted always: a
/// stricter cache decision costs nothing).
pub(crate) fn carries_credentials(req: &HeaderMap, key_header: Option<&HeaderName>) -> bool {
    req.contains_key(header::AUTHORIZATION)
        || req.contains_key(header::COOKIE)
        || req.contains_key(&X_API_KEY)
        || key_header.is_some_and(|k| req.contains_key(k))
}

impl CompiledHeaders {
    /// Stamp a response. `tls`: it travels over TLS; `credentialed`: the request carried
    /// credentials.
    pub(crate) fn apply(&self, h: &mut HeaderMap, tls: bool, credentialed: bool) {
        // One allocation for all of them instead of the map doubling as they arrive.
        h.reserve(self.set.len() + 2);
        for (k, v) in &self.set {
            h.insert(k.clone(), v.clone());
        }
        // Headers that must not leave: one pass over the (few) names instead of a hashed
        // lookup for each.
        // (HSTS means nothing over plain HTTP and could be injected there.)
        let unwanted = |k: &HeaderName| {
            k == header::SERVER
                || k == X_POWERED_BY
                || (!tls && k == header::STRICT_TRANSPORT_SECURITY)
        };
        if h.keys().any(unwanted) {
            h.remove(header::SERVER);
            h.remove(&X_POWERED_BY);
            if !tls {
                h.remove(header::STRICT_TRANSPORT_SECURITY);
            }
        }
        if tls && let Some(v) = &self.hsts {
            h.insert(header::STRICT_TRANSPORT_SECURITY, v.clone());
        }
        if credentialed || self.no_store_always {
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamped(sh: &SecurityHeaders, tls: bool, cred: bool) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::SERVER, HeaderValue::from_static("hyper/1"));
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=600"),
        );
        sh.compile().apply(&mut h, tls, cred);
        h
    }

    #[test]
    fn api_default() {
        let h = stamped(&SecurityHeaders::default(), true, false);
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        assert_eq!(
            h["strict-transport-security"],
            "max-age=31536000; includeSubDomains"
        );
        assert_eq!(
            h["content-security-policy"],
            "default-src 'none'; frame-ancestors 'none'"
        );
        assert_eq!(h["cross-origin-resource-policy"], "same-origin");
        assert!(!h.contains_key("permissions-policy"), "document-only");
        assert!(
            !h.contains_key("cross-origin-opener-policy"),
            "document-only"
        );
        assert!(!h.contains_key("server"));
        assert_eq!(
            h["cache-control"], "public, max-age=600",
            "anonymous: handler's choice"
        );
    }

    #[test]
    fn hsts_only_over_tls() {
        let h = stamped(&SecurityHeaders::default(), false, false);
        assert!(!h.contains_key("strict-transport-security"));
    }

    #[test]
    fn credentialed_responses_are_not_stored() {
        let h = stamped(&SecurityHeaders::default(), false, true);
        assert_eq!(h["cache-control"], "no-store");
        let mut req = HeaderMap::new();
        assert!(!carries_credentials(&req, None));
        req.insert(header::COOKIE, HeaderValue::from_static("sid=1"));
        assert!(carries_credentials(&req, None));
        // A custom API-key header counts once it is the configured one.
        let custom = HeaderName::from_static("x-service-key");
        let mut req = HeaderMap::new();
        req.insert(custom.clone(), HeaderValue::from_static("swk_a_b"));
        assert!(!carries_credentials(&req, None));
        assert!(carries_credentials(&req, Some(&custom)));
    }

    #[test]
    fn presets_differ_where_documented() {
        let s = stamped(&SecurityHeaders::strict(), true, false);
        assert_eq!(s["cross-origin-embedder-policy"], "require-corp");
        assert_eq!(s["cache-control"], "no-store");
        let r = stamped(&SecurityHeaders::relaxed(), true, false);
        assert_eq!(r["x-frame-options"], "SAMEORIGIN");
        assert!(
            r["content-security-policy"]
                .to_str()
                .unwrap()
                .starts_with("default-src 'self'")
        );
        assert_eq!(r["x-content-type-options"], "nosniff");
        for h in [&s, &r] {
            assert!(
                h["permissions-policy"]
                    .to_str()
                    .unwrap()
                    .contains("camera=()")
            );
            assert_eq!(h["cross-origin-opener-policy"], "same-origin");
        }
        assert!(
            s["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("form-action 'none'")
        );
    }

    #[test]
    fn loosening_is_explicit_and_checked() {
        let h = SecurityHeaders::api()
            .header("content-security-policy", "default-src 'self'")
            .without("x-frame-options");
        let m = stamped(&h, true, false);
        assert_eq!(m["content-security-policy"], "default-src 'self'");
        assert!(!m.contains_key("x-frame-options"));
        assert!(
            SecurityHeaders::api()
                .header("bad name", "x")
                .validate()
                .is_err()
        );
        assert!(
            SecurityHeaders::api()
                .header("x-a", "a\nb")
                .validate()
                .is_err()
        );
        assert_eq!(
            SecurityHeaders::api()
                .hsts_max_age(60)
                .hsts_preload()
                .validate(),
            Err(HeadersError::PreloadNeedsLongMaxAge)
        );
        let p = SecurityHeaders::api().hsts_preload();
        assert_eq!(
            p.hsts_value().unwrap(),
            "max-age=31536000; includeSubDomains; preload"
        );
        assert!("STRICT".parse::<Preset>().is_ok() && "lax".parse::<Preset>().is_err());
    }
}
