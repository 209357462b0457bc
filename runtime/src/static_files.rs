//! Static files: a hardened wrapper over tower-http's `ServeFile`.
//!
//! ```no_run
//! use shieldwall_runtime::app::Shieldwall;
//! use shieldwall_runtime::static_files::StaticFiles;
//!
//! let router: axum::Router = Shieldwall::new()
//!     .static_files(StaticFiles::new("/assets", "./public"))
//!     .build()
//!     .expect("the directory exists");
//! # let _ = router;
//! ```
//!
//! Every request path is checked before the file system is touched, and answered 404
//! (problem+json, no hint why) unless it names a regular file strictly inside the root:
//!
//! - each segment is percent-decoded exactly once; a decoded segment containing `/`, `\`,
//!   `%` (double encoding: `%252e`), NUL or a control character, an empty segment (`//`),
//!   `.`, `..`, and any segment starting with `.` (dotfiles and dot-directories: `.env`,
//!   `.git/config`, `.well-known` too) are refused, as are `:` (Windows drive and stream
//!   names) and raw backslashes; empty segments are looked for in the path as received,
//!   mount prefix included (`/static//a.txt` is refused, although the mount strips
//!   `/static/` and leaves `/a.txt`);
//! - the resulting path is canonicalized and must stay under the canonical root, so a
//!   symlink that leaves the root is not followed; the canonical path is checked again for
//!   dot-components, so a symlink cannot reach a dotfile inside the root either;
//! - directories are never listed and get no index page: a directory is a 404;
//! - only `GET` and `HEAD` (405 otherwise); the file served is the canonical path itself.
//!
//! The content type comes from the file extension (`mime_guess`; unknown extensions are
//! `application/octet-stream`), with `X-Content-Type-Options: nosniff` so browsers never
//! second-guess it. Ranges and conditional requests work as in `ServeFile`.
//!
//! The root must exist when `build()` runs ([`StaticError`]). A file swapped for a symlink
//! between the check and the open could still be served: only processes that may write
//! into the root can do that.

use std::convert::Infallible;
use std::future::Future;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::{Service, ServiceExt};

use crate::error::Problem;

/// Why a static-files mount was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StaticError {
    /// The root directory cannot be used.
    #[error("static files root {path:?}: {source}")]
    Root {
        /// The root as given.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The root is not a directory.
    #[error("static files root {0:?} is not a directory")]
    NotADirectory(PathBuf),
    /// The mount path is not `/segment[/segment…]` (or `/`).
    #[error("static files mount {0:?}: write an absolute path such as `/assets`")]
    BadMount(String),
}

/// A directory served under a path prefix. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct StaticFiles {
    mount: String,
    root: PathBuf,
}

impl StaticFiles {
    /// Serve the files under `root` at `mount` (`/assets/app.css` → `root/app.css`).
    pub fn new(mount: impl Into<String>, root: impl Into<PathBuf>) -> Self {
        Self {
            mount: mount.into(),
            root: root.into(),
        }
    }

    /// The mount path.
    pub fn mount(&self) -> &str {
        &self.mount
    }

    /// Check the root and make the service.
    pub fn service(&self) -> Result<StaticService, StaticError> {
        let m = &self.mount;
        if !m.starts_with('/')
            || (m.len() > 1 && m.ends_with('/'))
            || m.contains(['{', '}', '*', '\\', '%'])
            || m.split('/').skip(1).any(|s| s == "." || s == "..")
        {
            return Err(StaticError::BadMount(m.clone()));
        }
        let root = std::fs::canonicalize(&self.root).map_err(|source| StaticError::Root {
            path: self.root.clone(),
            source,
        })?;
        if !root.is_dir() {
            return Err(StaticError::NotADirectory(self.root.clone()));
        }
        Ok(StaticService {
            root: Arc::new(root),
        })
    }
}

/// The service behind a [`StaticFiles`] mount; its request path is relative to the mount.
#[derive(Debug, Clone)]
pub struct StaticService {
    root: Arc<PathBuf>,
}

impl Service<Request> for StaticService {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let root = self.root.clone();
        Box::pin(async move { Ok(serve(&root, req).await) })
    }
}

