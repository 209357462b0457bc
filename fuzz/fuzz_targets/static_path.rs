//! Static-file paths: the per-segment decoding (`static_files::safe_segments`) and whole
//! `GET`s through a real `StaticService` over a directory made for it, holding files, a
//! dotfile, a dot-directory, a directory, a symlink out of the root and one to the dotfile,
//! beside a secret outside the root.
//!
//! Invariants: accepted segments are each one plain path component (never empty, `.`,
//! `..`, a dot-name, or holding a separator, `%`, `:`, NUL or a control character), so the
//! path they build stays under the root; percent-encoding them again reads back the same
//! segments; and a request is answered 200 only for a path whose segments are accepted, and
//! only with the bytes of one of the three ordinary files: never the secret outside, the
//! dotfile, the dot-directory's file or a directory.
#![no_main]

use std::path::{Component, Path, PathBuf};
use std::sync::LazyLock;

use axum::http::{StatusCode, Uri};
use libfuzzer_sys::fuzz_target;
use shieldwall_runtime::fuzzing::{static_get, static_segments};
use shieldwall_runtime::static_files::{StaticFiles, StaticService};

const SERVED: [&[u8]; 3] = [b"ok-file", b"inner-file", b"space-file"];

static SERVICE: LazyLock<StaticService> = LazyLock::new(|| {
    let base = std::env::temp_dir().join(format!("shieldwall-fuzz-static-{}", std::process::id()));
    let root = base.join("root");
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::create_dir_all(root.join("dir")).unwrap();
    std::fs::write(base.join("secret.txt"), "SECRET-outside").unwrap();
    std::fs::write(root.join("ok.txt"), SERVED[0]).unwrap();
    std::fs::write(root.join("sub").join("inner.css"), SERVED[1]).unwrap();
    std::fs::write(root.join("a b.txt"), SERVED[2]).unwrap();
    std::fs::write(root.join(".env"), "SECRET-dotenv").unwrap();
    std::fs::write(root.join(".git").join("config"), "SECRET-git").unwrap();
    std::os::unix::fs::symlink(base.join("secret.txt"), root.join("leak.txt")).unwrap();
    std::os::unix::fs::symlink(root.join(".env"), root.join("env.txt")).unwrap();
    std::os::unix::fs::symlink("..", root.join("up")).unwrap();
    StaticFiles::new("/static", &root).service().unwrap()
});

/// Percent-encode every byte outside RFC 3986's unreserved set.
fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    if let Some(raw) = shieldwall_fuzz::text(data) {
        if let Some(segments) = static_segments(raw) {
            assert!(!segments.is_empty());
            for s in &segments {
                assert!(!s.is_empty() && !s.starts_with('.'), "{raw:?}: {s:?}");
                assert!(
                    !s.chars()
                        .any(|c| matches!(c, '/' | '\\' | '%' | ':' | '\0') || c.is_control()),
                    "{raw:?}: {s:?}"
                );
            }
            let path: PathBuf = segments.iter().collect();
            let parts: Vec<Component<'_>> = path.components().collect();
            assert_eq!(parts.len(), segments.len(), "{raw:?}: {path:?}");
            assert!(
                parts.iter().all(|c| matches!(c, Component::Normal(_))),
                "{path:?}"
            );
            let root = Path::new("/srv/root");
            assert!(root.join(&path).starts_with(root));
            let again: String = segments.iter().map(|s| format!("/{}", encode(s))).collect();
            assert_eq!(
                static_segments(&again).as_ref(),
                Some(&segments),
                "{again:?}"
            );
        }
    }

    // Whole requests, on the target as the fuzzer wrote it and as a path.
    for target in [data.to_vec(), [b"/".as_slice(), data].concat()] {
        let Some((status, body)) = static_get(&SERVICE, &target) else {
            continue;
        };
        assert!(!status.is_server_error(), "{target:?}: {status}");
        if status == StatusCode::OK {
            assert!(
                SERVED.contains(&body.as_slice()),
                "{target:?} served {body:?}"
            );
            let path = Uri::try_from(target.as_slice()).unwrap().path().to_owned();
            assert!(static_segments(&path).is_some(), "{path:?} was served");
        } else {
            assert!(!body.windows(6).any(|w| w == b"SECRET"), "{target:?}");
        }
    }
});
