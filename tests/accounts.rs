//! Sessions and accounts against the running `examples/accounts.rs`: the built example is
//! started as a process on 127.0.0.1 with its own SQLite file, driven over real HTTP, and
//! its database is edited directly where an operator (or an attacker with the file) would.
//!
//! Build the example first: `cargo build --all-features --example accounts`.

#![cfg(all(feature = "sqlite", feature = "redis"))]

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::*;

const SECRET: &str = "accounts-sessions-test-secret-0123456789abcdef";

/// A scratch directory with the example's database; removed when dropped.
struct Db {
    dir: PathBuf,
}

impl Db {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "sw-accounts-{name}-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir }
    }
    fn path(&self) -> PathBuf {
        self.dir.join("accounts.db")
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn command(db: &Db, envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(example_bin("accounts"));
    cmd.env_clear()
        .env("SHIELDWALL_DATABASE_URL", db.path())
        .env("SHIELDWALL_JWT_SECRET", SECRET)
        .env(
            "SHIELDWALL_ENCRYPTION_KEYS",
            "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        )
        .env("RUST_LOG", "warn")
        .current_dir(&db.dir);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd
}

/// Start the server on 127.0.0.1:0 and wait until it listens.
fn start(db: &Db, envs: &[(&str, &str)]) -> Example {
    let mut child = command(db, envs)
        .env("SHIELDWALL_ADDR", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines.next().expect("accounts exited").unwrap();
        if let Some(rest) = line.strip_prefix("shieldwall accounts listening on ") {
            break rest.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Example { child, base }
}

async fn token(base: &str, form: &[(&str, &str)]) -> Res {
    send(client().post(format!("{base}/token")).form(form)).await
}

// ---------------------------------------------------------------- finding 7

/// Issue 11, finding 7: Argon2 does not run on the async workers. The example runs with its
/// own multi-threaded runtime (one worker per core); while 50 logins from 50 addresses hash
/// at once, `/health` on another connection keeps answering: p99 under 50 ms. The probe runs
/// on its own thread and runtime, so the test's own work on the 50 logins never delays it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_do_not_stall_other_requests() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};
    let db = Db::new("argon");
    let app = start(&db, &[("SHIELDWALL_TRUSTED_PROXIES", "127.0.0.1")]);
    let base = app.base.clone();
    // warm up the dummy hash unknown users are checked against
    let r = token(
        &base,
        &[
            ("grant_type", "password"),
            ("username", "warm"),
            ("password", "x"),
        ],
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text);

    let done = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let prober = {
        let (done, health) = (done.clone(), format!("{base}/health"));
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let probe = client();
                // warm up the probe's connection
                assert_eq!(send(probe.get(&health)).await.status, 200);
                ready_tx.send(()).unwrap();
                let mut latencies = Vec::new();
                while !done.load(Ordering::Acquire) {
                    let started = Instant::now();
                    let r = send(probe.get(&health)).await;
                    latencies.push(started.elapsed());
                    assert_eq!(r.status, 200, "{}", r.text);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                latencies
            })
        })
    };
    ready_rx.recv().unwrap();

    // One client for the logins (a client is costly to build: not 50 of them mid-storm).
    let logins_client = client();
    let logins: Vec<_> = (0..50)
        .map(|i| {
            let url = format!("{base}/token");
            let c = logins_client.clone();
            tokio::spawn(async move {
                let r = send(
                    c.post(url)
                        .header("x-forwarded-for", format!("10.0.{i}.1"))
                        .form(&[
                            ("grant_type", "password"),
                            ("username", &format!("user{i}")),
                            ("password", "a wrong password"),
                        ]),
                )
                .await;
                (r.status, r.json()["error"].as_str().map(String::from))
            })
        })
        .collect();
    let mut hashed = 0;
    for h in logins {
        match h.await.unwrap() {
            (400, Some(e)) if e == "invalid_grant" => hashed += 1,
            (503, Some(e)) if e == "temporarily_unavailable" => {}
            other => panic!("a login answered {other:?}"),
        }
    }
    done.store(true, Ordering::Release);
    let mut latencies = tokio::task::spawn_blocking(move || prober.join().unwrap())
        .await
        .unwrap();
    assert!(hashed >= 5, "only {hashed} logins reached Argon2");
    latencies.sort();
    eprintln!(
        "{hashed} logins hashed; /health: {} probes, median {:?}, slowest {:?}",
        latencies.len(),
        latencies[latencies.len() / 2],
        &latencies[latencies.len().saturating_sub(4)..]
    );
    let p99 = latencies[(latencies.len() * 99).div_ceil(100) - 1];
    assert!(
        p99 < Duration::from_millis(50),
        "/health p99 was {p99:?} while {hashed} logins hashed ({} probes, slowest {:?})",
        latencies.len(),
        latencies.last().unwrap()
    );
}
