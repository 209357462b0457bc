//! What the abuse and fault scripts (`bench/abuse/`) found, kept as regression tests over
//! real sockets on 127.0.0.1.

mod common;

use std::time::{Duration, Instant};

use common::*;
use shieldwall::auth::api_key::{ApiKeys, NewKey, SqliteKeyStore};
use shieldwall::prelude::*;

#[secure(get "/reports", auth = "api_key")]
async fn reports(client: Principal) -> String {
    format!("reports for {}", client.subject())
}

#[secure(get "/open", public)]
async fn open() -> &'static str {
    "ok"
}

/// GET `path` over a plain socket from an OS thread of its own (never the runtime under
/// test, which may be the one stalled): the status and how long the answer took.
fn timed_get(addr: &str, path: &str, key: Option<&str>) -> (Option<u16>, Duration) {
    use std::io::{Read, Write};
    let started = Instant::now();
    let status = (|| {
        let mut s = std::net::TcpStream::connect(addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        let key = key
            .map(|k| format!("X-API-Key: {k}\r\n"))
            .unwrap_or_default();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\n{key}Connection: close\r\n\r\n"
        )
        .ok()?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head).ok()?;
        std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
    })();
    (status, started.elapsed())
}

/// `bench/abuse/faults.py sqlite_locked`: while another connection held the key database
/// (`BEGIN EXCLUSIVE`, as a backup or a long write does), every request carrying an API
/// key waited for the lock on one of the runtime's workers (SQLite's busy timeout, 5 s),
/// and with as many such requests as workers the whole server stopped answering — public
/// routes and health checks included — until the lock went. Key lookups now wait on the
/// blocking pool: the requests with keys wait for the database, nobody else does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_key_database_does_not_stall_other_requests() {
    let dir = std::env::temp_dir().join(format!(
        "shieldwall-abuse-{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("keys.db");
    let keys = ApiKeys::new(SqliteKeyStore::open(&path).unwrap());
    let key = keys.create(NewKey::new("billing")).unwrap().key;
    let router = Shieldwall::new()
        .api_keys(keys)
        .routes(routes![reports, open])
        .build()
        .unwrap();
    let base = serve(router).await;
    let addr = base.trim_start_matches("http://").to_string();
    let r = send(
        client()
            .get(format!("{base}/reports"))
            .header("x-api-key", &key),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // Another writer holds the database for 3 s.
    let lock = rusqlite::Connection::open(&path).unwrap();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let holder = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(3));
        lock.execute_batch("ROLLBACK").unwrap();
    });
    let probe = std::thread::spawn(move || {
        // More requests with keys than the runtime has workers; each waits for the lock.
        let waiting: Vec<_> = (0..8)
            .map(|_| {
                let (addr, key) = (addr.clone(), key.clone());
                std::thread::spawn(move || timed_get(&addr, "/reports", Some(&key)))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        // Meanwhile every other request is answered as usual.
        let open: Vec<_> = (0..10)
            .map(|_| {
                let answer = timed_get(&addr, "/open", None);
                std::thread::sleep(Duration::from_millis(100));
                answer
            })
            .collect();
        holder.join().unwrap();
        let keyed: Vec<_> = waiting.into_iter().map(|t| t.join().unwrap()).collect();
        (open, keyed)
    });
    let (open, keyed) = tokio::task::spawn_blocking(move || probe.join().unwrap())
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let slowest = open.iter().map(|(_, d)| *d).max().unwrap();
    assert!(
        open.iter().all(|(s, _)| *s == Some(200)) && slowest < Duration::from_millis(500),
        "public requests while the key database was locked: {open:?}"
    );
    // Once the lock is gone, the keys' requests are served (SQLite's busy timeout is 5 s).
    assert!(
        keyed.iter().all(|(s, _)| *s == Some(200)),
        "requests with keys: {keyed:?}"
    );
}

// ---------------------------------------------------------------- JWKS providers at fault
//
// `tests/jwks.rs` covers a provider that hangs, answers 500, garbage, a set over the size
// cap (declared by Content-Length), or no usable key. These are the faults it does not:
// a redirect, a body with no length that never ends, a huge declared length, and a body
// dripping one byte at a time. Each is served by hand over a raw socket.

#[secure(get "/whoami", auth)]
async fn whoami(user: Principal) -> String {
    user.subject().to_owned()
}

const JWKS_AUDIENCE: &str = "abuse-api";

/// How the provider answers `GET /jwks.json`.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    /// The current key set.
    Serve,
    /// `302` to `/elsewhere.json`, which serves a set with another key.
    Redirect,
    /// `200`, chunked, no length, and chunks for as long as the client reads.
    Endless,
    /// `200` with `Content-Length: 1 GiB`, then bytes for as long as the client reads.
    HugeDeclared,
    /// `200` with a plausible length, then one byte every 50 ms.
    Drip,
}

