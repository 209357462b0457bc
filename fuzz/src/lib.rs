//! Helpers shared by the fuzz targets in `fuzz_targets/`: splitting an input into lines,
//! and HS256 tokens built here, independently of the code under test.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The HS256 secret every JWT target verifies with (32 bytes or more, as the runtime asks).
pub const KEY: &[u8] = b"fuzz-hs256-secret-0123456789abcdef";

/// `data` split on `\n`: inputs that carry several values (header lines, fields) are one
/// value per line, so handwritten corpus files stay readable.
pub fn lines(data: &[u8]) -> Vec<&[u8]> {
    data.split(|b| *b == b'\n').collect()
}

/// The text of `data`, when it is UTF-8.
pub fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url without padding (RFC 7515 §2).
pub fn b64url(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(B64URL[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// base64url without padding, decoded leniently (unused trailing bits ignored), or `None`.
pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = B64URL.iter().position(|x| *x == c)? as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    (bits < 6).then_some(out)
}

/// HMAC-SHA256 of `input` under [`KEY`].
pub fn hs256(input: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY).expect("HMAC takes any key length");
    mac.update(input);
    mac.finalize().into_bytes().to_vec()
}

/// A compact JWS of these exact header and payload bytes, signed with [`KEY`].
pub fn sign(header: &[u8], payload: &[u8]) -> String {
    let input = format!("{}.{}", b64url(header), b64url(payload));
    let sig = b64url(&hs256(input.as_bytes()));
    format!("{input}.{sig}")
}

/// Whether `token` carries a valid HS256 signature under [`KEY`] for its first two parts.
pub fn signed_by_key(token: &str) -> bool {
    let Some((input, sig)) = token.rsplit_once('.') else {
        return false;
    };
    input.matches('.').count() == 1
        && b64url_decode(sig).is_some_and(|s| s == hs256(input.as_bytes()))
}
