//! Secrets: values that never print.
//!
//! ```
//! use shieldwall_runtime::secrets::Secret;
//!
//! let secret = Secret::new(String::from("correct horse battery staple"));
//! assert_eq!(format!("{secret:?}"), "Secret([REDACTED])");
//! assert_eq!(secret.to_string(), "Secret([REDACTED])");
//! assert_eq!(secret.expose(), "correct horse battery staple");
//!
//! // SHIELDWALL_JWT_SECRET, or the file SHIELDWALL_JWT_SECRET_FILE names (Docker and
//! // Kubernetes secrets); neither set is an error naming the variable.
//! let vars = |name: &str| (name == "SHIELDWALL_JWT_SECRET").then(|| "s3cr3t".to_string());
//! let secret = Secret::from_vars("SHIELDWALL_JWT_SECRET", vars).unwrap().unwrap();
//! assert_eq!(secret.expose(), "s3cr3t");
//! ```
//!
//! A [`Secret<T>`] wraps a value so that it cannot leak by accident:
//!
//! - `Debug` and `Display` print `Secret([REDACTED])`, so a secret inside a configuration
//!   struct, a `tracing` field (`?secret`, `%secret`) or an error message prints as that;
//! - it does not implement `Serialize` (serializing a configuration that holds one does not
//!   compile), but it does implement `Deserialize`, so configuration files can hold them;
//! - the value is overwritten with zeros when the secret is dropped ([`zeroize`]);
//!   copies the program makes with [`Secret::expose`] are its own to care for;
//! - byte secrets compare in constant time ([`subtle`]): `==` on two secrets, or
//!   [`Secret::ct_eq`] against presented bytes.
//!
//! The value is read with [`Secret::expose`]: grep for it to audit every use.
//!
//! # Reading secrets from the environment
//!
//! [`Secret::from_env`]`("NAME")` reads the variable `NAME`, or — for secrets mounted as
//! files, the way Docker secrets (`/run/secrets/…`) and Kubernetes secret volumes provide
//! them — the file whose path is in `NAME_FILE`. One trailing newline (`\n` or `\r\n`, as
//! `echo` and editors add) is removed from a file; nothing else is. Setting both variables
//! is refused (which one would win is a guess), and so is an empty file, a file over
//! [`MAX_SECRET_FILE_LEN`] or one that is not UTF-8. Every error names the variable to fix
//! and, for files, the path, but never the contents.
//!
//! File permissions are not checked: Docker mounts secrets world-readable (0444) inside the
//! container and Kubernetes uses 0644 unless `defaultMode` says otherwise, so refusing
//! world-readable files would refuse the common setups. Restrict who can read the file on a
//! shared host (`chmod 0400`, owned by the service's user).
//!
//! # Development secrets
//!
//! [`Secret::generate_development`] makes a random secret for a development run and marks
//! it: its text starts with [`DEVELOPMENT_PREFIX`]. The production profile
//! ([`crate::config`]) refuses such a secret wherever it is configured, even when its text
//! was copied into a production variable.
//!
//! # What production refuses
//!
//! One check, [`weakness`], stands behind every production refusal of a value — the JWT
//! secret, a token issuer's secret, the encryption keys ([`crate::crypto`]) and secrets read
//! by [`Secret::from_env_or_development`]. Besides development secrets it refuses:
//!
//! - **published values**: every secret and key in shieldwall's own docs, examples and
//!   benchmarks (`tests/secrets.rs` scans them for key-shaped strings and fails when one is
//!   accepted), and the example or default values of the JWT tools and tutorials people
//!   copy from — jwt.io's `a-string-secret-at-least-256-bits-long` and
//!   `your-256-bit-secret`, Supabase's local JWT secret, the keys of the FastAPI, Spring
//!   Boot and ASP.NET tutorials, express-jwt's `shhhhhhared-secret`, Flask's
//!   `you-will-never-guess`, …;
//! - **placeholders**: `secret`, `changeme`, `password`, or a value containing `changeme`,
//!   `donotuse`, `insecure`, `password`, `qwerty`, `at least 256 bits`, …;
//! - **low entropy**: a shorter part repeated (`passwordpassword…`), 8 or more characters in
//!   sequence (`abcdefgh`, `87654321`, `aaaaaaaa`), fewer than 8 different characters, or
//!   under [`MIN_STRENGTH_BITS`] for its length and alphabet (32 decimal digits).
//!
//! It does not prove a value random: a long passphrase nobody published passes. Generate
//! secrets and keys with `openssl rand -base64 48` (or `-base64 32` for keys).

use std::fmt;
use std::io::Read;
use std::path::Path;
use std::sync::OnceLock;

use serde::{Deserialize, Deserializer};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// What `Debug` and `Display` print for every secret.
pub const REDACTED: &str = "Secret([REDACTED])";

/// Largest secret file read (64 KiB): a path pointing at a log or a device is a mistake.
pub const MAX_SECRET_FILE_LEN: u64 = 64 * 1024;

/// How the text of a generated development secret starts (see
/// [`Secret::generate_development`]).
pub const DEVELOPMENT_PREFIX: &str = "shieldwall-dev-";

