//! Configuration and secrets, tested by capturing real output: the quickstart binary run as
//! a process under the production and development profiles (its exit status, stdout and
//! stderr), `tracing` output captured in memory, and the `Debug`/`Display` text of values
//! that hold secrets. A secret's value must never appear in any of them.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use shieldwall::BuildError;
use shieldwall::auth::tokens::{BoxFuture, TokenEndpoint, TokenIssuer, UserRecord, UserStore};
use shieldwall::config::{ProductionError, Refusal};
use shieldwall::prelude::*;
use shieldwall::secrets::SecretError;

/// A strong secret for the quickstart (48 random-looking bytes).
const STRONG: &str = "Vq3mP8xZr2LkT9wB4nYc7HsJd1FgA6eUoQiW5tRy0pXzMbNv";
const SHORT: &str = "tiny-but-secret-xyz";
const QS_ISS: &str = "shieldwall-quickstart";
const QS_AUD: &str = "quickstart-api";

// ---------------------------------------------------------------- harness

fn quickstart_bin() -> PathBuf {
    // target/<profile>/deps/secrets-<hash> → target/<profile>/examples/quickstart
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("quickstart");
    assert!(
        bin.exists(),
        "{} is not built: `cargo test` builds examples",
        bin.display()
    );
    bin
}