async fn serve(root: &Path, req: Request) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Problem::from_status(StatusCode::METHOD_NOT_ALLOWED)
            .with_detail("Static files are read-only.")
            .with_header(header::ALLOW, HeaderValue::from_static("GET, HEAD"))
            .into_response();
    }
    // The path as received: mounting strips the prefix, and with it an empty segment
    // right after it (`/static//a.txt` reaches this service as `/a.txt`).
    let received = req
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map_or(req.uri().path(), |o| o.0.path());
    if received.contains("//") {
        return not_found();
    }
    let Some(path) = resolve(root, req.uri().path()).await else {
        return not_found();
    };
    match tower_http::services::ServeFile::new(&path)
        .oneshot(req)
        .await
    {
        Ok(res) => {
            let mut res = res.map(Body::new);
            res.headers_mut().insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            res
        }
        Err(e) => match e {},
    }
}

fn not_found() -> Response {
    Problem::from_status(StatusCode::NOT_FOUND)
        .with_detail("No file at this path.")
        .into_response()
}

/// The segments of a request path, each decoded once, or `None` if any is unsafe.
pub(crate) fn safe_segments(raw: &str) -> Option<Vec<String>> {
    let rest = raw.strip_prefix('/')?;
    if rest.is_empty() || raw.contains('\\') {
        return None;
    }
    let mut out = Vec::new();
    for seg in rest.split('/') {
        let bytes: Vec<u8> = percent_encoding::percent_decode_str(seg).collect();
        let s = String::from_utf8(bytes).ok()?;
        let bad = s.is_empty()
            || s.starts_with('.')
            || s.chars()
                .any(|c| matches!(c, '/' | '\\' | '%' | ':' | '\0') || c.is_control());
        if bad {
            return None;
        }
        out.push(s);
    }
    Some(out)
}

/// The canonical file a request path names, if it is a regular file inside `root`.
async fn resolve(root: &Path, raw: &str) -> Option<PathBuf> {
    let segments = safe_segments(raw)?;
    let mut path = root.to_path_buf();
    path.extend(&segments);
    let canon = tokio::fs::canonicalize(&path).await.ok()?;
    let Ok(inside) = canon.strip_prefix(root) else {
        tracing::warn!(
            target: "shieldwall::static_files",
            path = raw,
            "refused a static file path that resolves outside the root (symlink)"
        );
        return None;
    };
    let hidden = inside.components().any(|c| match c {
        Component::Normal(n) => n.to_string_lossy().starts_with('.'),
        _ => true,
    });
    if hidden || inside.as_os_str().is_empty() {
        return None;
    }
    let meta = tokio::fs::metadata(&canon).await.ok()?;
    meta.is_file().then_some(canon)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments() {
        assert_eq!(safe_segments("/css/app.css").unwrap(), ["css", "app.css"]);
        assert_eq!(safe_segments("/a%20b.txt").unwrap(), ["a b.txt"]);
        for bad in [
            "/",
            "//etc/passwd",
            "/../x",
            "/./x",
            "/%2e%2e/x",
            "/%2E%2E%2Fx",
            "/..%2fx",
            "/..%5cx",
            "/%252e%252e/x",
            "/.env",
            "/.git/config",
            "/a/%2egit/config",
            "/a\\..\\b",
            "/a%00.txt",
            "/c:%5cwindows",
            "/a/",
            "/%c0%ae%c0%ae/x",
            "/a%0d%0ab",
        ] {
            assert!(safe_segments(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn mounts_are_checked() {
        let dir = std::env::temp_dir();
        assert!(StaticFiles::new("assets", &dir).service().is_err());
        assert!(StaticFiles::new("/assets/", &dir).service().is_err());
        assert!(StaticFiles::new("/a/{x}", &dir).service().is_err());
        assert!(StaticFiles::new("/assets", &dir).service().is_ok());
        assert!(
            StaticFiles::new("/assets", dir.join("no-such-dir-sw"))
                .service()
                .is_err()
        );
    }

    #[tokio::test]
    async fn symlinks_out_of_the_root_are_refused() {
        let base = std::env::temp_dir().join(format!("sw-static-{}", std::process::id()));
        let root = base.join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(base.join("secret.txt"), "s3cret").unwrap();
        std::fs::write(root.join("ok.txt"), "ok").unwrap();
        std::fs::write(root.join(".env"), "KEY=1").unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(base.join("secret.txt"), root.join("leak.txt")).unwrap();
            std::os::unix::fs::symlink(root.join(".env"), root.join("env.txt")).unwrap();
        }
        let root = std::fs::canonicalize(&root).unwrap();
        assert!(resolve(&root, "/ok.txt").await.is_some());
        assert!(resolve(&root, "/leak.txt").await.is_none());
        assert!(resolve(&root, "/env.txt").await.is_none());
        assert!(resolve(&root, "/sub").await.is_none(), "no directories");
        assert!(resolve(&root, "/missing").await.is_none());
        let _ = std::fs::remove_dir_all(&base);
    }
}