/// The first variable [`Secret::from_env_or_development`] generated a development secret
/// for in this process: the production profile refuses to build then.
static DEVELOPMENT_SECRET: OnceLock<String> = OnceLock::new();

/// The variable a development secret was generated for in this process, if any.
pub(crate) fn development_secret_generated() -> Option<&'static str> {
    DEVELOPMENT_SECRET.get().map(String::as_str)
}

/// A value that never prints: see the [module docs](self).
pub struct Secret<T: Zeroize> {
    value: T,
}

impl<T: Zeroize> Secret<T> {
    /// Wrap a value.
    pub fn new(value: T) -> Self {
        Self { value }
    }

    /// The value. Every read of a secret goes through here.
    pub fn expose(&self) -> &T {
        &self.value
    }
}

impl<T: Zeroize + AsRef<[u8]>> Secret<T> {
    /// Whether the production profile refuses this secret: generated by
    /// [`Secret::generate_development`] (the mark is in the text, so it survives copies),
    /// published, a placeholder, or low-entropy ([`weakness`]).
    pub fn is_development(&self) -> bool {
        is_development_value(self.value.as_ref())
    }

    /// Compare with presented bytes in constant time (the length is not hidden).
    pub fn ct_eq(&self, other: &[u8]) -> bool {
        self.value.as_ref().ct_eq(other).into()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.value.as_ref().len()
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.value.as_ref().is_empty()
    }
}

impl Secret<String> {
    /// A random development secret: [`DEVELOPMENT_PREFIX`] followed by 32 random bytes in
    /// unpadded base64url (58 characters in all). It is marked as a development secret,
    /// and the production profile refuses it (also when its text is copied elsewhere).
    pub fn generate_development() -> Self {
        use base64::Engine as _;
        let mut bytes: [u8; 32] = rand::random();
        let text = format!(
            "{DEVELOPMENT_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        );
        bytes.zeroize();
        Self::new(text)
    }

    /// The secret in the environment variable `name`, or in the file named by `name_FILE`.
    /// Neither set (or set but empty) is [`SecretError::Missing`].
    pub fn from_env(name: &str) -> Result<Self, SecretError> {
        Self::from_env_optional(name)?.ok_or_else(|| SecretError::Missing {
            name: name.to_owned(),
        })
    }

    /// [`Secret::from_env`], with `None` when neither variable is set.
    pub fn from_env_optional(name: &str) -> Result<Option<Self>, SecretError> {
        Self::from_vars(name, |n| std::env::var(n).ok())
    }

    /// [`Secret::from_env`] in a development profile, and when the variable is not set
    /// there, a generated development secret ([`Secret::generate_development`], logged as
    /// a warning). In the production profile (the profile of the process, set in code or
    /// by `SHIELDWALL_PROFILE`, see [`crate::config`]) a missing secret is
    /// [`SecretError::Missing`], and a development, published or weak one
    /// ([`weakness`]) is [`SecretError::Weak`].
    pub fn from_env_or_development(name: &str) -> Result<Self, SecretError> {
        let production = || {
            crate::config::Profile::from_env()
                .map(crate::config::Profile::is_production)
                // An unreadable profile is treated as production: never generate then.
                .unwrap_or(true)
        };
        if let Some(secret) = Self::from_env_optional(name)? {
            if let Some(weakness) = weakness(secret.expose().as_bytes())
                && production()
            {
                return Err(SecretError::Weak {
                    name: name.to_owned(),
                    weakness,
                });
            }
            return Ok(secret);
        }
        if production() {
            return Err(SecretError::Missing {
                name: name.to_owned(),
            });
        }
        tracing::warn!(
            target: "shieldwall::secrets",
            "{name} is not set: using a generated development secret for this run only \
             (the production profile refuses it)"
        );
        let _ = DEVELOPMENT_SECRET.set(name.to_owned());
        Ok(Self::generate_development())
    }

    /// [`Secret::from_env`], reading variables through `vars` (a configuration map, or a
    /// test's fake environment) instead of the process environment. Values that are empty
    /// or only whitespace count as unset.
    pub fn from_vars(
        name: &str,
        vars: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, SecretError> {
        Ok(read_var(name, &vars)?.map(|(secret, _)| secret))
    }

    /// The contents of the file at `path`, one trailing newline removed. Errors name the
    /// path, never the contents.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, SecretError> {
        let path = path.as_ref();
        read_file(path)
            .map(Secret::new)
            .map_err(|why| SecretError::Unreadable {
                name: path.display().to_string(),
                why,
            })
    }

    /// The secret's bytes, without copying.
    pub fn into_bytes(mut self) -> Secret<Vec<u8>> {
        Secret::new(std::mem::take(&mut self.value).into_bytes())
    }
}

/// Which variable a secret came from: `name` or `name_FILE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    Var,
    File,
}

