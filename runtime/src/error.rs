//! The one error contract: every rejection is `application/problem+json` (RFC 9457).
//!
//! ```
//! use shieldwall_runtime::error::Problem;
//! use axum::http::StatusCode;
//!
//! let p = Problem::new(StatusCode::NOT_FOUND, "not-found", "Not Found")
//!     .with_detail("No user with that id.");
//! assert_eq!(p.status(), StatusCode::NOT_FOUND);
//! ```
//!
//! Rejections produced by shieldwall itself are [`Rejection`] values; they render through
//! [`Problem`] in one place ([`Rejection::into_problem`]). Bodies never carry token contents,
//! internal error text or stack traces: the `detail` of a shieldwall rejection is always one
//! of a fixed set of sentences, and field errors carry only the field path, the validator
//! code and the validator's own message.

use std::borrow::Cow;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The media type of every rejection.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document, rendered as `application/problem+json`.
#[derive(Debug, Clone)]
pub struct Problem {
    status: StatusCode,
    kind: Cow<'static, str>,
    title: Cow<'static, str>,
    detail: Option<Cow<'static, str>>,
    instance: Option<Cow<'static, str>>,
    errors: Vec<FieldError>,
    headers: HeaderMap,
}

/// One failing field of a 422 response.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field: `email`, `address.city`, `items[2].name`; empty for the whole value.
    pub field: String,
    /// Machine-readable code (`length`, `email`, `range`, `type`, `missing`, `unknown`…).
    pub code: String,
    /// Human-readable message.
    pub message: String,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    title: &'a str,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    instance: Option<&'a str>,
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    errors: &'a [FieldError],
}

/// Prefix of every problem `type` that shieldwall emits.
pub const PROBLEM_TYPE_PREFIX: &str = "urn:shieldwall:problem:";

impl Problem {
    /// A problem with the given status, type slug and title. The slug becomes
    /// `urn:shieldwall:problem:<slug>` unless it already is a URI (contains `:`).
    pub fn new(
        status: StatusCode,
        kind: impl Into<Cow<'static, str>>,
        title: impl Into<Cow<'static, str>>,
    ) -> Self {
        let kind = kind.into();
        let kind = if kind.contains(':') {
            kind
        } else {
            Cow::Owned(format!("{PROBLEM_TYPE_PREFIX}{kind}"))
        };
        Self {
            status,
            kind,
            title: title.into(),
            detail: None,
            instance: None,
            errors: Vec::new(),
            headers: HeaderMap::new(),
        }
    }

    /// A problem for a bare status: its type is the status slug, its title the reason phrase.
    pub fn from_status(status: StatusCode) -> Self {
        let title = status.canonical_reason().unwrap_or("Error");
        let slug = match status.as_u16() {
            400 => "bad-request",
            401 => "unauthenticated",
            403 => "forbidden",
            404 => "not-found",
            405 => "method-not-allowed",
            413 => "payload-too-large",
            415 => "unsupported-media-type",
            422 => "invalid",
            429 => "rate-limited",
            503 => "unavailable",
            s if s >= 500 => "internal",
            _ => "error",
        };
        Self::new(status, slug, title)
    }

