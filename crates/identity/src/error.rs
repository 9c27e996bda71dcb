//! Why an assertion was refused, and why the verifier could not be built.
//! No variant carries the token or any part of it.

use std::time::Duration;

use crate::Algorithm;

/// Why an assertion was refused. Each variant has a short, stable public
/// [`reason`](VerifyError::reason) fit for a 403 page; the `Display` text
/// adds detail for logs. Neither ever contains the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Longer than the configured cap; refused before any parsing.
    #[error("assertion is {len} bytes, over the {max}-byte limit")]
    TooLong {
        /// The assertion's length in bytes.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// Not a compact JWS, or a segment is not base64url / JSON of the right shape.
    #[error("malformed assertion: {0}")]
    Malformed(&'static str),
    /// `alg` is not ES256 or RS256 (`none`, HS*, PS*, EdDSA, …).
    #[error("algorithm {0:?} is not accepted (only ES256 and RS256)")]
    AlgorithmNotAllowed(String),
    /// The header has `crit`: no extension is understood, so any is refused (RFC 7515 §4.1.11).
    #[error("critical header extensions are not supported")]
    CriticalHeader,
    /// The header names or carries a key (`jku`, `jwk`, `x5u`, `x5c`); keys come only
    /// from the configured JWKS URL.
    #[error("header parameter {0:?} is not accepted: keys come only from the pinned JWKS")]
    KeyInHeader(&'static str),
    /// No `kid` header: the key cannot be chosen.
    #[error("assertion has no key id (kid)")]
    MissingKeyId,
    /// No published key has this `kid`, even after a (rate-limited) JWKS refresh.
    #[error("no published signing key matches the assertion's key id")]
    UnknownKeyId,
    /// No key set has ever been fetched successfully (JWKS unreachable or invalid).
    #[error("signing keys are unavailable: the JWKS has not been fetched successfully")]
    KeysUnavailable,
    /// The header `alg` does not fit the key found for `kid` (EC ↔ ES256, RSA ↔ RS256).
    #[error("header algorithm {header} does not match the {key} key with that key id")]
    AlgorithmMismatch {
        /// The algorithm the header claims.
        header: Algorithm,
        /// The algorithm of the published key.
        key: Algorithm,
    },
    /// The signature does not verify under the published key.
    #[error("signature does not verify")]
    BadSignature,
    /// A required claim is absent.
    #[error("required claim {0:?} is missing")]
    MissingClaim(&'static str),
    /// A claim has the wrong JSON type or an out-of-range value.
    #[error("claim {0:?} has the wrong type or an invalid value")]
    InvalidClaim(&'static str),
    /// `exp` is in the past by more than the leeway.
    #[error("assertion expired")]
    Expired,
    /// `nbf` is in the future by more than the leeway.
    #[error("assertion is not valid yet (nbf)")]
    NotYetValid,
    /// `iat` is in the future by more than the leeway.
    #[error("assertion was issued in the future (iat)")]
    IssuedInFuture,
    /// `aud` does not name this service.
    #[error("audience does not match")]
    WrongAudience,
    /// `iss` is not this service's host (in host or `https://host/` form).
    #[error("issuer does not match")]
    WrongIssuer,
    /// The caller needs an email and the assertion's `email` is empty.
    #[error("assertion carries no email address")]
    MissingEmail,
}

impl VerifyError {
    /// A short, stable, public description, safe to show the user in a 403.
    pub fn reason(&self) -> &'static str {
        match self {
            VerifyError::TooLong { .. } => "token too large",
            VerifyError::Malformed(_) => "malformed token",
            VerifyError::AlgorithmNotAllowed(_) => "algorithm not allowed",
            VerifyError::CriticalHeader => "unsupported critical header",
            VerifyError::KeyInHeader(_) => "key reference in token header",
            VerifyError::MissingKeyId => "missing key id",
            VerifyError::UnknownKeyId => "signing key not found",
            VerifyError::KeysUnavailable => "signing keys unavailable",
            VerifyError::AlgorithmMismatch { .. } => "algorithm does not match key",
            VerifyError::BadSignature => "invalid signature",
            VerifyError::MissingClaim(_) => "missing claim",
            VerifyError::InvalidClaim(_) => "invalid claim",
            VerifyError::Expired => "token expired",
            VerifyError::NotYetValid => "token not yet valid",
            VerifyError::IssuedInFuture => "token issued in the future",
            VerifyError::WrongAudience => "wrong audience",
            VerifyError::WrongIssuer => "wrong issuer",
            VerifyError::MissingEmail => "email missing",
        }
    }

    /// True when the failure is ours, not the caller's (no keys could be
    /// loaded): the web layer may answer 503 rather than 403.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, VerifyError::KeysUnavailable)
    }
}

/// A [`crate::VerifierConfig`] that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The JWKS URL does not parse.
    #[error("JWKS URL {url:?} is not a valid URL: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// The parser's complaint.
        reason: String,
    },
    /// Only `http` and `https` can reach Pomerium.
    #[error("JWKS URL scheme {0:?} is not http or https")]
    UnsupportedScheme(String),
    /// Keys fetched over plain http from another machine could be swapped in
    /// transit, and whoever swaps them can sign any identity.
    #[error(
        "JWKS URL {0:?} uses plain http to a host that is not loopback; use https so the keys cannot be replaced on the way"
    )]
    PlainHttpNotLoopback(String),
    /// Credentials in the URL would end up in logs.
    #[error("JWKS URL must not contain a username or password")]
    CredentialsInUrl,
    /// An expected `aud`/`iss` is not a bare hostname (empty, or has a path, scheme or spaces).
    #[error("{field} must be a bare hostname as Pomerium writes it, got {value:?}")]
    InvalidExpectedValue {
        /// `audience` or `issuer`.
        field: &'static str,
        /// The value given.
        value: String,
    },
    /// A duration that must be positive is zero.
    #[error("{0} must be greater than zero")]
    ZeroDuration(&'static str),
    /// Leeway beyond the assertion lifetime would make `exp` meaningless.
    #[error("leeway {given:?} is over the {max:?} maximum")]
    LeewayTooLarge {
        /// The leeway given.
        given: Duration,
        /// The largest accepted.
        max: Duration,
    },
    /// A longer interval would keep an assertion signed with a newly
    /// published key waiting that long.
    #[error("minimum JWKS fetch interval {given:?} is over the {max:?} maximum")]
    MinFetchIntervalTooLarge {
        /// The interval given.
        given: Duration,
        /// The largest accepted.
        max: Duration,
    },
    /// A byte limit that must be positive is zero.
    #[error("{0} must be greater than zero")]
    ZeroLimit(&'static str),
    /// The HTTP client could not be built (TLS backend initialisation).
    #[error("cannot build the JWKS HTTP client: {0}")]
    HttpClient(String),
}