/// Read `name` or the file named by `name_FILE` through `vars`.
pub(crate) fn read_var(
    name: &str,
    vars: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<(Secret<String>, Origin)>, SecretError> {
    let file_var = format!("{name}_FILE");
    let get = |n: &str| vars(n).filter(|v| !v.trim().is_empty());
    match (get(name), get(&file_var)) {
        (Some(_), Some(_)) => Err(SecretError::Ambiguous {
            name: name.to_owned(),
        }),
        (Some(value), None) => Ok(Some((Secret::new(value), Origin::Var))),
        (None, Some(path)) => {
            let secret = read_file(Path::new(path.trim()))
                .map(Secret::new)
                .map_err(|why| SecretError::Unreadable {
                    name: file_var,
                    why,
                })?;
            Ok(Some((secret, Origin::File)))
        }
        (None, None) => Ok(None),
    }
}

/// Read a secret file: capped, UTF-8, one trailing newline removed. The error text names
/// the path and what is wrong, never the contents.
fn read_file(path: &Path) -> Result<String, String> {
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open {shown}: {e}"))?;
    let mut bytes = ZeroOnDrop(Vec::new());
    file.take(MAX_SECRET_FILE_LEN + 1)
        .read_to_end(&mut bytes.0)
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    if bytes.0.len() as u64 > MAX_SECRET_FILE_LEN {
        return Err(format!(
            "{shown} is larger than {MAX_SECRET_FILE_LEN} bytes: name the file that holds only the secret"
        ));
    }
    let text = std::str::from_utf8(&bytes.0)
        .map_err(|_| format!("{shown} is not UTF-8 text (its contents are not shown)"))?;
    let text = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text);
    if text.trim().is_empty() {
        return Err(format!("{shown} is empty"));
    }
    Ok(text.to_owned())
}

/// A byte buffer zeroed when dropped, whichever way the function returns.
struct ZeroOnDrop(Vec<u8>);

impl Drop for ZeroOnDrop {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// The smallest strength, in bits, the production profile accepts for a secret or key,
/// estimated from its length and alphabet ([`Weakness::LowStrength`]): NIST SP 800-131A's
/// minimum security strength. 32 random hex digits (128 bits) pass; 32 decimal digits
/// (106 bits) do not.
pub const MIN_STRENGTH_BITS: u32 = 112;

/// Why the production profile refuses a secret or a key: see [`weakness`]. Its text says
/// what is wrong ("is published …", "repeats …") and never shows the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Weakness {
    /// Made by [`Secret::generate_development`] (it starts with [`DEVELOPMENT_PREFIX`]).
    Development,
    /// Published: a secret or key from shieldwall's own docs and examples, or the
    /// documented example or default of a well-known JWT tool, framework or tutorial.
    Published,
    /// A placeholder: `changeme`, `your-256-bit-secret`, `password`, `do not use`, ….
    Placeholder,
    /// A shorter part repeated (`passwordpassword…`, one byte repeated).
    Repeated,
    /// Eight or more characters (or bytes) in sequence: `abcdefgh`, `87654321`, `aaaaaaaa`.
    Sequence,
    /// A walk over neighbouring keys of a keyboard: `1qaz2wsx3edc…`, `zaq1xsw2…`.
    KeyboardWalk,
    /// The MD5, SHA-1, SHA-256 or SHA-512 digest of a common word (`password`, `secret`,
    /// `admin`, …), as hex or base64 text or as key bytes.
    Digest,
    /// Fewer than eight different characters (or bytes).
    TinyAlphabet,
    /// Under [`MIN_STRENGTH_BITS`] for its length and alphabet (for example 32 decimal
    /// digits, or any value shorter than 19 characters).
    LowStrength,
}

impl fmt::Display for Weakness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Development => {
                "was generated for development (it starts with `shieldwall-dev-`)"
            }
            Self::Published => {
                "is published (in shieldwall's docs or examples, or as a JWT tool's, framework's or tutorial's example)"
            }
            Self::Placeholder => {
                "is a placeholder (such as `changeme`, `your-256-bit-secret` or `password`)"
            }
            Self::Repeated => "repeats a shorter part",
            Self::Sequence => "holds 8 or more characters in sequence (such as `abcdefgh` or `aaaaaaaa`)",
            Self::KeyboardWalk => "walks over neighbouring keys of a keyboard (such as `1qaz2wsx3edc`)",
            Self::Digest => "is the digest of a common word (such as md5 or sha256 of `password`)",
            Self::TinyAlphabet => "uses fewer than 8 different characters",
            Self::LowStrength => {
                "is too weak for its length and alphabet (under 112 bits; e.g. 32 decimal digits)"
            }
        })
    }
}