/// A fresh empty directory (the process's working directory: no stray `.env`).
fn tmpdir(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "sw-secrets-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The quickstart with only `vars` in its environment (plus an ephemeral port), in `dir`.
fn command(dir: &Path, vars: &[(&str, &str)]) -> Command {
    let mut c = Command::new(quickstart_bin());
    c.env_clear()
        .env("SHIELDWALL_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "debug")
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in vars {
        c.env(k, v);
    }
    c
}

/// Everything a process wrote, collected by reader threads: stdout and stderr each in its
/// own buffer (one shared buffer would interleave a line of one stream into the middle of
/// a line of the other).
#[derive(Clone, Default)]
struct Output([Arc<Mutex<String>>; 2]);

impl Output {
    fn capture(child: &mut Child) -> Self {
        let out = Self::default();
        let mut readers: Vec<(usize, Box<dyn Read + Send>)> = Vec::new();
        if let Some(s) = child.stdout.take() {
            readers.push((0, Box::new(s)));
        }
        if let Some(s) = child.stderr.take() {
            readers.push((1, Box::new(s)));
        }
        for (i, mut r) in readers {
            let buf_out = out.0[i].clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = r.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    buf_out
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        out
    }

    /// stdout, then stderr.
    fn text(&self) -> String {
        let stdout = self.0[0].lock().unwrap().clone();
        let stderr = self.0[1].lock().unwrap().clone();
        format!("{stdout}\n{stderr}")
    }
}

/// Run the quickstart, which must exit by itself (a refusal) within 60 s.
fn run_refused(vars: &[(&str, &str)]) -> String {
    let dir = tmpdir("refused");
    let out = run_refused_in(&dir, vars);
    let _ = std::fs::remove_dir_all(dir);
    out
}

fn run_refused_in(dir: &Path, vars: &[(&str, &str)]) -> String {
    let mut child = command(dir, vars).spawn().unwrap();
    let out = Output::capture(&mut child);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the quickstart did not exit; output:\n{}", out.text());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // let the reader threads drain the pipes
    std::thread::sleep(Duration::from_millis(100));
    let text = out.text();
    assert!(
        !status.success(),
        "expected a refusal, got success:\n{text}"
    );
    assert!(
        !text.contains("listening on"),
        "a refused configuration must not serve:\n{text}"
    );
    text
}

/// A running quickstart.
struct Started {
    child: Child,
    out: Output,
    base: String,
}

impl Started {
    fn start(dir: &Path, vars: &[(&str, &str)]) -> Self {
        let mut child = command(dir, vars).spawn().unwrap();
        let out = Output::capture(&mut child);
        let deadline = Instant::now() + Duration::from_secs(60);
        let base = loop {
            let text = out.text();
            if let Some(rest) = text
                .lines()
                .find_map(|l| l.strip_prefix("shieldwall quickstart listening on "))
            {
                break rest.trim().to_string();
            }
            if let Some(s) = child.try_wait().unwrap() {
                panic!("the quickstart exited ({s}):\n{text}");
            }
            assert!(Instant::now() < deadline, "no address printed:\n{text}");
            std::thread::sleep(Duration::from_millis(20));
        };
        Self { child, out, base }
    }

    /// Stop it; everything it wrote.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(100));
        self.out.text()
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mint(secret: &[u8], iss: &str, aud: &str, sub: &str) -> String {
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    h.typ = Some("at+jwt".into());
    let claims = json!({"iss": iss, "aud": aud, "sub": sub, "iat": now(), "exp": now() + 600});
    jsonwebtoken::encode(
        &h,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret).unwrap(),
    )
    .unwrap()
}

async fn me_status(base: &str, token: &str) -> u16 {
    send(client().get(format!("{base}/me")).bearer_auth(token))
        .await
        .status
}

fn assert_no_secret(text: &str, secret: &str) {
    assert!(
        !text.contains(secret),
        "the secret appears in the output:\n{text}"
    );
}

// ---------------------------------------------------------------- the process, refused

#[test]
fn production_without_a_secret_refuses_naming_the_variable() {
    let out = run_refused(&[("SHIELDWALL_PROFILE", "production")]);
    assert!(
        out.contains("error: SHIELDWALL_JWT_SECRET is not set"),
        "{out}"
    );
    assert!(out.contains("SHIELDWALL_JWT_SECRET_FILE"), "{out}");
    // no development secret was generated
    assert!(!out.contains("DEVELOPMENT SECRET"), "{out}");
}

#[test]
fn a_short_secret_is_refused_by_name_and_rule_and_never_printed() {
    for profile in ["production", "development"] {
        let out = run_refused(&[
            ("SHIELDWALL_PROFILE", profile),
            ("SHIELDWALL_JWT_SECRET", SHORT),
        ]);
        assert!(
            out.contains("error: SHIELDWALL_JWT_SECRET: the secret is 19 bytes; at least 32 random bytes are required"),
            "{profile}: {out}"
        );
        assert_no_secret(&out, SHORT);
    }
    // the same from a file, named by the _FILE variable
    let dir = tmpdir("short-file");
    let file = dir.join("jwt");
    std::fs::write(&file, format!("{SHORT}\n")).unwrap();
    let out = run_refused_in(
        &dir,
        &[
            ("SHIELDWALL_PROFILE", "production"),
            ("SHIELDWALL_JWT_SECRET_FILE", file.to_str().unwrap()),
        ],
    );
    assert!(
        out.contains("error: SHIELDWALL_JWT_SECRET_FILE: the secret is 19 bytes; at least 32"),
        "{out}"
    );
    assert_no_secret(&out, SHORT);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn debug_routes_are_refused_in_production_by_name() {
    let out = run_refused(&[
        ("SHIELDWALL_PROFILE", "production"),
        ("SHIELDWALL_JWT_SECRET", STRONG),
        ("SHIELDWALL_DEBUG_ROUTES", "1"),
    ]);
    assert!(out.contains("error: SHIELDWALL_DEBUG_ROUTES: "), "{out}");
    assert!(out.contains("production profile refuses"), "{out}");
    assert_no_secret(&out, STRONG);
}

#[test]
fn development_secrets_are_refused_in_production() {
    // the kind of secret the quickstart generates for itself, copied into the variable
    let generated = Secret::generate_development();
    for secret in [
        generated.expose().as_str(),
        "changeme-changeme-changeme-changeme",
        "your-256-bit-secret-your-256-bit-secret",
    ] {
        let out = run_refused(&[
            ("SHIELDWALL_PROFILE", "production"),
            ("SHIELDWALL_JWT_SECRET", secret),
        ]);
        assert!(out.contains("error: SHIELDWALL_JWT_SECRET: the "), "{out}");
        assert!(
            out.contains("is a development secret or a weak value"),
            "{out}"
        );
        assert_no_secret(&out, secret);
    }
}

#[test]
fn secret_and_secret_file_together_are_refused() {
    let out = run_refused(&[
        ("SHIELDWALL_JWT_SECRET", STRONG),
        ("SHIELDWALL_JWT_SECRET_FILE", "/run/secrets/jwt"),
    ]);
    assert!(
        out.contains("error: SHIELDWALL_JWT_SECRET and SHIELDWALL_JWT_SECRET_FILE are both set"),
        "{out}"
    );
    assert_no_secret(&out, STRONG);
}

#[test]
fn an_unreadable_secret_file_is_named_with_its_path() {
    let out = run_refused(&[
        ("SHIELDWALL_PROFILE", "production"),
        ("SHIELDWALL_JWT_SECRET_FILE", "/no/such/dir/jwt-secret"),
    ]);
    assert!(
        out.contains("error: SHIELDWALL_JWT_SECRET_FILE: cannot open /no/such/dir/jwt-secret"),
        "{out}"
    );
}

#[test]
fn a_bad_profile_is_refused_by_name() {
    let out = run_refused(&[("SHIELDWALL_PROFILE", "prod-eu")]);
    assert!(
        out.contains("error: SHIELDWALL_PROFILE: \"prod-eu\""),
        "{out}"
    );
}

// ---------------------------------------------------------------- the process, serving

#[tokio::test]
async fn a_secret_file_works_in_production_and_never_prints() {
    let dir = tmpdir("file");
    let file = dir.join("jwt-secret");
    // as `echo "$SECRET" > file` writes it: the trailing newline is not part of the secret
    std::fs::write(&file, format!("{STRONG}\n")).unwrap();
    let qs = Started::start(
        &dir,
        &[
            ("SHIELDWALL_PROFILE", "production"),
            ("SHIELDWALL_JWT_SECRET_FILE", file.to_str().unwrap()),
        ],
    );
    let good = mint(STRONG.as_bytes(), QS_ISS, QS_AUD, "carol");
    assert_eq!(me_status(&qs.base, &good).await, 200);
    let with_newline = mint(format!("{STRONG}\n").as_bytes(), QS_ISS, QS_AUD, "carol");
    assert_eq!(me_status(&qs.base, &with_newline).await, 401);
    let out = qs.stop();
    assert!(!out.contains("DEVELOPMENT SECRET"), "{out}");
    assert_no_secret(&out, STRONG);
    let _ = std::fs::remove_dir_all(dir);
}

/// Any JWT (three base64url parts) in `text`.
fn jwts(text: &str) -> Vec<&str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
        .filter(|w| w.split('.').count() == 3 && w.starts_with("eyJ"))
        .collect()
}

/// A production server never prints a credential: the quickstart's ready-to-paste demo
/// tokens (an admin among them) are for development only.
#[tokio::test]
async fn production_prints_no_tokens() {
    let dir = tmpdir("prod-tokens");
    let qs = Started::start(
        &dir,
        &[
            ("SHIELDWALL_PROFILE", "production"),
            ("SHIELDWALL_JWT_SECRET", STRONG),
        ],
    );
    let res = send(client().get(format!("{}/health", qs.base))).await;
    assert_eq!(res.status, 200);
    let out = qs.stop();
    assert!(jwts(&out).is_empty(), "a token was printed:\n{out}");
    assert!(out.contains("no demo tokens"), "{out}");
    // the development quickstart does print them (so the check above can see one)
    let dev = Started::start(&dir, &[("SHIELDWALL_JWT_SECRET", STRONG)]);
    let out = dev.stop();
    assert_eq!(jwts(&out).len(), 2, "{out}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn development_needs_no_setup_and_says_so() {
    let dir = tmpdir("dev");
    let qs = Started::start(&dir, &[]);
    let res = send(client().get(format!("{}/health", qs.base))).await;
    assert_eq!(res.status, 200);
    let out = qs.stop();
    assert!(out.contains("!!! DEVELOPMENT SECRET"), "{out}");
    assert!(
        out.contains("SHIELDWALL_PROFILE=production refuses to start like this"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn debug_routes_list_the_policies_in_development() {
    let dir = tmpdir("debug");
    let qs = Started::start(
        &dir,
        &[
            ("SHIELDWALL_JWT_SECRET", STRONG),
            ("SHIELDWALL_DEBUG_ROUTES", "true"),
        ],
    );
    let res = send(client().get(format!("{}/_debug/routes", qs.base))).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let routes = res.json();
    let routes = routes.as_array().unwrap();
    assert_eq!(routes.len(), 3, "{}", res.text);
    let create = routes
        .iter()
        .find(|r| r["handler"] == "create_user")
        .unwrap();
    assert_eq!(create["method"], "POST");
    assert_eq!(create["path"], "/users");
    assert_eq!(create["roles"], json!(["admin"]));
    assert_eq!(create["rates"][0]["quota"], "5/min");
    let get = routes.iter().find(|r| r["handler"] == "get_user").unwrap();
    assert_eq!(get["allow"], "any([role(\"admin\"), owner(\"id\")])");
    // security headers apply to it like to every route
    assert!(res.header("x-content-type-options").is_some());
    let out = qs.stop();
    assert_no_secret(&out, STRONG);

    // off by default
    let qs = Started::start(&dir, &[("SHIELDWALL_JWT_SECRET", STRONG)]);
    let res = send(client().get(format!("{}/_debug/routes", qs.base))).await;
    assert_eq!(res.status, 404);
    drop(qs);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn dotenv_is_read_in_development_only_and_never_overrides() {
    let dir = tmpdir("dotenv");
    std::fs::write(
        dir.join(".env"),
        format!("# local settings\nSHIELDWALL_JWT_SECRET={STRONG}\n"),
    )
    .unwrap();

    // development: the secret comes from .env
    let qs = Started::start(&dir, &[]);
    let token = mint(STRONG.as_bytes(), QS_ISS, QS_AUD, "dave");
    assert_eq!(me_status(&qs.base, &token).await, 200);
    let out = qs.stop();
    assert!(!out.contains("DEVELOPMENT SECRET"), "{out}");
    assert_no_secret(&out, STRONG);

    // a variable of the real environment wins over .env
    let other = "Zx9Lq2Wm8Rt4Yp6Vn1Kb3Hc5Jd7Fg0SaQwErTyUiOpAsDfGh";
    let qs = Started::start(&dir, &[("SHIELDWALL_JWT_SECRET", other)]);
    let token_env = mint(other.as_bytes(), QS_ISS, QS_AUD, "dave");
    assert_eq!(me_status(&qs.base, &token_env).await, 200);
    assert_eq!(me_status(&qs.base, &token).await, 401);
    drop(qs);

    // production never reads .env
    let out = run_refused_in(&dir, &[("SHIELDWALL_PROFILE", "production")]);
    assert!(
        out.contains("error: SHIELDWALL_JWT_SECRET is not set"),
        "{out}"
    );

    // a .env line that does not parse is reported by number, not text
    std::fs::write(dir.join(".env"), "A=1\nSECRET_TEXT_1234 'unterminated\n").unwrap();
    let out = run_refused_in(&dir, &[]);
    assert!(
        out.contains("error: .env: line 2 of .env does not parse"),
        "{out}"
    );
    assert!(!out.contains("SECRET_TEXT_1234"), "{out}");
    let _ = std::fs::remove_dir_all(dir);
}

// ---------------------------------------------------------------- from_env() with no code for the secret

#[secure(get "/me", auth = "jwt")]
async fn me(user: Principal) -> String {
    user.subject().to_string()
}

#[secure(get "/health", public)]
async fn health() -> &'static str {
    "ok"
}

const CHILD: &str = "SHIELDWALL_SECRETS_TEST_CHILD";

/// Run one test of this binary in a child process with these variables: the process
/// environment is set before anything starts, as in a real deployment.
fn run_child(test: &str, vars: &[(&str, &str)]) -> (bool, String) {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env_remove("SHIELDWALL_JWT_SECRET")
        .env_remove("SHIELDWALL_JWT_SECRET_FILE")
        .env_remove("SHIELDWALL_PROFILE")
        .env_remove("SHIELDWALL_PROFILE_OVERRIDE")
        .env_remove("SHIELDWALL_ENCRYPTION_KEYS")
        .env_remove("SHIELDWALL_ENCRYPTION_KEYS_FILE")
        .env_remove(CHILD_SECRET)
        .current_dir(tmpdir("child"));
    for (k, v) in vars {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn child_from_env_serves() {
    if std::env::var(CHILD).is_err() {
        return;
    }
    let app = Shieldwall::from_env()
        .unwrap()
        .routes(routes![me, health])
        .build()
        .unwrap();
    let base = serve(app).await;
    let secret = std::fs::read_to_string(std::env::var("SECRET_PATH_FOR_TEST").unwrap()).unwrap();
    let secret = secret.trim_end_matches('\n');
    let ok = mint(secret.as_bytes(), "https://idp.test", "svc", "erin");
    assert_eq!(me_status(&base, &ok).await, 200);
    let wrong_aud = mint(secret.as_bytes(), "https://idp.test", "other", "erin");
    assert_eq!(me_status(&base, &wrong_aud).await, 401);
    println!("CHILD-OK");
}

#[tokio::test]
async fn child_from_env_refuses() {
    if std::env::var(CHILD).is_err() {
        return;
    }
    let e = Shieldwall::from_env()
        .unwrap()
        .routes(routes![me, health])
        .build()
        .unwrap_err();
    println!("CHILD-ERR {e}");
}

#[test]
fn from_env_configures_the_jwt_without_code() {
    let dir = tmpdir("from-env");
    let file = dir.join("secret");
    std::fs::write(&file, format!("{STRONG}\n")).unwrap();
    let path = file.to_str().unwrap();
    let (ok, out) = run_child(
        "child_from_env_serves",
        &[
            ("SHIELDWALL_PROFILE", "production"),
            ("SHIELDWALL_JWT_SECRET_FILE", path),
            ("SHIELDWALL_JWT_ISSUER", "https://idp.test"),
            ("SHIELDWALL_JWT_AUDIENCE", "svc"),
            ("SECRET_PATH_FOR_TEST", path),
        ],
    );
    assert!(ok && out.contains("CHILD-OK"), "{out}");

    // production, a route needing JWT, no secret: refused naming the variable
    let (ok, out) = run_child(
        "child_from_env_refuses",
        &[("SHIELDWALL_PROFILE", "production")],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("CHILD-ERR SHIELDWALL_JWT_SECRET: not set, and route GET /me (`me`) needs JWT authentication"),
        "{out}"
    );
    // development: the ordinary build error, which names the variable too
    let (ok, out) = run_child("child_from_env_refuses", &[]);
    assert!(ok, "{out}");
    assert!(
        out.contains("CHILD-ERR route GET /me (`me`) requires a JWT bearer token")
            && out.contains("SHIELDWALL_JWT_SECRET"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

// ---------------------------------------------------------------- in process

/// A `tracing` subscriber writing into a buffer, for the duration of `f`.
fn captured_logs(f: impl FnOnce()) -> String {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    let bytes = buf.0.lock().unwrap().clone();
    String::from_utf8(bytes).unwrap()
}

#[test]
fn secrets_never_format_or_log_in_clear() {
    let secret = Secret::new(STRONG.to_string());
    let bytes = Secret::new(STRONG.as_bytes().to_vec());

    #[derive(Debug)]
    #[allow(dead_code)]
    struct DbConfig {
        url: String,
        password: Secret<String>,
        extra: Option<Secret<Vec<u8>>>,
    }
    let config = DbConfig {
        url: "postgres://db".into(),
        password: secret.clone(),
        extra: Some(bytes.clone()),
    };
    let texts = [
        format!("{secret}"),
        format!("{secret:?}"),
        format!("{secret:#?}"),
        format!("{bytes:?}"),
        format!("{config:?}"),
        format!("{config:#?}"),
        format!("{:?}", vec![secret.clone()]),
    ];
    for t in &texts {
        assert_no_secret(t, STRONG);
        assert!(t.contains("Secret([REDACTED])"), "{t}");
    }
    // nor as a list of bytes, the way a derived Debug of a Vec<u8> would show it
    let as_bytes = format!("{:?}", &STRONG.as_bytes()[..8]);
    let as_bytes = as_bytes.trim_matches(['[', ']']);
    assert!(!format!("{config:?}").contains(as_bytes), "{config:?}");

    let logs = captured_logs(|| {
        tracing::info!(password = ?secret, "connecting");
        tracing::info!(password = %secret, "connecting");
        tracing::warn!("config: {config:?}");
        tracing::error!(?config, "failed");
    });
    // one per secret rendered: 1 + 1 + 2 + 2
    assert_eq!(logs.matches("Secret([REDACTED])").count(), 6, "{logs}");
    assert_no_secret(&logs, STRONG);

    // a JWT configuration and the app builder holding it
    let jwt = Jwt::hs256(secret.expose().as_bytes().to_vec())
        .issuer("me")
        .audience("api");
    assert_no_secret(&format!("{jwt:?}"), STRONG);
    let builder = Shieldwall::new().jwt(jwt).routes(routes![me]);
    assert_no_secret(&format!("{builder:?}"), STRONG);
}

#[test]
fn bad_secret_files_never_show_their_contents() {
    let dir = tmpdir("bad-files");
    let not_utf8 = dir.join("binary");
    std::fs::write(&not_utf8, b"TOPSECRET-0123456789\xff\xfe\n").unwrap();
    let huge = dir.join("huge");
    std::fs::write(&huge, "TOPSECRET-".repeat(8000)).unwrap();
    let empty = dir.join("empty");
    std::fs::write(&empty, "\n").unwrap();

    for (path, why) in [
        (&not_utf8, "is not UTF-8 text"),
        (&huge, "is larger than 65536 bytes"),
        (&empty, "is empty"),
        (&dir, "cannot read"),
    ] {
        let p = path.to_str().unwrap();
        let e = Secret::from_file(path).unwrap_err();
        let vars = |n: &str| (n == "MY_SECRET_FILE").then(|| p.to_string());
        let from_var = Secret::from_vars("MY_SECRET", vars).unwrap_err();
        for text in [
            e.to_string(),
            format!("{e:?}"),
            from_var.to_string(),
            format!("{from_var:?}"),
        ] {
            assert!(!text.contains("TOPSECRET"), "{text}");
            assert!(text.contains(p), "names the file: {text}");
            assert!(text.contains(why), "{text}");
        }
        assert!(from_var.to_string().starts_with("MY_SECRET_FILE: "));
        assert!(matches!(from_var, SecretError::Unreadable { .. }));
    }
    // and a good one: one trailing newline removed, nothing else
    let good = dir.join("good");
    std::fs::write(&good, "  spaced secret \r\n").unwrap();
    assert_eq!(
        Secret::from_file(&good).unwrap().expose(),
        "  spaced secret "
    );
    let _ = std::fs::remove_dir_all(dir);
}

struct NoUsers;

impl UserStore for NoUsers {
    fn find<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Option<UserRecord>, String>> {
        Box::pin(async { Ok(None) })
    }
}

fn production_refusal(e: BuildError) -> ProductionError {
    match e {
        BuildError::Production(p) => p,
        other => panic!("expected a production refusal, got {other}"),
    }
}

#[test]
fn the_production_profile_refuses_in_process() {
    let dev = Secret::generate_development();
    // a development secret in code
    let e = Shieldwall::new()
        .profile(Profile::Production)
        .jwt(Jwt::hs256(dev.expose().as_bytes().to_vec()))
        .routes(routes![me])
        .build()
        .unwrap_err();
    assert_no_secret(&e.to_string(), dev.expose());
    let p = production_refusal(e);
    assert_eq!(
        (p.refusal, p.setting),
        (Refusal::DevelopmentSecret, "SHIELDWALL_JWT_SECRET")
    );
    // ... also in a token issuer
    let e = Shieldwall::new()
        .profile(Profile::Production)
        .jwt(common::jwt())
        .tokens(TokenEndpoint::new(
            TokenIssuer::hs256(dev.expose().as_bytes().to_vec()),
            NoUsers,
        ))
        .build()
        .unwrap_err();
    assert_eq!(production_refusal(e).refusal, Refusal::DevelopmentSecret);
    // the same configuration is fine in development (said in code: this process has
    // declared production above, which every builder without a profile of its own follows)
    assert!(
        Shieldwall::new()
            .profile(Profile::Development)
            .jwt(Jwt::hs256(dev.expose().as_bytes().to_vec()))
            .routes(routes![me])
            .build()
            .is_ok()
    );
    // missing secret
    let e = Shieldwall::new()
        .profile(Profile::Production)
        .routes(routes![me, health])
        .build()
        .unwrap_err();
    let p = production_refusal(e);
    assert_eq!(
        (p.refusal, p.setting),
        (Refusal::MissingSecret, "SHIELDWALL_JWT_SECRET")
    );
    // a public-only app needs no secret
    assert!(
        Shieldwall::new()
            .profile(Profile::Production)
            .routes(routes![health])
            .build()
            .is_ok()
    );
    // debug routes, enabled in code
    let e = Shieldwall::new()
        .profile(Profile::Production)
        .debug_routes(true)
        .build()
        .unwrap_err();
    let p = production_refusal(e);
    assert_eq!(
        (p.refusal, p.setting),
        (Refusal::DebugRoutes, "SHIELDWALL_DEBUG_ROUTES")
    );
    assert!(p.why.contains("`.debug_routes(true)`"), "{}", p.why);
    // a short secret is refused in every profile
    let e = Shieldwall::new()
        .profile(Profile::Production)
        .jwt(Jwt::hs256(b"short".to_vec()))
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("at least 32"), "{e}");
}

#[secure(post "/_debug/routes", public)]
async fn squatter() -> &'static str {
    "mine"
}

#[test]
fn the_debug_path_is_not_taken_silently() {
    let e = Shieldwall::new()
        .debug_routes(true)
        .routes(routes![squatter])
        .build()
        .unwrap_err();
    assert!(
        matches!(
            e,
            BuildError::DuplicateRoute {
                path: "/_debug/routes",
                first: "squatter",
                ..
            }
        ),
        "{e}"
    );
    assert!(Shieldwall::new().routes(routes![squatter]).build().is_ok());
}

// ---------------------------------------------------------------- token issuer secrets

/// Finding 8: the token issuer signs with its own HMAC secret. When the app also configures
/// its own `.jwt(...)`, that secret is not the verification key of the app, yet it signs
/// every access and refresh token: `build()` refuses it when short, exactly like a short
/// verification secret, whichever order the builder calls come in and in every profile.
#[test]
fn a_short_token_issuer_secret_is_refused_beside_the_apps_jwt() {
    let short = b"Vq3mP8xZr2LkT9wB4nYc7HsJd1FgA6e".to_vec(); // 31 bytes
    let enough = b"Vq3mP8xZr2LkT9wB4nYc7HsJd1FgA6eU".to_vec(); // 32 bytes
    let endpoint = |secret: &[u8]| TokenEndpoint::new(TokenIssuer::hs256(secret.to_vec()), NoUsers);
    for profile in [Profile::Development, Profile::Production] {
        let builds = [
            Shieldwall::new()
                .profile(profile)
                .jwt(Jwt::hs256(STRONG.as_bytes().to_vec()))
                .tokens(endpoint(&short)),
            Shieldwall::new()
                .profile(profile)
                .tokens(endpoint(&short))
                .jwt(Jwt::hs256(STRONG.as_bytes().to_vec())),
        ];
        for app in builds {
            let e = app.routes(routes![me]).build().unwrap_err();
            assert!(
                matches!(
                    e,
                    BuildError::Jwt(shieldwall::auth::jwt::JwtConfigError::HmacSecretTooShort {
                        len: 31,
                        min: 32,
                        ..
                    })
                ),
                "{profile}: {e}"
            );
            assert!(e.to_string().contains("at least 32 random bytes"), "{e}");
        }
        // the same secret as the only JWT: refused the same way
        let e = Shieldwall::new()
            .profile(profile)
            .tokens(endpoint(&short))
            .build()
            .unwrap_err();
        assert!(
            matches!(
                e,
                BuildError::Jwt(shieldwall::auth::jwt::JwtConfigError::HmacSecretTooShort {
                    len: 31,
                    ..
                })
            ),
            "{e}"
        );
        // 32 bytes is enough, beside the app's JWT or alone
        let built = Shieldwall::new()
            .profile(profile)
            .jwt(Jwt::hs256(STRONG.as_bytes().to_vec()))
            .tokens(endpoint(&enough))
            .routes(routes![me])
            .build();
        assert!(built.is_ok(), "{profile}: {:?}", built.err());
    }
}

// ---------------------------------------------------------------- one profile rule

/// A secret nobody sets: `Secret::from_env_or_development` generates it in development only.
const CHILD_SECRET: &str = "SHIELDWALL_CHILD_SECRET";

/// Log lines of a child test go to its stdout, where the parent reads them.
fn child_logs() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stdout)
        .with_ansi(false)
        .init();
}

/// The code says production; the environment may say something else. What do the secrets,
/// the keyring and the builder make of it?
#[tokio::test]
async fn child_code_says_production() {
    if std::env::var(CHILD).is_err() {
        return;
    }
    child_logs();
    let app = match Shieldwall::new().profile(Profile::Production).env() {
        Ok(app) => app,
        Err(e) => {
            println!("ENV-ERR {e}");
            return;
        }
    };
    match Keyring::from_env_or_development() {
        Ok(k) => println!("KEYRING ok development={}", k.is_development()),
        Err(e) => println!("KEYRING-ERR {e}"),
    }
    match Secret::from_env_or_development(CHILD_SECRET) {
        Ok(s) => println!("SECRET ok development={}", s.is_development()),
        Err(e) => println!("SECRET-ERR {e}"),
    }
    match app.debug_routes(true).routes(routes![health]).build() {
        Ok(_) => println!("BUILD ok"),
        Err(e) => println!("BUILD-ERR {e}"),
    }
}

/// A development value is generated before the code says production.
#[tokio::test]
async fn child_development_value_then_production() {
    if std::env::var(CHILD).is_err() {
        return;
    }
    child_logs();
    if std::env::var("CHILD_MAKES").as_deref() == Ok("keyring") {
        assert!(Keyring::from_env_or_development().unwrap().is_development());
    } else {
        assert!(
            Secret::from_env_or_development(CHILD_SECRET)
                .unwrap()
                .is_development()
        );
    }
    match Shieldwall::new()
        .profile(Profile::Production)
        .routes(routes![health])
        .build()
    {
        Ok(_) => println!("BUILD ok"),
        Err(e) => println!("BUILD-ERR {e}"),
    }
}

/// Whether a line of the child's output holds `what` (libtest prints the test's name
/// before its first line of output).
fn has(out: &str, what: &str) -> bool {
    out.lines().any(|l| l.contains(what))
}

/// Finding 16: a production profile set in code is the process's profile. It reaches
/// `Secret::from_env_or_development` and `Keyring::from_env_or_development` (no random
/// per-process value), `SHIELDWALL_PROFILE=development` cannot lower it, and only the
/// explicit `SHIELDWALL_PROFILE_OVERRIDE=development` can, which is logged.
#[test]
fn a_production_profile_set_in_code_reaches_secrets_and_keyrings() {
    for env in [vec![], vec![("SHIELDWALL_PROFILE", "development")]] {
        let (ok, out) = run_child("child_code_says_production", &env);
        assert!(ok, "{env:?}: {out}");
        assert!(
            has(&out, "KEYRING-ERR SHIELDWALL_ENCRYPTION_KEYS is not set"),
            "{env:?}: {out}"
        );
        assert!(
            has(&out, "SECRET-ERR SHIELDWALL_CHILD_SECRET is not set"),
            "{env:?}: {out}"
        );
        assert!(
            has(&out, "BUILD-ERR SHIELDWALL_DEBUG_ROUTES: "),
            "{env:?}: {out}"
        );
        assert!(!out.contains("development=true"), "{env:?}: {out}");
    }
    // the environment's `development` is not silently dropped either: it is logged
    let (_, out) = run_child(
        "child_code_says_production",
        &[("SHIELDWALL_PROFILE", "development")],
    );
    assert!(
        out.contains("SHIELDWALL_PROFILE=development is ignored"),
        "{out}"
    );

    // the explicit override lowers it, and says so
    for env in [
        vec![("SHIELDWALL_PROFILE_OVERRIDE", "development")],
        vec![
            ("SHIELDWALL_PROFILE_OVERRIDE", "development"),
            ("SHIELDWALL_PROFILE", "development"),
        ],
    ] {
        let (ok, out) = run_child("child_code_says_production", &env);
        assert!(ok, "{env:?}: {out}");
        assert!(has(&out, "KEYRING ok development=true"), "{env:?}: {out}");
        assert!(has(&out, "SECRET ok development=true"), "{env:?}: {out}");
        assert!(has(&out, "BUILD ok"), "{env:?}: {out}");
        assert!(
            out.contains("WARN")
                && out.contains(
                    "SHIELDWALL_PROFILE_OVERRIDE=development overrides the production profile set in code"
                ),
            "{env:?}: {out}"
        );
    }
    // ... but not a production profile the environment asks for: that is a contradiction
    let (ok, out) = run_child(
        "child_code_says_production",
        &[
            ("SHIELDWALL_PROFILE_OVERRIDE", "development"),
            ("SHIELDWALL_PROFILE", "production"),
        ],
    );
    assert!(ok, "{out}");
    assert!(has(&out, "ENV-ERR SHIELDWALL_PROFILE_OVERRIDE: "), "{out}");
    // and the override overrides nothing but `development`
    let (ok, out) = run_child(
        "child_code_says_production",
        &[("SHIELDWALL_PROFILE_OVERRIDE", "staging")],
    );
    assert!(ok, "{out}");
    assert!(has(&out, "ENV-ERR SHIELDWALL_PROFILE_OVERRIDE: "), "{out}");
}

/// Finding 16 (order): a development keyring or secret generated before the code declared
/// production is refused when the production app builds, naming what to set.
#[test]
fn a_development_value_made_before_production_is_declared_is_refused() {
    let (ok, out) = run_child(
        "child_development_value_then_production",
        &[("CHILD_MAKES", "keyring")],
    );
    assert!(ok, "{out}");
    assert!(
        has(
            &out,
            "BUILD-ERR SHIELDWALL_ENCRYPTION_KEYS: a development keyring was generated"
        ),
        "{out}"
    );
    let (ok, out) = run_child(
        "child_development_value_then_production",
        &[("CHILD_MAKES", "secret")],
    );
    assert!(ok, "{out}");
    assert!(
        has(
            &out,
            "BUILD-ERR SHIELDWALL_CHILD_SECRET: a development secret was generated"
        ),
        "{out}"
    );
}

// ---------------------------------------------------------------- published and weak values

/// Values published as examples or defaults by the tools and tutorials people copy from.
/// An attacker tries these first: the production profile refuses every one of them.
const WELL_KNOWN: &[(&str, &str)] = &[
    // jwt.io's debugger: the HS256/384/512 secrets it pre-fills today, and the old one.
    ("a-string-secret-at-least-256-bits-long", "jwt.io, HS256"),
    (
        "a-valid-string-secret-that-is-at-least-384-bits-long",
        "jwt.io, HS384",
    ),
    (
        "a-valid-string-secret-that-is-at-least-512-bits-long-which-is-very-long",
        "jwt.io, HS512",
    ),
    ("your-256-bit-secret", "jwt.io, former HS256 default"),
    ("your-512-bit-secret", "jwt.io, former HS512 default"),
    // The JWT secret `supabase start` prints for every local project.
    (
        "super-secret-jwt-token-with-at-least-32-characters-long",
        "Supabase CLI",
    ),
    // FastAPI's "OAuth2 with Password, Bearer with JWT tokens" tutorial.
    (
        "09d25e094faa6ca2556c818166b7a9563b93f7099f6f0f4caa6cf63b88e8d3e7",
        "FastAPI docs",
    ),
    // The key of countless Spring Boot + JJWT tutorials.
    (
        "404E635266556A586E3272357538782F413F4428472B4B6250645367566B5970",
        "Spring Boot JWT tutorials",
    ),
    // ASP.NET Core JWT tutorials.
    (
        "this is my custom Secret key for authentication",
        "ASP.NET Core tutorials",
    ),
    (
        "This is my top secret key for jwt token",
        "ASP.NET Core tutorials",
    ),
    // NestJS's authentication recipe.
    (
        "DO NOT USE THIS VALUE. INSTEAD, CREATE A COMPLEX SECRET AND KEEP IT SAFE OUTSIDE OF THE SOURCE CODE.",
        "NestJS docs",
    ),
    // Auth0's express-jwt and node-jsonwebtoken READMEs.
    (
        "shhhhhhared-secret-shhhhhhared-secret",
        "express-jwt README, doubled",
    ),
    // Flask Mega-Tutorial's SECRET_KEY fallback, long enough for HS256.
    (
        "you-will-never-guess-you-will-never-guess",
        "Flask Mega-Tutorial, doubled",
    ),
    // Django's generated development keys start like this.
    (
        "django-insecure-9x!w2@k#p$r7z^m&q*v(1)n_b+c=d-e3f4g5h6j7",
        "Django startproject",
    ),
    // xkcd 936, the passphrase everyone has seen.
    ("correct horse battery staple", "xkcd 936"),
];

/// Values long enough for HS256 whose entropy is low: repetitions, sequences, tiny
/// alphabets, keyboard walks.
const LOW_ENTROPY: &[&str] = &[
    "passwordpasswordpasswordpassword",
    "changeme-changeme-changeme-changeme",
    "abcabcabcabcabcabcabcabcabcabcabcabc",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "0123456789abcdef0123456789abcdef",
    "12345678901234567890123456789012",
    "abcdefghijklmnopqrstuvwxyz012345",
    "ZYXWVUTSRQPONMLKJIHGFEDCBA987654",
    "qwertyuiopasdfghjklzxcvbnm123456",
    "0110100110010110100101100110100110010110",
    "73919450286615037248199305716284",
    "Password123!Password123!Password123!",
];

fn production_refuses_jwt_secret(secret: &[u8]) -> Result<(), String> {
    let refused = |e: BuildError| match e {
        BuildError::Production(p) if p.refusal == Refusal::DevelopmentSecret => Ok(()),
        BuildError::Jwt(shieldwall::auth::jwt::JwtConfigError::HmacSecretTooShort { .. }) => Ok(()),
        other => Err(format!("refused for another reason: {other}")),
    };
    // as the app's verification secret
    match Shieldwall::new()
        .profile(Profile::Production)
        .jwt(Jwt::hs256(secret.to_vec()).issuer("me").audience("api"))
        .routes(routes![me])
        .build()
    {
        Ok(_) => return Err("accepted as the app's JWT secret".into()),
        Err(e) => refused(e)?,
    }
    // as a token issuer's signing secret, beside a strong verification secret
    match Shieldwall::new()
        .profile(Profile::Production)
        .jwt(Jwt::hs256(STRONG.as_bytes().to_vec()))
        .tokens(TokenEndpoint::new(
            TokenIssuer::hs256(secret.to_vec()),
            NoUsers,
        ))
        .build()
    {
        Ok(_) => Err("accepted as the token issuer's secret".into()),
        Err(e) => refused(e),
    }
}

/// `SHIELDWALL_ENCRYPTION_KEYS=k1:<key>` read under this profile.
fn keyring_in(profile: &str, key_b64: &str) -> Result<Keyring, shieldwall::crypto::CryptoError> {
    let spec = format!("k1:{key_b64}");
    let profile = profile.to_string();
    Keyring::from_vars(move |n: &str| match n {
        "SHIELDWALL_PROFILE" => Some(profile.clone()),
        "SHIELDWALL_ENCRYPTION_KEYS" => Some(spec.clone()),
        _ => None,
    })
    .map(Option::unwrap)
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn hex_decode(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// Finding 15: published secrets (jwt.io's current default among them) and low-entropy
/// values are refused by the production profile, as the app's JWT secret and as a token
/// issuer's secret; keys built from them (and the documented example key) are refused as
/// encryption keys.
#[test]
fn well_known_and_low_entropy_values_are_refused_in_production() {
    let mut accepted = Vec::new();
    for (value, source) in WELL_KNOWN
        .iter()
        .copied()
        .chain(LOW_ENTROPY.iter().map(|v| (*v, "low entropy")))
    {
        if !shieldwall::secrets::is_development_value(value.as_bytes()) {
            accepted.push(format!("{value:?} ({source}): not a development value"));
        }
        if let Err(why) = production_refuses_jwt_secret(value.as_bytes()) {
            accepted.push(format!("{value:?} ({source}): {why}"));
        }
    }
    // 32-byte encryption keys: the one in crypto.rs's docs, and keys made of the values above
    let mut keys = vec![
        (
            "7PS0YY6E4tLZ3+y8ZiI6MSRnh/SWx2W6tdbK9QamFvI=".to_string(),
            "crypto.rs docs",
        ),
        (b64(&(0u8..32).collect::<Vec<_>>()), "bytes 0 to 31"),
        (b64(b"passwordpasswordpasswordpassword"), "text as a key"),
        (
            b64(b"a-string-secret-at-least-256-bit"),
            "jwt.io text as a key",
        ),
        (
            b64(&hex_decode(
                "09d25e094faa6ca2556c818166b7a9563b93f7099f6f0f4caa6cf63b88e8d3e7",
            )),
            "FastAPI docs, as bytes",
        ),
        (
            b64(&hex_decode(
                "404E635266556A586E3272357538782F413F4428472B4B6250645367566B5970",
            )),
            "Spring tutorials, as bytes",
        ),
    ];
    keys.push((b64(&[0x5a; 32]), "one byte repeated"));
    for (key, source) in &keys {
        match keyring_in("production", key) {
            Ok(_) => accepted.push(format!(
                "key {key} ({source}): accepted as an encryption key"
            )),
            Err(e) => {
                let e = e.to_string();
                assert!(
                    e.starts_with("SHIELDWALL_ENCRYPTION_KEYS: key \"k1\""),
                    "{e}"
                );
                assert!(!e.contains(key.as_str()), "{e}");
            }
        }
    }
    assert!(
        accepted.is_empty(),
        "accepted in production:\n{}",
        accepted.join("\n")
    );
}

/// Published and weak values in another dress (attack round 1): the published lists of
/// other tools, a documented example key, keyboard walks, a published value reversed or
/// base64-encoded, and digests of common words, as hex text or as key bytes.
#[test]
fn disguised_weak_values_are_refused_in_production() {
    let secrets: &[(&str, &str)] = &[
        ("reallyreallyreallyreallyverysafe", "PostgREST tutorial"),
        (
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "AWS docs example key",
        ),
        ("1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9", "keyboard walk"),
        ("zaq1xsw2cde3vfr4bgt5nhy6mju7,ki8", "keyboard walk"),
        (
            "YS1zdHJpbmctc2VjcmV0LWF0LWxlYXN0LTI1Ni1iaXRzLWxvbmc=",
            "jwt.io default, base64",
        ),
        (
            "eW91ci0yNTYtYml0LXNlY3JldC15b3VyLTI1Ni1iaXQ",
            "jwt.io old default, base64url",
        ),
        (
            "gnol-stib-652-tsael-ta-terces-gnirts-a",
            "jwt.io default, reversed",
        ),
        ("5f4dcc3b5aa765d61d8327deb882cf99", "md5(\"password\")"),
        (
            "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b",
            "sha256(\"secret\")",
        ),
        (
            "fa9beb99e4029ad5a6615399e7bbae21356086b3",
            "sha1(\"changeme\")",
        ),
        // attack round 3
        (
            "6116487b-cda1-52c2-b5b5-c8022c45e263-6116487b",
            "Directus example SECRET, padded",
        ),
        (
            "09f26e402586e2faa8da4c98a35f1b20d6b033c6097befa8be3486a829587fe2f90a832bd3ff9d42710a4da095a2ce285b009f0c3730cd9b8e1af3eb84df6611",
            "DigitalOcean Express JWT tutorial",
        ),
        (
            "3EK6FD+o0+c7tzBNVfjpMkNDi2yARAAKzQlk8O2IKoxQu4nF7EdAh8s3TwpHwrdWT6R",
            "Hasura docs key",
        ),
        (
            "123e4567-e89b-12d3-a456-426614174000-123e4567",
            "Wikipedia's example UUID",
        ),
        (
            "Lorem ipsum dolor sit amet, consectetur adipiscing elit",
            "filler text",
        ),
        ("$(openssl rand -base64 48)", "an unexpanded command"),
    ];
    let mut accepted = Vec::new();
    for (value, source) in secrets {
        if let Err(why) = production_refuses_jwt_secret(value.as_bytes()) {
            accepted.push(format!("{value:?} ({source}): {why}"));
        }
    }
    // sha256("password") as a 32-byte encryption key
    if keyring_in("production", "XohImNooBHFR0OVvjcYpJ3NgPQ1qq73WKhHvch0VQtg=").is_ok() {
        accepted.push("sha256(\"password\") accepted as an encryption key".into());
    }
    assert!(
        accepted.is_empty(),
        "accepted in production:\n{}",
        accepted.join("\n")
    );
}

/// The refusals are about published and weak values, not about any value: what
/// `openssl rand` makes is accepted, as a secret and as a key.
#[test]
fn random_secrets_and_keys_are_accepted_in_production() {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let mut refused = Vec::new();
    for i in 0..2000 {
        let mut b48 = [0u8; 48];
        rand::fill(&mut b48[..]);
        let b32: [u8; 32] = rand::random();
        let b16: [u8; 16] = rand::random();
        for secret in [
            STANDARD.encode(b48), // openssl rand -base64 48
            URL_SAFE_NO_PAD.encode(b32),
            hex(&b16), // openssl rand -hex 16
            hex(&b32), // openssl rand -hex 32
        ] {
            if shieldwall::secrets::is_development_value(secret.as_bytes()) {
                refused.push(secret.clone());
            }
            if i < 5 {
                let built = Shieldwall::new()
                    .profile(Profile::Production)
                    .jwt(Jwt::hs256(secret.into_bytes()))
                    .routes(routes![me])
                    .build();
                assert!(built.is_ok(), "{:?}", built.err());
            }
        }
        if i < 200 {
            let key = STANDARD.encode(b32);
            if let Err(e) = keyring_in("production", &key) {
                refused.push(format!("key {key}: {e}"));
            }
        }
    }
    assert!(
        refused.is_empty(),
        "random values refused:\n{}",
        refused.join("\n")
    );
}

/// Finding 15 (the quickstart, as a process): jwt.io's current default, a repeated word and
/// FastAPI's documented key stop a production start, naming the variable and the reason,
/// never printing the value.
#[test]
fn well_known_secrets_stop_the_production_quickstart() {
    for secret in [
        "a-string-secret-at-least-256-bits-long",
        "passwordpasswordpasswordpassword",
        "09d25e094faa6ca2556c818166b7a9563b93f7099f6f0f4caa6cf63b88e8d3e7",
    ] {
        let out = run_refused(&[
            ("SHIELDWALL_PROFILE", "production"),
            ("SHIELDWALL_JWT_SECRET", secret),
        ]);
        assert!(out.contains("error: SHIELDWALL_JWT_SECRET: the "), "{out}");
        assert!(
            out.contains("is a development secret or a weak value"),
            "{out}"
        );
        assert_no_secret(&out, secret);
    }
}

// ---------------------------------------------------------------- the project's own docs

/// Text the project publishes: the README and changelog, the examples and benchmarks in
/// full, and the `//!` / `///` docs of every source file.
fn published_texts() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, files);
            } else {
                files.push(path);
            }
        }
    }
    for name in ["README.md", "CHANGELOG.md"] {
        out.push((
            name.to_string(),
            std::fs::read_to_string(root.join(name)).unwrap(),
        ));
    }
    for dir in ["examples", "bench", "benches"] {
        let mut files = Vec::new();
        walk(&root.join(dir), &mut files);
        for f in files {
            if let Ok(text) = std::fs::read_to_string(&f) {
                out.push((f.display().to_string(), text));
            }
        }
    }
    for dir in ["src", "runtime/src", "macros/src"] {
        let mut files = Vec::new();
        walk(&root.join(dir), &mut files);
        for f in files
            .into_iter()
            .filter(|f| f.extension().is_some_and(|e| e == "rs"))
        {
            let text = std::fs::read_to_string(&f).unwrap();
            let docs: Vec<&str> = text
                .lines()
                .filter(|l| {
                    let l = l.trim_start();
                    l.starts_with("//!") || l.starts_with("///")
                })
                .collect();
            out.push((f.display().to_string(), docs.join("\n")));
        }
    }
    out
}

/// What a key-shaped string found in published text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Base64 of exactly 32 bytes: an encryption key (and a secret as text).
    Key,
    /// A secret: long hex, a quoted secret-looking literal, a secret constructor's argument.
    Secret,
    /// Bytes written as `vec![N; M]` in a key constructor.
    Bytes,
}

/// Every key-shaped string in `text`:
///
/// - a run of base64 characters that decodes to exactly 32 bytes (an encryption key);
/// - a run of 32 or more hex digits;
/// - on a line that mentions a secret or a key: a quoted literal of 16 or more characters
///   without spaces that is not code (no `::`, brackets, `/`, `=`, and not a bare
///   identifier);
/// - the quoted argument of a secret or key constructor (`Secret::new`, `hs256`, `hmac`,
///   `from_secret`, `Keyring::parse`, `Keyring::new`), whatever it looks like;
/// - `vec![N; M]` bytes given to `hs256` or `hmac`;
/// - a shell assignment or default of a `…SECRET`/`…KEY`/`…KEYS`/`…PASSWORD` variable.
fn key_shaped(text: &str) -> Vec<(String, Shape)> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let mut out = Vec::new();
    let runs = |line: &str, ok: fn(char) -> bool| -> Vec<String> {
        line.split(|c: char| !ok(c))
            .filter(|t| !t.is_empty())
            .map(String::from)
            .collect()
    };
    for line in text.lines() {
        let lower = line.to_ascii_lowercase();
        for tok in runs(line, |c| c.is_ascii_alphanumeric() || "+/=_-".contains(c)) {
            let bare = tok.trim_end_matches('=');
            if (40..=46).contains(&tok.len())
                && [STANDARD_NO_PAD, URL_SAFE_NO_PAD]
                    .iter()
                    .any(|e| e.decode(bare).is_ok_and(|b| b.len() == 32))
            {
                out.push((tok.clone(), Shape::Key));
            }
        }
        for tok in runs(line, |c| c.is_ascii_hexdigit()) {
            if tok.len() >= 32 {
                out.push((tok, Shape::Secret));
            }
        }
        let quoted = |q: char| -> Vec<String> {
            line.split(q).skip(1).step_by(2).map(String::from).collect()
        };
        if lower.contains("secret") || lower.contains("key") {
            for lit in quoted('"').into_iter().chain(quoted('\'')) {
                let code = lit.contains("::")
                    || lit
                        .chars()
                        .any(|c| c.is_whitespace() || "/{}()[]<>=$?".contains(c))
                    || lit.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if lit.len() >= 16 && !code {
                    out.push((lit, Shape::Secret));
                }
            }
        }
        for ctor in [
            "Secret::new(",
            "Secret::from(",
            "hs256(",
            "hmac(",
            "from_secret(",
            "Keyring::parse(",
            "Keyring::new(",
        ] {
            for (at, _) in line.match_indices(ctor) {
                let rest = line[at + ctor.len()..].trim_start();
                let rest = rest.strip_prefix("String::from(").unwrap_or(rest);
                let rest = rest.strip_prefix('b').unwrap_or(rest);
                if let Some(lit) = rest.strip_prefix('"').and_then(|r| r.split('"').next()) {
                    out.push((lit.to_string(), Shape::Secret));
                }
                if let Some(v) = rest.strip_prefix("vec![") {
                    let v = v.split(']').next().unwrap();
                    if let Some((byte, n)) = v.split_once(';') {
                        let byte: u8 = byte.trim().trim_end_matches("u8").parse().unwrap();
                        let n: usize = n.trim().parse().unwrap();
                        out.push((b64(&vec![byte; n]), Shape::Bytes));
                    }
                }
            }
        }
        for name in ["SECRET", "KEY", "KEYS", "PASSWORD"] {
            for sep in [format!("{name}="), format!("{name}:-")] {
                for (at, _) in line.match_indices(&sep) {
                    let value: String = line[at + sep.len()..]
                        .chars()
                        .take_while(|c| !c.is_whitespace() && !"}'\"`".contains(*c))
                        .collect();
                    // `k1:<base64 …>`, `k2:…`: a description of a value, not one
                    let described = value.contains(['<', '>', '…']);
                    if value.len() >= 8 && !value.starts_with('$') && !described {
                        out.push((value, Shape::Secret));
                    }
                }
            }
        }
    }
    out
}

/// Finding 15: every secret or key that appears in the project's own docs and examples is
/// refused by the production profile — as an HMAC secret (app or issuer), and when it is a
/// 32-byte key, as an encryption key — and the central check calls it a development value.
#[test]
fn every_secret_and_key_in_the_docs_and_examples_is_refused_in_production() {
    use base64::Engine as _;
    let mut found: Vec<(String, Shape, String)> = Vec::new();
    for (file, text) in published_texts() {
        for (value, shape) in key_shaped(&text) {
            if !found.iter().any(|(v, _, _)| *v == value) {
                found.push((value, shape, file.clone()));
            }
        }
    }
    // the scan sees what is known to be there
    for known in [
        "7PS0YY6E4tLZ3+y8ZiI6MSRnh/SWx2W6tdbK9QamFvI=",
        "an-hmac-secret-of-at-least-32-bytes!",
        "0123456789abcdef0123456789abcdef",
        "shieldwall-load-test-secret-0123456789abcdef",
        "correct horse battery staple",
    ] {
        assert!(
            found.iter().any(|(v, _, _)| v == known),
            "the scan missed {known:?}: {found:#?}"
        );
    }
    let mut accepted = Vec::new();
    for (value, shape, file) in &found {
        let bytes = match shape {
            Shape::Bytes => base64::engine::general_purpose::STANDARD
                .decode(value)
                .unwrap(),
            _ => value.as_bytes().to_vec(),
        };
        if !shieldwall::secrets::is_development_value(&bytes) {
            accepted.push(format!("{file}: {value:?} is not a development value"));
        }
        if let Err(why) = production_refuses_jwt_secret(&bytes) {
            accepted.push(format!("{file}: {value:?}: {why}"));
        }
        let key = match shape {
            Shape::Key => Some(value.clone()),
            Shape::Bytes if bytes.len() == 32 => Some(value.clone()),
            Shape::Bytes | Shape::Secret => None,
        };
        if let Some(key) = key
            && keyring_in("production", &key).is_ok()
        {
            accepted.push(format!("{file}: {value:?} accepted as an encryption key"));
        }
    }
    assert!(
        accepted.is_empty(),
        "published values accepted in production:\n{}",
        accepted.join("\n")
    );
    println!("{} key-shaped strings checked", found.len());
}
