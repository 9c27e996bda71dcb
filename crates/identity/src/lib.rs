//! Verify Pomerium's `X-Pomerium-Jwt-Assertion` against a pinned JWKS and
//! return a typed [`Identity`].
//!
//! ```no_run
//! # async fn demo(token: &str) -> Result<(), Box<dyn std::error::Error>> {
//! use jit_identity::{Verifier, VerifierConfig};
//! let verifier = Verifier::new(VerifierConfig::new(
//!     "https://jit.example.com/.well-known/pomerium/jwks.json",
//! )?)?;
//! verifier.refresh_keys().await?; // optional: fail fast at start-up
//! let identity = verifier.verify(token).await?;
//! println!("{} <{}>", identity.user(), identity.email()?);
//! # Ok(()) }
//! ```
//!
//! # Rules enforced (each has a test)
//!
//! - **Size first:** a token over `max_token_bytes` (16 KiB) is refused before any parsing.
//! - **Keys only from the configured JWKS URL**, over https (plain http only to loopback).
//!   `jku`, `jwk`, `x5u` and `x5c` headers are refused outright; `iss` is never used to find
//!   keys; redirects are not followed.
//! - **Algorithms:** ES256 and RS256 only (`none`, HS*, PS*, EdDSA, … refused). The header
//!   `alg` must match the key found by `kid` (EC P-256 ↔ ES256, RSA ↔ RS256), and a JWK's own
//!   `alg`, if present, must match its key type or the key is skipped.
//! - **Header:** `kid` required; any `crit` refused; `typ`, if present, must be `JWT`.
//! - **Signature** checked by jsonwebtoken (aws-lc-rs) with the algorithm pinned per key,
//!   *before* any claim is judged.
//! - **Claims** (all in `token.rs`, strict JSON types — a wrong type is refused, never taken as
//!   absent; duplicate members refused):
//!   - `exp` required, integer; refused when `now > exp + leeway`;
//!   - `iat` required, integer; refused when `iat > now + leeway`;
//!   - `nbf` optional (Pomerium sends none); refused when `nbf > now + leeway`;
//!   - `iss` required, a string equal to the issuer host or `https://<host>/`
//!     (Pomerium's `jwt_issuer_format` `hostOnly` and `uri`);
//!   - `aud` required: a string equal to the audience (what Pomerium sends), or an array of
//!     strings that contains it (RFC 7519 §4.1.3);
//!   - user = `sub`, else `user`; one of them non-empty;
//!   - `email`, `name`, `sid`, `jti` strings and `groups` a list of strings when present.
//!     An empty `email` is allowed in the token; [`Identity::email`] refuses it for callers that
//!     need one;
//!   - every other claim that is a string or a list of strings is kept ([`Identity::claims`],
//!     for rules on an IdP's `team` and the like); other types are ignored, a repeat refused.
//! - **JWKS cache:** fresh for `Cache-Control: max-age` (60 s when absent, at most 1 h;
//!   `no-cache`/`no-store` = 0); revalidated in the background with `If-None-Match` when stale.
//!   An unknown `kid` waits for a fetch started after it was seen, so a key Pomerium has just
//!   published is found within the minimum fetch interval (1 s). That fetch is single-flight
//!   and shared by every waiting caller, and fetches are at least 1 s apart, so a storm of
//!   forged `kid`s costs one fetch per second. A failed fetch
//!   (timeout 5 s, non-2xx, body over 1 MiB, not a key set, no usable key) keeps the last good
//!   set and is logged. Unusable keys are skipped; keys are decoded once per fetch.
//! - **Verified-token cache:** SHA-256 of the token → identity, until `exp + leeway`, bounded
//!   (10 000 entries, expired then soonest-expiring evicted). A hit re-checks expiry; when a
//!   refresh withdraws a key, every cached token is re-verified. Cached assertions of one
//!   person (same user, email, name, groups and claims) share one copy of those claims; each
//!   keeps only its own `sid`, `jti`, `iat` and `exp`.
//! - **No secrets in output:** no error, log line or `Debug` output contains a token.
//!
//! # Defaults
//!
//! | setting | default |
//! |---|---|
//! | `audience`, `issuer` | hostname of the JWKS URL (no port) |
//! | `leeway` | 60 s (max 5 min) |
//! | `min_fetch_interval` | 1 s (max 10 s; also the longest an unknown `kid` waits) |
//! | `fetch_timeout` | 5 s |
//! | `max_jwks_bytes` | 1 MiB |
//! | `max_token_bytes` | 16 KiB |
//! | `token_cache_capacity` | 10 000 (0 disables) |

#![forbid(unsafe_code)]

mod cache;
mod config;
mod error;
mod identity;
mod jwks;
mod keys;
mod measure;
mod token;
mod verifier;

pub use config::{
    DEFAULT_FETCH_TIMEOUT, DEFAULT_LEEWAY, DEFAULT_MAX_JWKS_BYTES, DEFAULT_MAX_TOKEN_BYTES,
    DEFAULT_MIN_FETCH_INTERVAL, DEFAULT_TOKEN_CACHE_CAPACITY, MAX_LEEWAY, MAX_MIN_FETCH_INTERVAL,
    VerifierConfig,
};
pub use error::{ConfigError, VerifyError};
pub use identity::Identity;
pub use jwks::{DEFAULT_JWKS_MAX_AGE, JwksError, MAX_JWKS_MAX_AGE};
pub use keys::Algorithm;
pub use verifier::Verifier;