/// Published secrets and keys: shieldwall's own docs, examples and benchmarks (a test scans
/// them and fails if one is missing here and not refused otherwise), and the example or
/// default values of the JWT tools, frameworks and tutorials people copy from. Compared
/// after folding (letters and digits only, lower case), whole or — for the longer ones —
/// contained in the value; base64 and hex entries of 32 bytes are also compared as key
/// bytes.
const PUBLISHED: &[&str] = &[
    // shieldwall: runtime/src/crypto.rs's example key
    "7PS0YY6E4tLZ3+y8ZiI6MSRnh/SWx2W6tdbK9QamFvI=",
    // shieldwall: runtime/src/auth/{jwt,tokens}.rs examples
    "an-hmac-secret-of-at-least-32-bytes!",
    // shieldwall: runtime/src/app.rs example
    "0123456789abcdef0123456789abcdef",
    // shieldwall: examples/load_*.rs and bench/load.sh
    "shieldwall-load-test-secret-0123456789abcdef",
    // shieldwall: benches/jwt.rs and benches/policy.rs
    "bench-secret-0123456789abcdef-0123456789",
    // shieldwall: runtime/src/secrets.rs example; xkcd 936
    "correct horse battery staple",
    // jwt.io debugger: the secrets it pre-fills for HS256, HS384 and HS512 today, and its
    // former HS256/384/512 defaults
    "a-string-secret-at-least-256-bits-long",
    "a-valid-string-secret-that-is-at-least-384-bits-long",
    "a-valid-string-secret-that-is-at-least-512-bits-long-which-is-very-long",
    "your-256-bit-secret",
    "your-384-bit-secret",
    "your-512-bit-secret",
    // Supabase CLI: the JWT secret of every local project (`supabase start`)
    "super-secret-jwt-token-with-at-least-32-characters-long",
    // FastAPI docs, "OAuth2 with Password (and hashing), Bearer with JWT tokens"
    "09d25e094faa6ca2556c818166b7a9563b93f7099f6f0f4caa6cf63b88e8d3e7",
    // Spring Boot + JJWT tutorials (the key from an online "encryption key generator")
    "404E635266556A586E3272357538782F413F4428472B4B6250645367566B5970",
    // ASP.NET Core JWT tutorials
    "this is my custom Secret key for authentication",
    "This is my top secret key for jwt token",
    // Auth0's express-jwt and node-jsonwebtoken READMEs
    "shhhhhhared-secret",
    "shhhhh",
    // Flask Mega-Tutorial's SECRET_KEY fallback
    "you-will-never-guess",
    // Laravel's former .env.example APP_KEY
    "SomeRandomString",
    // PostgREST tutorial ("Tutorial 1 - The Golden Key"): the JWT secret it sets
    "reallyreallyreallyreallyverysafe",
    // AWS documentation: the example access key id and secret access key
    "AKIAIOSFODNN7EXAMPLE",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    // Directus docs, the Docker Compose example's KEY and SECRET
    "255d861b-5ea1-5996-9aa3-922530ec40b1",
    "6116487b-cda1-52c2-b5b5-c8022c45e263",
    // DigitalOcean, "How To Use JSON Web Tokens (JWTs) in Express.js": its TOKEN_SECRET
    "09f26e402586e2faa8da4c98a35f1b20d6b033c6097befa8be3486a829587fe2f90a832bd3ff9d42710a4da095a2ce285b009f0c3730cd9b8e1af3eb84df6611",
    // Hasura docs, HASURA_GRAPHQL_JWT_SECRET examples
    "3EK6FD+o0+c7tzBNVfjpMkNDi2yARAAKzQlk8O2IKoxQu4nF7EdAh8s3TwpHwrdWT6R",
    // Wikipedia's (and RFC-style tutorials') example UUID
    "123e4567-e89b-12d3-a456-426614174000",
];

/// Placeholder words: a value that is one of these (folded) is refused.
const PLACEHOLDER_EXACT: &[&str] = &[
    "secret",
    "secretkey",
    "jwtsecret",
    "mysecret",
    "supersecret",
    "topsecret",
    "yoursecret",
    "your256bitsecret",
    "changeme",
    "changeit",
    "password",
    "passw0rd",
    "dev",
    "development",
    "test",
    "testing",
    "example",
    "default",
    "placeholder",
    "todo",
    "key",
    "hmackey",
];

/// Placeholder phrases: a value that contains one of these (folded) is refused. Long enough
/// that a random value does not contain one by chance.
const PLACEHOLDER_CONTAINS: &[&str] = &[
    "changeme",
    "changeit",
    "changethis",
    "replaceme",
    "placeholder",
    "insecure",
    "notasecret",
    "donotuse",
    "dontuse",
    "devsecret",
    "developmentsecret",
    "testsecret",
    "examplesecret",
    "yoursecret",
    "mysecret",
    "supersecret",
    "topsecret",
    "secretkeyhere",
    "thisismy",
    "willneverguess",
    "256bitsecret",
    "384bitsecret",
    "512bitsecret",
    "atleast256bit",
    "atleast384bit",
    "atleast512bit",
    "atleast32char",
    "atleast32byte",
    "password",
    // filler text, and an unexpanded shell command pasted as the value
    "loremipsum",
    "opensslrand",
    "passw0rd",
    "qwerty",
    "asdfgh",
];

/// Letters and digits only, lower case: how published values and placeholders compare.
fn fold(value: &[u8]) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(
        value
            .iter()
            .filter(|b| b.is_ascii_alphanumeric())
            .map(u8::to_ascii_lowercase)
            .collect(),
    )
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The published entries that are 32-byte keys (base64 or hex), as bytes.
fn published_keys() -> &'static [[u8; 32]] {
    static KEYS: OnceLock<Vec<[u8; 32]>> = OnceLock::new();
    KEYS.get_or_init(|| {
        use base64::Engine as _;
        PUBLISHED
            .iter()
            .filter_map(|p| {
                let b64 = base64::engine::general_purpose::STANDARD.decode(p).ok();
                let hex = (p.len() == 64)
                    .then(|| {
                        (0..32)
                            .map(|i| u8::from_str_radix(&p[2 * i..2 * i + 2], 16).ok())
                            .collect::<Option<Vec<u8>>>()
                    })
                    .flatten();
                [b64, hex]
                    .into_iter()
                    .flatten()
                    .find_map(|bytes| <[u8; 32]>::try_from(bytes).ok())
            })
            .collect()
    })
}

