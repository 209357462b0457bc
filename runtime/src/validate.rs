//! Input extraction and validation for `Json`, `Query`, `Form` and `Path` arguments.
//!
//! A `#[secure]` route reads these arguments itself (after the policy has passed), so that
//! every failure follows one contract:
//!
//! | input | status |
//! |---|---|
//! | body over the route's `body_limit` (default 64 KiB) | 413 |
//! | `Json` body without a JSON content type | 415 |
//! | JSON that is not syntactically valid | 400 |
//! | JSON of the wrong shape (missing, unknown or mistyped field) | 422, field path in `errors` |
//! | query string or form that does not fit the type | 422, field path in `errors` |
//! | a value failing its `#[validate(...)]` rules | 422, one entry per failing rule |
//!
//! What is validated is decided by the argument's *type*, never by how it is spelled: a
//! rename (`use axum::Json as Body`), a type alias (`type Body<T> = Json<T>`) or a
//! re-export of `Json`, `Form`, `Query` or `Path` is read by these readers and validated
//! exactly like the original, and its content must implement `Validate` (a compile error
//! at the argument otherwise) unless it is plain data (strings, numbers, ids, and options,
//! lists, maps and tuples of them). The generated code picks this by method resolution on
//! the concrete type at compile time; nothing of it runs per request but the chosen call.
//!
//! ```
//! use shieldwall_runtime::validate::field_errors;
//! use validator::Validate;
//!
//! #[derive(Validate)]
//! struct NewUser { #[validate(length(min = 1, max = 50))] username: String }
//!
//! let errs = NewUser { username: String::new() }.validate().unwrap_err();
//! let fields = field_errors(&errs);
//! assert_eq!(fields[0].field, "username");
//! assert_eq!(fields[0].code, "length");
//! ```

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, header, request::Parts};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use serde::de::DeserializeOwned;
use validator::{Validate, ValidationErrors, ValidationErrorsKind};

use crate::error::{FieldError, Rejection};

/// Default request body cap: 64 KiB.
pub const DEFAULT_BODY_LIMIT: u64 = 64 * 1024;

/// Marker trait for validated argument types; implemented for every [`Validate`] type.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not implement `Validate`, and #[secure] validates `Json`, `Query`, `Form` and `Path` arguments by default",
    label = "this type must `#[derive(Validate)]`",
    note = "add `#[derive(Validate)]` (from `shieldwall::prelude`) with `#[validate(...)]` rules to `{Self}`, or opt out with `validate = false` in #[secure(...)]"
)]
pub trait Validated {
    /// Run the validation rules.
    fn run_validation(&self) -> Result<(), ValidationErrors>;
}

impl<T: Validate + ?Sized> Validated for T {
    fn run_validation(&self) -> Result<(), ValidationErrors> {
        self.validate()
    }
}

/// Validate a value, mapping failures to a 422 rejection.
pub fn validate<T: Validated + ?Sized>(value: &T) -> Result<(), Rejection> {
    value
        .run_validation()
        .map_err(|e| Rejection::Invalid(field_errors(&e)))
}

/// Flatten validator's nested errors into one entry per failing rule, sorted by field.
pub fn field_errors(errors: &ValidationErrors) -> Vec<FieldError> {
    let mut out = Vec::new();
    flatten(errors, "", &mut out);
    out.sort_by(|a, b| a.field.cmp(&b.field).then_with(|| a.code.cmp(&b.code)));
    out
}

fn flatten(errors: &ValidationErrors, prefix: &str, out: &mut Vec<FieldError>) {
    for (field, kind) in errors.errors() {
        let path = if field == "__all__" {
            prefix.to_string()
        } else if prefix.is_empty() {
            field.to_string()
        } else {
            format!("{prefix}.{field}")
        };
        match kind {
            ValidationErrorsKind::Field(errs) => {
                for e in errs {
                    out.push(FieldError {
                        field: path.clone(),
                        code: e.code.to_string(),
                        message: e
                            .message
                            .as_ref()
                            .map(|m| m.to_string())
                            .unwrap_or_else(|| default_message(&e.code, &e.params)),
                    });
                }
            }
            ValidationErrorsKind::Struct(inner) => flatten(inner, &path, out),
            ValidationErrorsKind::List(items) => {
                for (i, inner) in items {
                    flatten(inner, &format!("{path}[{i}]"), out);
                }
            }
        }
    }
}

