//! Liveness and readiness: `GET /health` answers as long as the process serves;
//! `GET /ready` runs the registered checks (Redis, a database, JWKS…) with a timeout each.
//!
//! ```
//! use shieldwall_runtime::health::Health;
//!
//! let health = Health::new().check("database", || async { Ok(()) });
//! // Shieldwall::new().health(health) mounts /health and /ready (public, never rate
//! // limited, not logged request by request).
//! # let _ = health;
//! ```
//!
//! `/ready` answers 200 `{"status":"ready","checks":{"database":"up"}}` or 503 with the
//! failing checks marked `down`; a check's error text is logged, never sent.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

type CheckFn =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// The health endpoints' configuration.
#[derive(Clone)]
pub struct Health {
    checks: Vec<(String, CheckFn)>,
    timeout: Duration,
    health_path: String,
    ready_path: String,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field(
                "checks",
                &self.checks.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

impl Health {
    /// `/health` and `/ready` with no readiness checks yet; 2 s per check.
    pub fn new() -> Self {
        Self {
            checks: Vec::new(),
            timeout: Duration::from_secs(2),
            health_path: "/health".into(),
            ready_path: "/ready".into(),
        }
    }

    /// Register a readiness check.
    pub fn check<F, Fut>(mut self, name: impl Into<String>, f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.checks
            .push((name.into(), Arc::new(move || Box::pin(f()))));
        self
    }

    /// Bound on each check (default 2 s); a check that takes longer is `down`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Serve liveness and readiness on other paths.
    pub fn paths(mut self, health: impl Into<String>, ready: impl Into<String>) -> Self {
        self.health_path = health.into();
        self.ready_path = ready.into();
        self
    }

    /// The liveness and readiness paths.
    pub fn path_names(&self) -> (&str, &str) {
        (&self.health_path, &self.ready_path)
    }

    /// Run every check concurrently.
    pub async fn ready(&self) -> (bool, Map<String, Value>) {
        let runs = self.checks.iter().map(|(name, f)| {
            let fut = f();
            let timeout = self.timeout;
            async move {
                let up = match tokio::time::timeout(timeout, fut).await {
                    Ok(Ok(())) => true,
                    Ok(Err(e)) => {
                        tracing::warn!(target: "shieldwall::health", check = %name, error = ?e, "readiness check failed");
                        false
                    }
                    Err(_) => {
                        tracing::warn!(target: "shieldwall::health", check = %name, "readiness check timed out");
                        false
                    }
                };
                (name.clone(), up)
            }
        });
        let results = futures_util::future::join_all(runs).await;
        let all_up = results.iter().all(|(_, up)| *up);
        let map = results
            .into_iter()
            .map(|(n, up)| (n, Value::from(if up { "up" } else { "down" })))
            .collect();
        (all_up, map)
    }

    /// The router serving both endpoints.
    pub fn router<S: Clone + Send + Sync + 'static>(self) -> axum::Router<S> {
        let this = Arc::new(self);
        let ready = this.clone();
        axum::Router::new()
            .route(
                &this.health_path,
                get(|| async { Json(json!({ "status": "ok" })) }),
            )
            .route(
                &ready.ready_path.clone(),
                get(move || {
                    let h = ready.clone();
                    async move { readiness(&h).await }
                }),
            )
    }
}

async fn readiness(h: &Health) -> Response {
    let (up, checks) = h.ready().await;
    let status = if up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({ "status": if up { "ready" } else { "unavailable" }, "checks": checks });
    let mut res = (status, Json(body)).into_response();
    // The body is the answer probes read; keep it out of the problem+json rewrite.
    res.extensions_mut().insert(crate::error::OwnFormat);
    res
}