/// A published value, a placeholder, or the digest of a common word.
fn known(value: &[u8]) -> Option<Weakness> {
    let folded = fold(value);
    let published = PUBLISHED.iter().any(|p| {
        let p = fold(p.as_bytes());
        *folded == *p || (p.len() >= 16 && contains(&folded, &p))
    }) || published_keys().iter().any(|k| k.as_slice() == value);
    if published {
        return Some(Weakness::Published);
    }
    // A placeholder word is the whole value once separators and case are dropped — for
    // text. Random bytes keep a few alphanumerics (a quarter of them) that may spell `key`
    // or `dev` by chance, so the exact words apply only when most of the value is text.
    let text = folded.len() * 2 >= value.len();
    if (text && PLACEHOLDER_EXACT.iter().any(|p| *folded == p.as_bytes()))
        || PLACEHOLDER_CONTAINS
            .iter()
            .any(|p| contains(&folded, p.as_bytes()))
    {
        return Some(Weakness::Placeholder);
    }
    if common_digests().contains(value) {
        return Some(Weakness::Digest);
    }
    None
}

/// Low entropy by shape: repetition, a sequence, a keyboard walk.
fn shape(value: &[u8]) -> Option<Weakness> {
    if repeats(value) {
        return Some(Weakness::Repeated);
    }
    if has_sequence(value) {
        return Some(Weakness::Sequence);
    }
    keyboard_walk(value)
}

/// What the value decodes to as base64 (standard or URL-safe, padded or not) or hex text,
/// when that is at least 8 bytes.
fn decodings(value: &[u8]) -> Vec<Zeroizing<Vec<u8>>> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut out = Vec::new();
    let Ok(text) = std::str::from_utf8(value) else {
        return out;
    };
    let text = text.trim();
    for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
        if let Ok(bytes) = engine.decode(text)
            && bytes.len() >= 8
        {
            out.push(Zeroizing::new(bytes));
            break;
        }
    }
    if text.len() >= 16 && text.len() % 2 == 0 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        let bytes: Option<Vec<u8>> = (0..text.len() / 2)
            .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
            .collect();
        out.extend(bytes.map(Zeroizing::new));
    }
    out
}

/// Common words whose digests are refused: the placeholder words and the most common
/// passwords of the public breach lists.
const COMMON_WORDS: &[&str] = &[
    "123456",
    "12345678",
    "123456789",
    "1234567890",
    "111111",
    "000000",
    "abc123",
    "password1",
    "password123",
    "qwerty",
    "qwerty123",
    "letmein",
    "welcome",
    "admin",
    "admin123",
    "root",
    "toor",
    "iloveyou",
    "monkey",
    "dragon",
    "master",
    "hello",
    "login",
    "jwt",
    "token",
    "apikey",
    "api",
    "private",
    "privatekey",
    "mypassword",
    "secret123",
];

/// The MD5, SHA-1, SHA-256 and SHA-512 digests of [`COMMON_WORDS`] and the placeholder
/// words, each as raw bytes, lower- and upper-case hex, and base64 (standard and URL-safe).
fn common_digests() -> &'static std::collections::HashSet<Vec<u8>> {
    static DIGESTS: OnceLock<std::collections::HashSet<Vec<u8>>> = OnceLock::new();
    DIGESTS.get_or_init(|| {
        use base64::Engine as _;
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        use sha2::Digest as _;
        let mut set = std::collections::HashSet::new();
        for word in COMMON_WORDS.iter().chain(PLACEHOLDER_EXACT) {
            let w = word.as_bytes();
            for raw in [
                md5::Md5::digest(w).to_vec(),
                sha1::Sha1::digest(w).to_vec(),
                sha2::Sha256::digest(w).to_vec(),
                sha2::Sha512::digest(w).to_vec(),
            ] {
                let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
                set.insert(hex.to_ascii_uppercase().into_bytes());
                set.insert(hex.into_bytes());
                set.insert(STANDARD.encode(&raw).into_bytes());
                set.insert(URL_SAFE_NO_PAD.encode(&raw).into_bytes());
                set.insert(raw);
            }
        }
        set
    })
}

/// Where a key sits on a US keyboard: its row, and its position along the row in key
/// widths (each row is shifted, as on the keyboard). Shifted symbols sit on their key.
fn key_position(b: u8) -> Option<(i8, f32)> {
    const ROWS: [(&[u8], &[u8], f32); 4] = [
        (b"`1234567890-=", b"~!@#$%^&*()_+", 0.0),
        (b"qwertyuiop[]\\", b"QWERTYUIOP{}|", 1.5),
        (b"asdfghjkl;'", b"ASDFGHJKL:\"", 1.75),
        (b"zxcvbnm,./", b"ZXCVBNM<>?", 2.25),
    ];
    ROWS.iter()
        .enumerate()
        .find_map(|(row, (plain, shifted, start))| {
            let col = plain
                .iter()
                .position(|k| *k == b)
                .or_else(|| shifted.iter().position(|k| *k == b))?;
            Some((row as i8, start + col as f32))
        })
}

