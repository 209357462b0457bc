//! Rendering rejections as `application/problem+json` (RFC 9457): the `Rejection` →
//! `Problem` → `Response` path every refusal takes, body serialisation and challenge
//! headers included.
//!
//! - `problem/401_invalid_token`, `problem/403_insufficient_scope`,
//!   `problem/429_rate_limited`: fixed sentences plus a computed header;
//! - `problem/422_three_fields`: a validation failure with three field errors;
//! - `problem/conform_plain_500`: a handler's plain-text error replaced by a problem body.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use shieldwall::error::{FieldError, Rejection, conform};

fn field(field: &str, code: &str, message: &str) -> FieldError {
    FieldError {
        field: field.into(),
        code: code.into(),
        message: message.into(),
    }
}

fn problem(c: &mut Criterion) {
    let render = |rej: Rejection| rej.into_problem("api").into_response();
    let scopes: Arc<str> = Arc::from("users:write");

    c.bench_function("problem/401_invalid_token", |b| {
        b.iter(|| render(Rejection::InvalidToken))
    });
    c.bench_function("problem/403_insufficient_scope", |b| {
        b.iter(|| {
            render(Rejection::Forbidden {
                scopes: Some(scopes.clone()),
            })
        })
    });
    c.bench_function("problem/429_rate_limited", |b| {
        b.iter(|| render(Rejection::RateLimited { retry_after: 12 }))
    });
    let errors = vec![
        field("age", "range", "must be between 0 and 150"),
        field("email", "email", "must be a valid email address"),
        field("username", "length", "length must be between 1 and 50"),
    ];
    c.bench_function("problem/422_three_fields", |b| {
        b.iter_batched(
            || Rejection::Invalid(errors.clone()),
            render,
            BatchSize::SmallInput,
        )
    });
    c.bench_function("problem/conform_plain_500", |b| {
        b.iter(|| {
            conform((StatusCode::INTERNAL_SERVER_ERROR, "db connection refused").into_response())
        })
    });
}

criterion_group!(benches, problem);
criterion_main!(benches);