fn default_message(
    code: &str,
    params: &std::collections::HashMap<std::borrow::Cow<'static, str>, serde_json::Value>,
) -> String {
    let p = |k: &str| params.get(k).map(|v| v.to_string());
    match code {
        "length" => match (p("min"), p("max"), p("equal")) {
            (_, _, Some(eq)) => format!("must be exactly {eq} characters long"),
            (Some(min), Some(max), _) => format!("length must be between {min} and {max}"),
            (Some(min), None, _) => format!("length must be at least {min}"),
            (None, Some(max), _) => format!("length must be at most {max}"),
            _ => "has an invalid length".into(),
        },
        "range" => match (p("min"), p("max")) {
            (Some(min), Some(max)) => format!("must be between {min} and {max}"),
            (Some(min), None) => format!("must be at least {min}"),
            (None, Some(max)) => format!("must be at most {max}"),
            _ => "is out of range".into(),
        },
        "email" => "must be a valid email address".into(),
        "url" => "must be a valid URL".into(),
        "required" => "is required".into(),
        "regex" => "has an invalid format".into(),
        "must_match" => "does not match".into(),
        "contains" => "does not contain the required text".into(),
        other => format!("failed the `{other}` rule"),
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Refuse early when the declared length exceeds the limit, and cap the body stream.
pub fn limit_body(req: Request, limit: u64) -> Result<Request, Rejection> {
    if content_length(req.headers()).is_some_and(|len| len > limit) {
        return Err(Rejection::PayloadTooLarge);
    }
    let (parts, body) = req.into_parts();
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    Ok(Request::from_parts(
        parts,
        Body::new(Limited::new(body, limit)),
    ))
}

async fn read_body(req: Request, limit: u64) -> Result<(Parts, Bytes), Rejection> {
    if content_length(req.headers()).is_some_and(|len| len > limit) {
        return Err(Rejection::PayloadTooLarge);
    }
    let (parts, body) = req.into_parts();
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok((parts, collected.to_bytes())),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(Rejection::PayloadTooLarge),
        Err(_) => Err(Rejection::Unparseable(
            "The request body could not be read.",
        )),
    }
}

/// The request's one `Content-Type`: two are refused like two `Host`s (a proxy that reads
/// the other one would see another body format).
fn content_type(headers: &HeaderMap) -> Option<&str> {
    let mut all = headers.get_all(header::CONTENT_TYPE).iter();
    let first = all.next()?;
    if all.next().is_some() {
        return None;
    }
    first.to_str().ok()
}

/// Bodies are read as UTF-8 (RFC 8259 for JSON; forms are percent-encoded UTF-8): a body
/// that says it is another charset is refused, never misread.
fn utf8_or_unsaid(mime: &mime::Mime) -> bool {
    mime.get_param(mime::CHARSET)
        .is_none_or(|c| c.as_str().eq_ignore_ascii_case("utf-8"))
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = content_type(headers) else {
        return false;
    };
    // The common case without a full media-type parse.
    if ct.eq_ignore_ascii_case("application/json") {
        return true;
    }
    let Ok(mime) = ct.parse::<mime::Mime>() else {
        return false;
    };
    mime.type_() == "application"
        && (mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json"))
        && utf8_or_unsaid(&mime)
}

fn is_form(headers: &HeaderMap) -> bool {
    content_type(headers)
        .and_then(|ct| ct.parse::<mime::Mime>().ok())
        .is_some_and(|m| {
            m.essence_str() == "application/x-www-form-urlencoded" && utf8_or_unsaid(&m)
        })
}

/// Read a JSON body into `T`.
pub async fn json<T: DeserializeOwned>(req: Request, limit: u64) -> Result<T, Rejection> {
    if !is_json(req.headers()) {
        return Err(Rejection::UnsupportedMediaType(
            "Expected a body with Content-Type: application/json.",
        ));
    }
    let (_, bytes) = read_body(req, limit).await?;
    // Fast path: plain serde_json. Only a failing body is parsed again to find the path of
    // the offending field.
    if let Ok(value) = serde_json::from_slice(&bytes) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(json_error)?;
    de.end()
        .map_err(|_| Rejection::Unparseable("The request body is not valid JSON."))?;
    Ok(value)
}

fn json_error(e: serde_path_to_error::Error<serde_json::Error>) -> Rejection {
    use serde_json::error::Category;
    let path = e.path().to_string();
    let inner = e.into_inner();
    match inner.classify() {
        Category::Data => Rejection::Invalid(vec![shape_error(path, &inner.to_string())]),
        Category::Syntax | Category::Eof | Category::Io => {
            Rejection::Unparseable("The request body is not valid JSON.")
        }
    }
}

/// A shape error from serde: keep the field path and serde's description of the expected
/// type, drop the " at line L column C" suffix.
fn shape_error(path: String, msg: &str) -> FieldError {
    let msg = msg.split(" at line ").next().unwrap_or(msg);
    let code = if msg.starts_with("missing field") {
        "missing"
    } else if msg.starts_with("unknown field") {
        "unknown"
    } else {
        "type"
    };
    let field = if path == "." { String::new() } else { path };
    FieldError {
        field,
        code: code.into(),
        message: truncate(msg, 200),
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn urlencoded<T: DeserializeOwned>(input: &[u8]) -> Result<T, Rejection> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(input));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        Rejection::Invalid(vec![shape_error(path, &e.into_inner().to_string())])
    })
}