/// Whether the value walks over neighbouring keys: of its consecutive pairs of keyboard
/// characters (at least 8), seven in ten or more are neighbours (or the same key).
/// Random text is a neighbour pair about one time in six.
fn keyboard_walk(value: &[u8]) -> Option<Weakness> {
    let (mut pairs, mut near) = (0u32, 0u32);
    let mut prev: Option<(i8, f32)> = None;
    for b in value {
        let here = key_position(*b);
        if let (Some((r0, x0)), Some((r1, x1))) = (prev, here) {
            pairs += 1;
            if (r0 - r1).abs() <= 1 && (x0 - x1).abs() <= 1.0 {
                near += 1;
            }
        }
        prev = here;
    }
    (pairs >= 8 && near * 10 >= pairs * 7).then_some(Weakness::KeyboardWalk)
}

/// Whether the value is a shorter part repeated (a whole number of times or not): its
/// smallest period is at most half its length (prefix function, linear time).
fn repeats(value: &[u8]) -> bool {
    let n = value.len();
    if n < 2 {
        return false;
    }
    let mut pi = vec![0usize; n];
    for i in 1..n {
        let mut k = pi[i - 1];
        while k > 0 && value[i] != value[k] {
            k = pi[k - 1];
        }
        if value[i] == value[k] {
            k += 1;
        }
        pi[i] = k;
    }
    n - pi[n - 1] <= n / 2
}

/// Whether 8 or more bytes in a row step by the same -1, 0 or +1.
fn has_sequence(value: &[u8]) -> bool {
    let mut run = 1;
    let mut step = 0i16;
    for w in value.windows(2) {
        let d = i16::from(w[1]) - i16::from(w[0]);
        if (-1..=1).contains(&d) && (run == 1 || d == step) {
            run += 1;
            step = d;
        } else if (-1..=1).contains(&d) {
            run = 2;
            step = d;
        } else {
            run = 1;
        }
        if run >= 8 {
            return true;
        }
    }
    false
}

/// Strength by length and alphabet: `len × log2(alphabet)`, where the alphabet is the union
/// of the character classes the value uses (hex digits count as 16, any byte outside
/// printable ASCII makes it 256).
fn strength_bits(value: &[u8]) -> f64 {
    let (mut lower, mut upper, mut digit, mut other, mut binary) =
        (false, false, false, false, false);
    for b in value {
        match b {
            b'a'..=b'z' => lower = true,
            b'A'..=b'Z' => upper = true,
            b'0'..=b'9' => digit = true,
            0x20..=0x7e => other = true,
            _ => binary = true,
        }
    }
    let hex = value.iter().all(u8::is_ascii_hexdigit)
        && (value.iter().all(|b| !b.is_ascii_uppercase())
            || value.iter().all(|b| !b.is_ascii_lowercase()));
    let alphabet: u32 = if binary {
        256
    } else if hex && (lower || upper) {
        16
    } else {
        [(lower, 26), (upper, 26), (digit, 10), (other, 33)]
            .iter()
            .filter(|(used, _)| *used)
            .map(|(_, n)| n)
            .sum()
    };
    value.len() as f64 * f64::from(alphabet.max(1)).log2()
}

/// Why the production profile refuses `value` as a secret or key, or `None`. This is the
/// one check behind every production refusal of a value: the JWT secret, a token issuer's
/// secret, the encryption keys, and secrets read by
/// [`Secret::from_env_or_development`]. In order:
///
/// - [`Weakness::Development`]: it starts with [`DEVELOPMENT_PREFIX`];
/// - [`Weakness::Published`]: folded to lower-case letters and digits, it is (or, for
///   published values of 16 or more folded characters, contains) a value published in
///   shieldwall's docs and examples or by a well-known JWT tool, framework or tutorial
///   (jwt.io, Supabase, FastAPI, Spring, ASP.NET, express-jwt, Flask, Laravel, …); a
///   32-byte key equal to a published key;
/// - [`Weakness::Placeholder`]: folded, it is a placeholder word (`secret`, `changeme`,
///   `password`, …) or contains a placeholder phrase (`changeme`, `donotuse`, `insecure`,
///   `password`, `qwerty`, `atleast256bit`, …);
/// - [`Weakness::Digest`]: it is the MD5, SHA-1, SHA-256 or SHA-512 digest of a common
///   word or placeholder, as hex or base64 text or as key bytes;
/// - the same checks on the value reversed and on what it decodes to as base64 or hex
///   text (a published secret base64-encoded is still published);
/// - [`Weakness::Repeated`], [`Weakness::Sequence`], [`Weakness::KeyboardWalk`],
///   [`Weakness::TinyAlphabet`] and [`Weakness::LowStrength`]: low entropy.
///
/// What `openssl rand -base64 32` or `openssl rand -hex 16` print passes.
///
/// ```
/// use shieldwall_runtime::secrets::{Weakness, weakness};
///
/// assert_eq!(weakness(b"your-256-bit-secret"), Some(Weakness::Published));
/// assert_eq!(weakness(b"changeme-changeme-changeme-changeme"), Some(Weakness::Placeholder));
/// assert_eq!(weakness(b"abcabcabcabcabcabcabcabcabcabcabc"), Some(Weakness::Repeated));
/// let fresh: [u8; 32] = rand::random();
/// assert_eq!(weakness(&fresh), None);
/// ```
pub fn weakness(value: &[u8]) -> Option<Weakness> {
    if value.starts_with(DEVELOPMENT_PREFIX.as_bytes()) {
        return Some(Weakness::Development);
    }
    if let Some(w) = known(value) {
        return Some(w);
    }
    // The same weak value in another dress: reversed, or as base64 or hex text.
    let reversed: Zeroizing<Vec<u8>> = Zeroizing::new(value.iter().rev().copied().collect());
    if let Some(w) = known(&reversed).or_else(|| keyboard_walk(&reversed)) {
        return Some(w);
    }
    for decoded in decodings(value) {
        if let Some(w) = known(&decoded).or_else(|| shape(&decoded)) {
            return Some(w);
        }
    }
    if let Some(w) = shape(value) {
        return Some(w);
    }
    let mut seen = [false; 256];
    for b in value {
        seen[usize::from(*b)] = true;
    }
    if seen.iter().filter(|s| **s).count() < 8 {
        return Some(Weakness::TinyAlphabet);
    }
    if strength_bits(value) < f64::from(MIN_STRENGTH_BITS) {
        return Some(Weakness::LowStrength);
    }
    None
}

