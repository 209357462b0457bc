//! The `Authorization` header: the bearer scheme and the token68 check, as every
//! authenticated request reads them (`shieldwall_runtime::fuzzing::{bearer, token68}`).
//!
//! Invariants: a value over 8 KiB is refused; a token is found exactly when the first word
//! is `Bearer` (any case) followed by a space, and it is the rest with surrounding
//! whitespace removed, never empty; a non-Bearer scheme is "no bearer credentials";
//! token68 accepts exactly the base64/base64url alphabet plus `.`, `~`, `+`, `/`, `=` and
//! gives back the same bytes; and any accepted token, sent as `Bearer <token>` in any case,
//! with extra spaces, reads back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shieldwall_runtime::auth::jwt::MAX_AUTHORIZATION_LEN;
use shieldwall_runtime::fuzzing::{bearer, token68};

fn token68_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b)
}

fuzz_target!(|data: &[u8]| {
    let result = bearer(data);
    if data.len() > MAX_AUTHORIZATION_LEN {
        assert!(result.is_err(), "an oversized header is refused");
        return;
    }
    let first_word = data.split(|b| *b == b' ').next().unwrap_or_default();
    let is_bearer = first_word.eq_ignore_ascii_case(b"bearer");
    match result {
        Ok(Some(token)) => {
            assert!(is_bearer && data.len() > 6 && data[6] == b' ');
            assert!(!token.is_empty());
            assert_eq!(token, data[7..].trim_ascii());
            // A subslice of the header, not a copy.
            let start = token.as_ptr() as usize - data.as_ptr() as usize;
            assert!(start + token.len() <= data.len());
        }
        Ok(None) => assert!(!is_bearer, "a Bearer value is never read as another scheme"),
        Err(_) => assert!(is_bearer, "only a Bearer value is refused as malformed"),
    }

    // token68 on the raw input: the alphabet decides, and the text is the same bytes.
    match token68(data) {
        Ok(text) => {
            assert_eq!(text.as_bytes(), data);
            assert!(data.iter().all(|b| token68_byte(*b)));
        }
        Err(_) => assert!(!data.iter().all(|b| token68_byte(*b))),
    }
    if !data.is_empty() && token68(data).is_ok() {
        for value in [
            [b"Bearer ".as_slice(), data].concat(),
            [b"bEARER   ".as_slice(), data, b"  ".as_slice()].concat(),
        ] {
            if value.len() <= MAX_AUTHORIZATION_LEN {
                assert_eq!(bearer(&value).ok().flatten(), Some(data));
            }
        }
    }
});
