//! Size strings (`body_limit = "64KiB"`): the macro's parser, compiled in from
//! `macros/src/units.rs`.
//!
//! Invariants: an accepted size is 1 B ..= 1 GiB; surrounding whitespace changes nothing;
//! and the size re-rendered in every unit that divides it exactly (`B`, bare, `KB`, `KiB`,
//! `MB`, `MiB`, `GB`, `GiB`, with and without a space) parses back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../macros/src/units.rs"]
#[allow(dead_code)]
mod units;

use units::parse_size;

const UNITS: &[(&str, u64)] = &[
    ("B", 1),
    ("", 1),
    ("KB", 1000),
    ("kB", 1000),
    ("KiB", 1024),
    ("MB", 1_000_000),
    ("MiB", 1 << 20),
    ("GB", 1_000_000_000),
    ("GiB", 1 << 30),
];

fuzz_target!(|data: &[u8]| {
    let Some(text) = shieldwall_fuzz::text(data) else {
        return;
    };
    let parsed = parse_size(text);
    assert_eq!(
        parse_size(&format!(" \t{text}\n ")).ok(),
        parsed.as_ref().ok().copied(),
        "{text:?}"
    );
    let Ok(bytes) = parsed else {
        return;
    };
    assert!((1..=1 << 30).contains(&bytes), "{text:?} → {bytes}");
    for (unit, mult) in UNITS {
        if bytes % mult == 0 {
            for sep in ["", " "] {
                let rendered = format!("{}{sep}{unit}", bytes / mult);
                assert_eq!(parse_size(&rendered), Ok(bytes), "{text:?} → {rendered:?}");
            }
        }
    }
});