/// Whether the production profile refuses `value` ([`weakness`] says why): a development
/// secret, a published value or placeholder, or a low-entropy value.
///
/// ```
/// use shieldwall_runtime::secrets::is_development_value;
///
/// assert!(is_development_value(b"changeme-changeme-changeme-changeme"));
/// assert!(is_development_value(b"a-string-secret-at-least-256-bits-long")); // jwt.io
/// assert!(is_development_value(b"passwordpasswordpasswordpassword"));
/// let fresh: [u8; 32] = rand::random(); // what `openssl rand 32` gives
/// assert!(!is_development_value(&fresh));
/// ```
pub fn is_development_value(value: &[u8]) -> bool {
    weakness(value).is_some()
}

impl<T: Zeroize> Drop for Secret<T> {
    fn drop(&mut self) {
        self.value.zeroize();
    }
}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T: Zeroize> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T: Zeroize + Clone> Clone for Secret<T> {
    fn clone(&self) -> Self {
        Self::new(self.value.clone())
    }
}

/// Constant time in the contents (the length is not hidden).
impl<T: Zeroize + AsRef<[u8]>> PartialEq for Secret<T> {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other.value.as_ref())
    }
}

impl<T: Zeroize + AsRef<[u8]>> Eq for Secret<T> {}

impl<T: Zeroize> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self::new(value)
    }
}

impl<'de, T: Zeroize + Deserialize<'de>> Deserialize<'de> for Secret<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(Self::new)
    }
}

