//! Prints an admin access token for `bench/load.sh`: HS256 over `SHIELDWALL_JWT_SECRET`
//! (the same fixed default as the load servers), with the issuer and audience they check,
//! `roles: ["admin"]`, and an `exp` a day ahead.

/// Keep in step with `load_b_handbuilt.rs` and `load_s_shieldwall.rs`.
const DEFAULT_SECRET: &str = "shieldwall-load-test-secret-0123456789abcdef";
const ISSUER: &str = "https://auth.load.test";
const AUDIENCE: &str = "load-api";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret = std::env::var("SHIELDWALL_JWT_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_SECRET.into());
    let now = jsonwebtoken::get_current_timestamp();
    let claims = serde_json::json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "roles": ["admin"],
        "iat": now, "exp": now + 86_400,
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.typ = Some("at+jwt".into());
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes())?;
    println!("{}", jsonwebtoken::encode(&header, &claims, &key)?);
    Ok(())
}