    /// Set the human-readable explanation.
    pub fn with_detail(mut self, detail: impl Into<Cow<'static, str>>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Set the RFC 9457 `instance`: a URI naming this occurrence, such as
    /// `urn:uuid:<request id>` for a caught panic.
    pub fn with_instance(mut self, instance: impl Into<Cow<'static, str>>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    /// Attach per-field errors (422).
    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    /// Add a response header.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The problem `type` URI.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The per-field errors.
    pub fn errors(&self) -> &[FieldError] {
        &self.errors
    }

    fn body(&self) -> Vec<u8> {
        let body = Body {
            kind: &self.kind,
            title: &self.title,
            status: self.status.as_u16(),
            detail: self.detail.as_deref(),
            instance: self.instance.as_deref(),
            errors: &self.errors,
        };
        // Serialising this plain struct of strings cannot fail.
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = self.body();
        let mut res = (self.status, body).into_response();
        let h = res.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        for (name, value) in self.headers {
            if let Some(name) = name {
                h.append(name, value);
            }
        }
        res
    }
}

/// Why shieldwall refused a request. Rendered by [`Rejection::into_problem`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Rejection {
    /// No credentials were presented (401, `WWW-Authenticate: Bearer realm=…`).
    MissingCredentials,
    /// The credentials are bad, expired or revoked (401, `error="invalid_token"`).
    InvalidToken,
    /// The credentials are malformed (400, `error="invalid_request"`).
    MalformedCredentials(&'static str),
    /// Authenticated but not allowed (403). `scopes` lists the required scopes, if any.
    Forbidden {
        /// Space-separated required scopes, for `error="insufficient_scope"`.
        scopes: Option<std::sync::Arc<str>>,
    },
    /// Input failed validation (422).
    Invalid(Vec<FieldError>),
    /// Input could not be parsed (400).
    Unparseable(&'static str),
    /// The body's media type is not accepted (415).
    UnsupportedMediaType(&'static str),
    /// The body is larger than the route's limit (413).
    PayloadTooLarge,
    /// Too many requests (429). Headers carry `Retry-After` and the RateLimit fields.
    RateLimited {
        /// Seconds until a request may succeed.
        retry_after: u64,
    },
    /// A server-side failure; the reason is logged, never sent (500).
    Internal,
    /// A dependency is down and the route fails closed (503).
    Unavailable,
}

impl Rejection {
    /// A fixed, loggable reason (never carries request data).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingCredentials => "missing credentials",
            Self::InvalidToken => "invalid credentials",
            Self::MalformedCredentials(why)
            | Self::Unparseable(why)
            | Self::UnsupportedMediaType(why) => why,
            Self::Forbidden { .. } => "not allowed",
            Self::Invalid(_) => "validation failed",
            Self::PayloadTooLarge => "body too large",
            Self::RateLimited { .. } => "rate limited",
            Self::Internal => "internal error",
            Self::Unavailable => "dependency unavailable",
        }
    }

    /// The HTTP status of this rejection.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingCredentials | Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::MalformedCredentials(_) | Self::Unparseable(_) => StatusCode::BAD_REQUEST,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Render as a problem document, with the RFC 6750 challenge for `realm`.
    pub fn into_problem(self, realm: &str) -> Problem {
        let status = self.status();
        match self {
            Self::MissingCredentials => Problem::new(status, "unauthenticated", "Unauthorized")
                .with_detail("This route requires credentials.")
                .with_header(header::WWW_AUTHENTICATE, challenge(realm, "", None)),
            Self::InvalidToken => Problem::new(status, "invalid-token", "Unauthorized")
                .with_detail("The credentials are invalid, expired or revoked.")
                .with_header(
                    header::WWW_AUTHENTICATE,
                    challenge(realm, "invalid_token", Some("The access token is invalid")),
                ),
            Self::MalformedCredentials(why) => {
                Problem::new(status, "invalid-request", "Bad Request")
                    .with_detail(why)
                    .with_header(
                        header::WWW_AUTHENTICATE,
                        challenge(realm, "invalid_request", None),
                    )
            }
            Self::Forbidden { scopes } => {
                let p = Problem::new(status, "forbidden", "Forbidden")
                    .with_detail("The credentials do not allow this request.");
                match scopes {
                    Some(scopes) => {
                        p.with_header(header::WWW_AUTHENTICATE, scope_challenge(realm, &scopes))
                    }
                    None => p,
                }
            }
            Self::Invalid(errors) => Problem::new(status, "invalid", "Unprocessable Content")
                .with_detail("The request failed validation.")
                .with_errors(errors),
            Self::Unparseable(why) => {
                Problem::new(status, "unparseable", "Bad Request").with_detail(why)
            }
            Self::UnsupportedMediaType(why) => {
                Problem::new(status, "unsupported-media-type", "Unsupported Media Type")
                    .with_detail(why)
            }
            Self::PayloadTooLarge => Problem::new(status, "payload-too-large", "Content Too Large")
                .with_detail("The request body is larger than this route accepts."),
            Self::RateLimited { retry_after } => {
                let mut buf = itoa::Buffer::new();
                Problem::new(status, "rate-limited", "Too Many Requests")
                    .with_detail("Too many requests; retry later.")
                    .with_header(
                        header::RETRY_AFTER,
                        HeaderValue::from_str(buf.format(retry_after))
                            .unwrap_or(HeaderValue::from_static("1")),
                    )
            }
            Self::Internal => Problem::new(status, "internal", "Internal Server Error")
                .with_detail("The server could not handle this request."),
            Self::Unavailable => Problem::new(status, "unavailable", "Service Unavailable")
                .with_detail("A dependency is unavailable; retry later."),
        }
    }
}

fn challenge(realm: &str, error: &str, description: Option<&str>) -> HeaderValue {
    let mut s = format!("Bearer realm=\"{realm}\"");
    if !error.is_empty() {
        s.push_str(", error=\"");
        s.push_str(error);
        s.push('"');
    }
    if let Some(d) = description {
        s.push_str(", error_description=\"");
        s.push_str(d);
        s.push('"');
    }
    HeaderValue::from_str(&s).unwrap_or(HeaderValue::from_static("Bearer"))
}

fn scope_challenge(realm: &str, scopes: &str) -> HeaderValue {
    let s = format!("Bearer realm=\"{realm}\", error=\"insufficient_scope\", scope=\"{scopes}\"");
    HeaderValue::from_str(&s).unwrap_or(HeaderValue::from_static("Bearer"))
}

/// Keep a realm usable inside a quoted header parameter.
pub(crate) fn sanitize_realm(realm: &str) -> String {
    realm
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\' || *c == ' ')
        .collect()
}

/// Response extension marking an error body whose format a standard fixes (the OAuth2
/// token endpoint's RFC 6749 §5.2 JSON): [`conform`] leaves it as it is.
#[derive(Debug, Clone, Copy)]
pub struct OwnFormat;

/// Make any error response follow the contract: a response that is already
/// `application/problem+json` passes through; any other 4xx/5xx is replaced by a problem
/// document with the same status and a generic body (its original text is not sent, since
/// it may carry internal detail). Non-error responses pass through untouched.
pub fn conform(res: Response) -> Response {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error())
        || res.extensions().get::<OwnFormat>().is_some()
    {
        return res;
    }
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if is_problem {
        return res;
    }
    let (parts, _body) = res.into_parts();
    let mut out = Problem::from_status(status).into_response();
    // Keep protocol headers that belong to the status (Allow, WWW-Authenticate, Retry-After).
    for name in [header::ALLOW, header::WWW_AUTHENTICATE, header::RETRY_AFTER] {
        if let Some(v) = parts.headers.get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_json(res: Response) -> serde_json::Value {
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn problem_renders_rfc9457() {
        let res = Rejection::MissingCredentials
            .into_problem("api")
            .into_response();
        assert_eq!(res.status(), 401);
        assert_eq!(res.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        assert_eq!(
            res.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"api\""
        );
        let v = body_json(res).await;
        assert_eq!(v["type"], "urn:shieldwall:problem:unauthenticated");
        assert_eq!(v["status"], 401);
        assert!(v.get("errors").is_none());
    }

    #[tokio::test]
    async fn conform_replaces_plain_errors() {
        let res = (StatusCode::INTERNAL_SERVER_ERROR, "db password is hunter2").into_response();
        let res = conform(res);
        assert_eq!(res.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        let v = body_json(res).await;
        assert_eq!(v["status"], 500);
        assert!(!v.to_string().contains("hunter2"));
    }

    #[test]
    fn realm_is_sanitized() {
        assert_eq!(sanitize_realm("a\"b\\c\r\nd e"), "abcd e");
    }
}