struct ProviderState {
    fault: std::sync::Mutex<Fault>,
    keys: std::sync::Mutex<serde_json::Value>,
    elsewhere: serde_json::Value,
    hits: std::sync::Mutex<Vec<String>>,
    /// Body bytes written by the faults that stream, and when the client stopped taking them.
    streamed: std::sync::atomic::AtomicUsize,
    stream_ended: std::sync::Mutex<Option<Instant>>,
}

struct Provider {
    base: String,
    state: std::sync::Arc<ProviderState>,
}

impl Provider {
    async fn start(keys: serde_json::Value, elsewhere: serde_json::Value) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = std::sync::Arc::new(ProviderState {
            fault: std::sync::Mutex::new(Fault::Serve),
            keys: std::sync::Mutex::new(keys),
            elsewhere,
            hits: std::sync::Mutex::new(Vec::new()),
            streamed: std::sync::atomic::AtomicUsize::new(0),
            stream_ended: std::sync::Mutex::new(None),
        });
        let shared = state.clone();
        let own = base.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(answer(sock, shared.clone(), own.clone()));
            }
        });
        Self { base, state }
    }

    fn set(&self, fault: Fault) {
        *self.state.fault.lock().unwrap() = fault;
    }

    fn hits(&self, path: &str) -> usize {
        self.state
            .hits
            .lock()
            .unwrap()
            .iter()
            .filter(|p| *p == path)
            .count()
    }
}