/// Why a secret could not be read. Names the variable (or file) to fix, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// Neither `NAME` nor `NAME_FILE` is set.
    #[error(
        "{name} is not set: set it to the secret, or set {name}_FILE to the path of a file holding it"
    )]
    Missing {
        /// The variable.
        name: String,
    },
    /// Both `NAME` and `NAME_FILE` are set.
    #[error("{name} and {name}_FILE are both set: keep one of them")]
    Ambiguous {
        /// The variable (without `_FILE`).
        name: String,
    },
    /// The production profile refuses the value: see [`weakness`].
    #[error(
        "{name}: the secret is a development secret or a weak value: it {weakness}, and the production profile refuses it: set it to a random value (e.g. `openssl rand -base64 48`)"
    )]
    Weak {
        /// The variable.
        name: String,
        /// What is wrong with the value (never the value).
        weakness: Weakness,
    },
    /// The secret file cannot be used.
    #[error("{name}: {why}")]
    Unreadable {
        /// The `NAME_FILE` variable, or the path given to [`Secret::from_file`].
        name: String,
        /// What is wrong (the path and the reason, never the contents).
        why: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyboard_walks_and_only_them() {
        for walk in [
            "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9",
            "zaq1xsw2cde3vfr4bgt5nhy6mju7,ki8",
            "!QAZ@WSX#EDC$RFV%TGB^YHN&UJM*IK<",
            "poiuytrewqlkjhgfdsamnbvcxz098765",
        ] {
            assert_eq!(
                keyboard_walk(walk.as_bytes()),
                Some(Weakness::KeyboardWalk),
                "{walk}"
            );
        }
        // Raw random bytes whose few alphanumerics spell a placeholder word (here `yEK`,
        // reversed: `key`) are not a placeholder (found by CI, run 2026-12-01).
        let raw = [
            134u8, 123, 185, 158, 121, 134, 24, 69, 128, 9, 46, 225, 13, 251, 255, 42, 166, 34,
            151, 229, 235, 27, 136, 188, 14, 159, 75, 174, 93, 162, 1, 95,
        ];
        assert_eq!(weakness(&raw), None);
        assert_eq!(weakness(b"K-e-Y"), Some(Weakness::Placeholder));
        // What `openssl rand` prints is never a walk.
        use base64::Engine as _;
        use rand::RngExt as _;
        let mut rng = rand::rng();
        for _ in 0..5_000 {
            let bytes: [u8; 32] = rng.random();
            let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
            let alnum: String = (0..32)
                .map(|_| char::from(rng.sample(rand::distr::Alphanumeric)))
                .collect();
            for v in [b64.as_bytes(), alnum.as_bytes(), &bytes] {
                assert_eq!(keyboard_walk(v), None, "{v:?}");
                assert_eq!(weakness(v), None, "{v:?}");
            }
        }
    }

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |n| pairs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())
    }

    #[test]
    fn redacted_everywhere() {
        let s = Secret::new("hunter2-hunter2".to_string());
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(format!("{s}"), REDACTED);
        assert_eq!(format!("{s:#?}"), REDACTED);
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Config {
            secret: Secret<String>,
        }
        let c = Config { secret: s.clone() };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn constant_time_eq() {
        let a = Secret::new(b"abc".to_vec());
        assert!(a.ct_eq(b"abc"));
        assert!(!a.ct_eq(b"abd"));
        assert!(!a.ct_eq(b"ab"));
        assert_eq!(a, Secret::new(b"abc".to_vec()));
        assert_ne!(a, Secret::new(b"abx".to_vec()));
    }

    #[test]
    fn env_and_file() {
        let v = vars(&[("A", "x")]);
        assert_eq!(Secret::from_vars("A", &v).unwrap().unwrap().expose(), "x");
        assert!(Secret::from_vars("B", &v).unwrap().is_none());
        let v = vars(&[("A", "  ")]);
        assert!(Secret::from_vars("A", &v).unwrap().is_none());
        let v = vars(&[("A", "x"), ("A_FILE", "/nope")]);
        assert_eq!(
            Secret::from_vars("A", &v).unwrap_err(),
            SecretError::Ambiguous { name: "A".into() }
        );
        let v = vars(&[("A_FILE", "/definitely/not/here")]);
        let e = Secret::from_vars("A", &v).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("A_FILE: cannot open /definitely/not/here"),
            "{e}"
        );
    }

    #[test]
    fn development_marks() {
        let d = Secret::generate_development();
        assert!(d.is_development());
        assert!(d.expose().starts_with(DEVELOPMENT_PREFIX));
        assert_eq!(d.len(), DEVELOPMENT_PREFIX.len() + 43);
        assert!(is_development_value(d.expose().as_bytes()));
        // the mark survives copying the text
        let copied = Secret::new(d.expose().clone());
        assert!(copied.is_development());
        for p in [
            "secret",
            "Change-Me",
            "your-256-bit-secret",
            "changeme-changeme-changeme-changeme",
            "my-INSECURE-signing-key-for-now-ok",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            assert!(is_development_value(p.as_bytes()), "{p}");
        }
        for real in [
            "q8Jf0x2mZk7wR1vN4tYb9sLc3hPa6eUd",
            "0f3c1e5a9b7d2c4e6f8a0b1c3d5e7f90a1b2c3d4e5f60718",
        ] {
            assert!(!is_development_value(real.as_bytes()), "{real}");
        }
        let g = Secret::generate_development();
        assert_ne!(g.expose(), d.expose());
    }

    #[test]
    fn weakness_reasons() {
        use Weakness::*;
        for (value, want) in [
            (&b"a-string-secret-at-least-256-bits-long"[..], Published),
            (
                b"A_STRING_SECRET_AT_LEAST_256_BITS_LONG_and_more",
                Published,
            ),
            (b"my-INSECURE-signing-key-for-now-ok", Placeholder),
            (b"Tr0ub4dor&3-Tr0ub4dor&3-Tr0ub4dor&3", Repeated),
            (b"xK9#mQ2!abcdefghij-pL7$wR4@vN8%", Sequence),
            (b"xK9#mQ2!98765432-pL7$wR4@vN8%zT", Sequence),
            (b"0110100110010110100101100110100110010110", TinyAlphabet),
            (b"73919450286615037248199305716284", LowStrength),
            (b"Zq8Jf0x2mZk7wR1", LowStrength),
        ] {
            assert_eq!(
                weakness(value),
                Some(want),
                "{}",
                String::from_utf8_lossy(value)
            );
        }
        // the published 32-byte keys, as bytes
        assert_eq!(published_keys().len(), 3);
        for key in published_keys() {
            assert_eq!(weakness(key), Some(Published));
        }
        // 32 hex digits (128 bits) pass, mixed case or not
        assert_eq!(weakness(b"8f14e45fceea167a5a36dedd4bea2543"), None);
        // the reason never shows the value
        let e = SecretError::Weak {
            name: "X".into(),
            weakness: Published,
        };
        assert!(
            e.to_string().starts_with(
                "X: the secret is a development secret or a weak value: it is published"
            )
        );
    }

    #[test]
    fn into_bytes_keeps_the_mark() {
        let d = Secret::generate_development().into_bytes();
        assert!(d.is_development());
        assert!(d.expose().starts_with(DEVELOPMENT_PREFIX.as_bytes()));
    }
}
