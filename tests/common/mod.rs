//! Shared helpers for behaviour tests: mint tokens, serve a router on 127.0.0.1, send.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

pub const SECRET: &[u8] = b"behaviour-tests-secret-0123456789abcdef";
pub const ISS: &str = "https://issuer.test";
pub const AUD: &str = "api";

pub fn jwt() -> shieldwall::Jwt {
    shieldwall::Jwt::hs256(SECRET.to_vec())
        .issuer(ISS)
        .audience(AUD)
}

pub fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// A valid access token for `sub` with these roles and scopes.
pub fn token(sub: &str, roles: &[&str], scope: &str) -> String {
    sign(json!({
        "iss": ISS, "aud": AUD, "sub": sub, "roles": roles, "scope": scope,
        "iat": now(), "exp": now() + 600,
    }))
}

pub fn sign(claims: Value) -> String {
    let mut h = Header::new(Algorithm::HS256);
    h.typ = Some("at+jwt".into());
    jsonwebtoken::encode(&h, &claims, &EncodingKey::from_secret(SECRET).unwrap()).unwrap()
}

/// Serve `router` on an ephemeral port; returns the base URL.
pub async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    format!("http://{addr}")
}

pub struct Res {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Res {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// Assert the response is a problem document with this status and type slug.
    pub fn assert_problem(&self, status: u16, slug: &str) {
        assert_eq!(self.status, status, "body: {}", self.text);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json")
        );
        let v = self.json();
        assert_eq!(v["status"], status);
        assert_eq!(
            v["type"],
            format!("urn:shieldwall:problem:{slug}"),
            "{}",
            self.text
        );
    }
}

pub async fn send(req: reqwest::RequestBuilder) -> Res {
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    Res {
        status,
        headers,
        text,
    }
}

/// A plain-HTTP client. reqwest is built without its own crypto provider (the project uses
/// ring everywhere), so install ring as the process default first.
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

// ---------------------------------------------------------------- captured logs

/// Log lines captured in memory by a global subscriber (installed once per test binary).
#[derive(Clone, Default)]
pub struct Capture(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Install the capturing subscriber (idempotent) and return the capture.
pub fn logs() -> &'static Capture {
    static LOGS: std::sync::OnceLock<Capture> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let cap = Capture::default();
        let writer = cap.clone();
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .init();
        cap
    })
}

/// Everything logged so far.
pub fn logged() -> String {
    String::from_utf8_lossy(&logs().0.lock().unwrap()).into_owned()
}

// ---------------------------------------------------------------- example processes

/// An example binary built by `cargo test` next to this test binary.
pub fn example_bin(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    assert!(bin.exists(), "{} not built", bin.display());
    bin
}

/// A running example process; killed when dropped.
pub struct Example {
    pub child: std::process::Child,
    pub base: String,
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start the quickstart on 127.0.0.1:0 with these variables and wait until it listens.
pub fn start_quickstart(envs: &[(&str, &str)]) -> Example {
    use std::io::BufRead;
    let mut cmd = std::process::Command::new(example_bin("quickstart"));
    cmd.env("SHIELDWALL_ADDR", "127.0.0.1:0")
        .env_remove("SHIELDWALL_REDIS_URL")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    let base = loop {
        let line = lines.next().expect("quickstart exited").unwrap();
        if let Some(rest) = line.strip_prefix("shieldwall quickstart listening on ") {
            break rest.trim().to_string();
        }
    };
    // keep draining stdout so the child never blocks on a full pipe
    std::thread::spawn(move || for _ in lines {});
    Example { child, base }
}