/// Read the query string into `T`.
pub fn query<T: DeserializeOwned>(parts: &Parts) -> Result<T, Rejection> {
    urlencoded(parts.uri.query().unwrap_or_default().as_bytes())
}

/// Read an urlencoded form into `T` (from the query string for GET and HEAD).
pub async fn form<T: DeserializeOwned>(req: Request, limit: u64) -> Result<T, Rejection> {
    if req.method() == Method::GET || req.method() == Method::HEAD {
        let (parts, _) = req.into_parts();
        return query(&parts);
    }
    if !is_form(req.headers()) {
        return Err(Rejection::UnsupportedMediaType(
            "Expected a body with Content-Type: application/x-www-form-urlencoded.",
        ));
    }
    let (_, bytes) = read_body(req, limit).await?;
    urlencoded(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Validate, Debug)]
    #[serde(deny_unknown_fields)]
    struct User {
        #[validate(length(min = 1, max = 5))]
        name: String,
        #[validate(range(min = 0, max = 150))]
        age: u8,
    }

    fn req(ct: &str, body: &'static str) -> Request {
        Request::builder()
            .method("POST")
            .header(header::CONTENT_TYPE, ct)
            .body(Body::from(body))
            .unwrap()
    }

    #[tokio::test]
    async fn one_content_type_in_utf8() {
        for (cts, ok) in [
            (&["application/json", "text/plain"][..], false),
            (&["text/plain", "application/json"][..], false),
            (&["application/json", "application/json"][..], false),
            (&["application/json; charset=utf-16"][..], false),
            (&["application/json; charset=latin1"][..], false),
            (&["application/json; charset=UTF-8"][..], true),
            (&["application/json;charset=utf-8"][..], true),
        ] {
            let mut r = Request::builder().method("POST").uri("/");
            for ct in cts {
                r = r.header(header::CONTENT_TYPE, *ct);
            }
            let r = r.body(Body::from(r#"{"name":"a","age":3}"#)).unwrap();
            match json::<User>(r, 1024).await {
                Ok(_) => assert!(ok, "{cts:?} accepted"),
                Err(e) => {
                    assert!(!ok, "{cts:?} refused");
                    assert_eq!(e.status(), 415, "{cts:?}");
                }
            }
        }
        for (cts, ok) in [
            (
                &["application/x-www-form-urlencoded", "application/json"][..],
                false,
            ),
            (
                &["application/x-www-form-urlencoded; charset=iso-8859-1"][..],
                false,
            ),
            (&["application/x-www-form-urlencoded"][..], true),
        ] {
            let mut h = HeaderMap::new();
            for ct in cts {
                h.append(header::CONTENT_TYPE, ct.parse().unwrap());
            }
            assert_eq!(is_form(&h), ok, "{cts:?}");
        }
    }

    #[tokio::test]
    async fn json_statuses() {
        let ok: User = json(req("application/json", r#"{"name":"a","age":3}"#), 1024)
            .await
            .unwrap();
        assert_eq!(ok.name, "a");
        let e = json::<User>(req("text/plain", "{}"), 1024)
            .await
            .unwrap_err();
        assert_eq!(e.status(), 415);
        let e = json::<User>(req("application/json", "{"), 1024)
            .await
            .unwrap_err();
        assert_eq!(e.status(), 400);
        let e = json::<User>(req("application/json", r#"{"name":"a","age":"x"}"#), 1024)
            .await
            .unwrap_err();
        match e {
            Rejection::Invalid(f) => assert_eq!(f[0].field, "age"),
            other => panic!("{other:?}"),
        }
        let e = json::<User>(
            req("application/json", r#"{"name":"a","age":1,"admin":true}"#),
            1024,
        )
        .await
        .unwrap_err();
        assert_eq!(e.status(), 422);
        let e = json::<User>(
            req("application/json", r#"{"name":"aaaaaaaaaa","age":1}"#),
            8,
        )
        .await
        .unwrap_err();
        assert_eq!(e.status(), 413);
        let e = json::<User>(req("application/json", r#"{"name":"a","age":1} x"#), 1024)
            .await
            .unwrap_err();
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn validation_lists_each_field() {
        let u = User {
            name: String::new(),
            age: 200,
        };
        let Err(Rejection::Invalid(f)) = validate(&u) else {
            panic!()
        };
        let fields: Vec<_> = f
            .iter()
            .map(|e| (e.field.as_str(), e.code.as_str()))
            .collect();
        assert_eq!(fields, [("age", "range"), ("name", "length")]);
    }

    #[test]
    fn query_shape_errors_name_the_field() {
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct Q {
            page: u32,
        }
        let parts = Request::builder()
            .uri("/x?page=abc")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        let Err(Rejection::Invalid(f)) = query::<Q>(&parts) else {
            panic!()
        };
        assert_eq!(f[0].field, "page");
    }
}