async fn answer(
    mut sock: tokio::net::TcpStream,
    state: std::sync::Arc<ProviderState>,
    base: String,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let path = String::from_utf8_lossy(&head)
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_owned();
    state.hits.lock().unwrap().push(path.clone());
    let json = |v: &serde_json::Value| {
        let body = v.to_string();
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let fault = *state.fault.lock().unwrap();
    let (head, stream): (String, Option<(Vec<u8>, bool, Duration)>) = match (path.as_str(), fault) {
        ("/elsewhere.json", _) => (json(&state.elsewhere), None),
        ("/jwks.json", Fault::Serve) => (json(&state.keys.lock().unwrap()), None),
        ("/jwks.json", Fault::Redirect) => (
            format!(
                "HTTP/1.1 302 Found\r\nLocation: {base}/elsewhere.json\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            ),
            None,
        ),
        ("/jwks.json", Fault::Endless) => {
            let mut chunk = format!("{:x}\r\n{{\"keys\":[", 64 * 1024).into_bytes();
            chunk.resize(chunk.len() - 9 + 64 * 1024, b' ');
            chunk.extend_from_slice(b"\r\n");
            (
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".into(),
                Some((chunk, true, Duration::ZERO)),
            )
        }
        ("/jwks.json", Fault::HugeDeclared) => (
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n{\"keys\":[".into(),
            Some((vec![b' '; 64 * 1024], true, Duration::ZERO)),
        ),
        ("/jwks.json", Fault::Drip) => (
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2048\r\n\r\n".into(),
            Some((b" ".to_vec(), false, Duration::from_millis(50))),
        ),
        _ => ("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(), None),
    };
    if sock.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    // Stream for at most 30 s or 256 MiB, whichever comes first.
    if let Some((piece, _, pause)) = stream {
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until
            && state.streamed.load(std::sync::atomic::Ordering::SeqCst) < 256 << 20
        {
            let wrote = tokio::time::timeout(Duration::from_secs(5), sock.write_all(&piece)).await;
            if !matches!(wrote, Ok(Ok(()))) {
                break;
            }
            state
                .streamed
                .fetch_add(piece.len(), std::sync::atomic::Ordering::SeqCst);
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
        *state.stream_ended.lock().unwrap() = Some(Instant::now());
    }
    let _ = sock.shutdown().await;
}

struct JwksSigner {
    kid: String,
    key: jsonwebtoken::EncodingKey,
    jwk: serde_json::Value,
}

/// An ES256 signer with a fresh P-256 key (made by rcgen) and its public JWK.
fn p256_signer(kid: &str) -> JwksSigner {
    let pem = rcgen::KeyPair::generate().unwrap().serialize_pem();
    let key = jsonwebtoken::EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
    let mut jwk =
        jsonwebtoken::jwk::Jwk::from_encoding_key(&key, jsonwebtoken::Algorithm::ES256).unwrap();
    jwk.common.key_id = Some(kid.to_owned());
    JwksSigner {
        kid: kid.to_owned(),
        key,
        jwk: serde_json::to_value(jwk).unwrap(),
    }
}

fn signed_by(s: &JwksSigner, issuer: &str) -> String {
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    h.typ = Some("at+jwt".into());
    h.kid = Some(s.kid.clone());
    let now = jsonwebtoken::get_current_timestamp();
    let claims = serde_json::json!({
        "iss": issuer, "aud": JWKS_AUDIENCE, "sub": format!("sub-{}", s.kid),
        "iat": now, "exp": now + 300,
    });
    jsonwebtoken::encode(&h, &claims, &s.key).unwrap()
}

/// GET /whoami with a token signed by `s`: the status, and how long the answer took.
async fn whoami_status(base: &str, s: &JwksSigner, issuer: &str) -> (u16, Duration) {
    let started = Instant::now();
    let status = client()
        .get(format!("{base}/whoami"))
        .bearer_auth(signed_by(s, issuer))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("the app answers")
        .status()
        .as_u16();
    (status, started.elapsed())
}

/// The app trusts `good`'s key from the provider; the provider then fails as `fault`
/// says while a second key appears. The known key keeps working, the new one is refused
/// within the fetch timeout (300 ms) plus a loaded machine's margin, and once the provider
/// is repaired the new key works: no restart.
async fn key_set_fault(fault: Fault) -> Provider {
    let good = p256_signer("good");
    let next = p256_signer("next");
    let provider = Provider::start(
        serde_json::json!({ "keys": [good.jwk] }),
        serde_json::json!({ "keys": [good.jwk, next.jwk] }),
    )
    .await;
    let jwks = shieldwall::Jwks::new(format!("{}/jwks.json", provider.base))
        .unwrap()
        .allow_http_loopback()
        .min_refetch_interval(Duration::from_millis(200))
        .refresh_every(Duration::from_secs(60))
        .timeout(Duration::from_millis(300))
        .max_bytes(16 * 1024);
    let issuer = provider.base.clone();
    let router = Shieldwall::new()
        .jwt(
            shieldwall::Jwt::new()
                .jwks(jwks)
                .issuer(&issuer)
                .audience(JWKS_AUDIENCE),
        )
        .routes(routes![whoami])
        .build()
        .unwrap();
    let base = serve(router).await;
    assert_eq!(whoami_status(&base, &good, &issuer).await.0, 200);

    // The key set now carries a second key, but the provider fails as `fault` says.
    *provider.state.keys.lock().unwrap() = provider.state.elsewhere.clone();
    provider.set(fault);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let (status, took) = whoami_status(&base, &next, &issuer).await;
    assert_eq!(status, 401, "{fault:?}: the new key cannot be learned");
    assert!(took < Duration::from_secs(2), "{fault:?}: took {took:?}");
    let (status, took) = whoami_status(&base, &good, &issuer).await;
    assert_eq!(status, 200, "{fault:?}: the last good key stays");
    assert!(took < Duration::from_secs(2), "{fault:?}: took {took:?}");

    // Repaired: the next fetch (the new kid's) learns the new key.
    provider.set(Fault::Serve);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(
        whoami_status(&base, &next, &issuer).await.0,
        200,
        "{fault:?}: repaired"
    );
    assert_eq!(whoami_status(&base, &good, &issuer).await.0, 200);
    provider
}

#[tokio::test]
async fn a_redirecting_key_set_is_not_followed() {
    let provider = key_set_fault(Fault::Redirect).await;
    assert!(provider.hits("/jwks.json") >= 2);
    assert_eq!(
        provider.hits("/elsewhere.json"),
        0,
        "the redirect was followed"
    );
}

/// The stream is cut once the cap is read: the provider could push no more than the cap
/// and the sockets' buffers before the app hung up, well within a second of the fetch.
async fn streaming_fault(fault: Fault) {
    let provider = key_set_fault(fault).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let ended = loop {
        if let Some(t) = *provider.state.stream_ended.lock().unwrap() {
            break Some(t);
        }
        if Instant::now() > deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let streamed = provider
        .state
        .streamed
        .load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        ended.is_some(),
        "{fault:?}: the app never hung up ({streamed} bytes taken)"
    );
    assert!(
        streamed < 16 << 20,
        "{fault:?}: the app took {streamed} bytes of a 16 KiB key set"
    );
}

#[tokio::test]
async fn an_endless_key_set_is_cut_at_the_size_cap() {
    streaming_fault(Fault::Endless).await;
}

#[tokio::test]
async fn a_huge_declared_key_set_is_refused_unread() {
    streaming_fault(Fault::HugeDeclared).await;
}

#[tokio::test]
async fn a_dripping_key_set_is_cut_at_the_fetch_timeout() {
    streaming_fault(Fault::Drip).await;
}
