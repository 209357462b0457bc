//! Compile-time guarantees of `#[secure]`: one trybuild case per mistake in `ui/fail/`,
//! each with the exact diagnostic it must produce, and every accepted form in `ui/pass/`.
//!
//! The `.stderr` files belong to the toolchain pinned in `rust-toolchain.toml`. After a
//! deliberate change to a diagnostic, regenerate them with
//! `TRYBUILD=overwrite cargo test --test ui` and review every changed file.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
