//! Input validation: shieldwall's extractor against axum's `Json` plus validator called
//! directly, on the load test's body (`{"username":"alice","email":"alice@example.com","age":30}`).
//!
//! - `validate/{shieldwall,axum_validator}/valid`: read the JSON body and validate it —
//!   ours is what a `#[secure]` route runs for a `Json<T>` argument
//!   (`shieldwall::validate::json` then `validate`), theirs `axum::Json::from_request`
//!   then `Validate::validate`;
//! - `validate/{shieldwall,axum_validator}/invalid`: the same with a body failing all
//!   three rules (ours builds the per-field `errors`, theirs `ValidationErrors::to_string`);
//! - `validate/{shieldwall,validator}/rules_only`: the rules on a parsed value.

use std::hint::black_box;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::header;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use serde::Deserialize;
use shieldwall::validate::{DEFAULT_BODY_LIMIT, json, validate};
use shieldwall_runtime::bench_support::ready;
use validator::Validate;

#[derive(Deserialize, Validate)]
#[serde(deny_unknown_fields)]
struct NewUser {
    #[validate(length(min = 1, max = 50))]
    username: String,
    #[validate(email)]
    email: String,
    #[validate(range(min = 0, max = 150))]
    age: u8,
}

const VALID: &str = r#"{"username":"alice","email":"alice@example.com","age":30}"#;
const INVALID: &str = r#"{"username":"","email":"not-an-email","age":200}"#;

fn request(body: &'static str) -> Request {
    Request::post("/users")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, body.len())
        .body(Body::from(Bytes::from_static(body.as_bytes())))
        .expect("a request")
}

fn ours(req: Request) -> bool {
    match ready(json::<NewUser>(req, DEFAULT_BODY_LIMIT)) {
        Ok(v) => validate(&v).is_ok(),
        Err(_) => false,
    }
}

fn theirs(req: Request) -> bool {
    match ready(axum::Json::<NewUser>::from_request(req, &())) {
        Ok(axum::Json(v)) => v.validate().map_err(|e| black_box(e.to_string())).is_ok(),
        Err(_) => false,
    }
}

fn validation(c: &mut Criterion) {
    assert!(ours(request(VALID)) && theirs(request(VALID)));
    assert!(!ours(request(INVALID)) && !theirs(request(INVALID)));
    for (case, body) in [("valid", VALID), ("invalid", INVALID)] {
        c.bench_function(&format!("validate/shieldwall/{case}"), |b| {
            b.iter_batched(|| request(body), ours, BatchSize::SmallInput)
        });
        c.bench_function(&format!("validate/axum_validator/{case}"), |b| {
            b.iter_batched(|| request(body), theirs, BatchSize::SmallInput)
        });
    }

    let value: NewUser = serde_json::from_str(VALID).expect("valid JSON");
    c.bench_function("validate/shieldwall/rules_only", |b| {
        b.iter(|| validate(black_box(&value)))
    });
    c.bench_function("validate/validator/rules_only", |b| {
        b.iter(|| black_box(&value).validate())
    });
}

criterion_group!(benches, validation);
criterion_main!(benches);
