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
        assert!(
            out.contains("error: SHIELDWALL_JWT_SECRET: the JWT secret is a development secret"),
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
                .jwt(common::jwt())
                .tokens(endpoint(&short)),
            Shieldwall::new()
                .profile(profile)
                .tokens(endpoint(&short))
                .jwt(common::jwt()),
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
            .jwt(common::jwt())
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
