//! problem+json rendering (`error::Problem`, `Rejection::into_problem`, `conform`). Line 1:
//! a status; then type, title, detail, instance; then field errors, three lines each.
//!
//! Invariants: every rendered problem is one JSON object with exactly the fields set,
//! holding the given text unchanged (type prefixed with `urn:shieldwall:problem:` unless it
//! already is a URI), the status as a number, `Content-Type: application/problem+json` and
//! `Cache-Control: no-store`; every rejection, whatever the app's realm, renders so, with
//! the status it names and the exact `WWW-Authenticate` challenge (never the bare fallback);
//! and `conform` turns any error response that is not already a problem into one without a
//! byte of the original body, and leaves other responses alone.
#![no_main]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};
use shieldwall_runtime::error::{
    FieldError, PROBLEM_JSON, PROBLEM_TYPE_PREFIX, Problem, Rejection, conform,
};
use shieldwall_runtime::fuzzing::{response_parts, sanitize_realm};

fn text(line: Option<&&[u8]>) -> Option<String> {
    line.map(|b| String::from_utf8_lossy(b).into_owned())
}

/// A status from a line's bytes: 100..=599, mostly errors.
fn status(line: &[u8]) -> StatusCode {
    let n = line
        .iter()
        .fold(0u32, |n, b| n.wrapping_mul(31).wrapping_add(u32::from(*b)));
    StatusCode::from_u16(100 + (n % 500) as u16).unwrap()
}

/// The response's problem document, after the checks every problem passes.
fn rendered(res: Response, expect: StatusCode) -> (Map<String, Value>, axum::http::HeaderMap) {
    let (status, headers, body) = response_parts(res);
    assert_eq!(status, expect);
    assert_eq!(headers[header::CONTENT_TYPE], PROBLEM_JSON);
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    let v: Value = serde_json::from_slice(&body).expect("a problem body is JSON");
    let Value::Object(m) = v else {
        panic!("a problem body is an object: {v}")
    };
    assert_eq!(m["status"], json!(expect.as_u16()));
    assert!(m["type"].as_str().is_some_and(|t| t.contains(':')), "{m:?}");
    assert!(m["title"].is_string(), "{m:?}");
    (m, headers)
}

fuzz_target!(|data: &[u8]| {
    let lines = shieldwall_fuzz::lines(data);
    let code = status(lines[0]);
    let kind = text(lines.get(1)).unwrap_or_default();
    let title = text(lines.get(2)).unwrap_or_default();
    let detail = text(lines.get(3));
    let instance = text(lines.get(4));
    let errors: Vec<FieldError> = lines
        .get(5..)
        .unwrap_or_default()
        .chunks(3)
        .map(|c| FieldError {
            field: text(c.first()).unwrap_or_default(),
            code: text(c.get(1)).unwrap_or_default(),
            message: text(c.get(2)).unwrap_or_default(),
        })
        .collect();

    // A problem of the fuzzer's own text.
    let mut p = Problem::new(code, kind.clone(), title.clone());
    if let Some(d) = &detail {
        p = p.with_detail(d.clone());
    }
    if let Some(i) = &instance {
        p = p.with_instance(i.clone());
    }
    p = p.with_errors(errors.clone());
    let (m, _) = rendered(p.into_response(), code);
    let expected_kind = if kind.contains(':') {
        kind.clone()
    } else {
        format!("{PROBLEM_TYPE_PREFIX}{kind}")
    };
    assert_eq!(m["type"], json!(expected_kind));
    assert_eq!(m["title"], json!(title));
    assert_eq!(m.get("detail"), detail.map(Value::String).as_ref());
    assert_eq!(m.get("instance"), instance.map(Value::String).as_ref());
    match m.get("errors") {
        None => assert!(errors.is_empty()),
        Some(e) => assert_eq!(e, &serde_json::to_value(&errors).unwrap()),
    }
    let expected_keys = 3
        + usize::from(m.contains_key("detail"))
        + usize::from(m.contains_key("instance"))
        + usize::from(!errors.is_empty());
    assert_eq!(m.len(), expected_keys, "{m:?}");
    // A bare status renders too.
    rendered(Problem::from_status(code).into_response(), code);

    // Every rejection, under a realm of the fuzzer's text as the app keeps it.
    let realm = sanitize_realm(&kind);
    assert!(
        HeaderValue::from_str(&format!("Bearer realm=\"{realm}\"")).is_ok(),
        "{realm:?}"
    );
    let scopes: Arc<str> = Arc::from("reports:read reports:write");
    let rejections = [
        Rejection::MissingCredentials,
        Rejection::InvalidToken,
        Rejection::MalformedCredentials("The bearer token is empty."),
        Rejection::Forbidden {
            scopes: Some(scopes),
        },
        Rejection::Forbidden { scopes: None },
        Rejection::Invalid(errors.clone()),
        Rejection::Unparseable("The body is not valid JSON."),
        Rejection::UnsupportedMediaType("Send application/json."),
        Rejection::PayloadTooLarge,
        Rejection::RateLimited {
            retry_after: lines[0].len() as u64 * 1_000_003,
        },
        Rejection::Internal,
        Rejection::Unavailable,
    ];
    for r in rejections {
        let code = r.status();
        let challenge = match &r {
            Rejection::MissingCredentials => Some(format!("Bearer realm=\"{realm}\"")),
            Rejection::InvalidToken => Some(format!(
                "Bearer realm=\"{realm}\", error=\"invalid_token\", error_description=\"The access token is invalid\""
            )),
            Rejection::MalformedCredentials(_) => Some(format!(
                "Bearer realm=\"{realm}\", error=\"invalid_request\""
            )),
            Rejection::Forbidden { scopes: Some(s) } => Some(format!(
                "Bearer realm=\"{realm}\", error=\"insufficient_scope\", scope=\"{s}\""
            )),
            _ => None,
        };
        let retry = match &r {
            Rejection::RateLimited { retry_after } => Some(retry_after.to_string()),
            _ => None,
        };
        let (m, headers) = rendered(r.into_problem(&realm).into_response(), code);
        assert!(m["type"].as_str().unwrap().starts_with(PROBLEM_TYPE_PREFIX));
        assert_eq!(
            headers
                .get(header::WWW_AUTHENTICATE)
                .map(|v| v.to_str().unwrap().to_owned()),
            challenge
        );
        assert_eq!(
            headers
                .get(header::RETRY_AFTER)
                .map(|v| v.to_str().unwrap().to_owned()),
            retry
        );
    }

    // conform: any response of this status, with the fuzzer's content type and body.
    let original = lines.get(2).copied().unwrap_or_default().to_vec();
    let mut res = Response::new(Body::from(original.clone()));
    *res.status_mut() = code;
    if let Some(ct) = lines.get(1).and_then(|l| HeaderValue::from_bytes(l).ok()) {
        res.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    let was_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    let out = conform(res);
    if code.is_client_error() || code.is_server_error() {
        if was_problem {
            let (_, _, body) = response_parts(out);
            assert_eq!(body, original, "a problem passes through");
        } else {
            let generic = response_parts(Problem::from_status(code).into_response()).2;
            let (status, headers, body) = response_parts(out);
            assert_eq!(status, code);
            assert_eq!(headers[header::CONTENT_TYPE], PROBLEM_JSON);
            assert_eq!(
                body, generic,
                "the original body is replaced by the generic problem"
            );
        }
    } else {
        let (status, _, body) = response_parts(out);
        assert_eq!(status, code);
        assert_eq!(body, original, "a non-error passes through");
    }
});
