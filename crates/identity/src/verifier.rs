//! The verification pipeline: size cap → verified-token cache → header rules
//! → key by `kid` → signature → claim rules → cache.

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::Url;

use crate::cache::{Lookup, TokenCache, TokenDigest};
use crate::identity::People;
use crate::jwks::{JwksError, KeyCache};
use crate::token::{Expected, RawClaims, parse_header};
use crate::{ConfigError, Identity, VerifierConfig, VerifyError};

/// Verifies `X-Pomerium-Jwt-Assertion` values. Cheap to clone (shared state);
/// `Send + Sync`. Must be used inside a Tokio runtime (JWKS fetches).
#[derive(Clone)]
pub struct Verifier(Arc<Inner>);

struct Inner {
    keys: Arc<KeyCache>,
    tokens: TokenCache,
    people: People,
    expected: Expected,
    max_token_bytes: usize,
}

impl Verifier {
    /// Checks the configuration and builds the verifier. No network I/O:
    /// keys are fetched on first use, or eagerly with [`Verifier::refresh_keys`].
    pub fn new(config: VerifierConfig) -> Result<Self, ConfigError> {
        let config = config.validated()?;
        let client = jit_http::client()
            .timeout(config.fetch_timeout)
            .connect_timeout(config.fetch_timeout)
            // The pinned URL is the only key source; a redirect would move it.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ConfigError::HttpClient(e.to_string()))?;
        let leeway_secs = i64::try_from(config.leeway.as_secs()).unwrap_or(i64::MAX);
        Ok(Verifier(Arc::new(Inner {
            keys: Arc::new(KeyCache::new(
                config.jwks_url,
                client,
                config.max_jwks_bytes,
                config.min_fetch_interval,
            )),
            tokens: TokenCache::new(config.token_cache_capacity),
            people: People::default(),
            expected: Expected::new(config.audience, config.issuer, leeway_secs),
            max_token_bytes: config.max_token_bytes,
        })))
    }

    /// Verifies an assertion and returns who it vouches for. A token already
    /// verified is answered from memory until its `exp` (+ leeway).
    pub async fn verify(&self, token: &str) -> Result<Arc<Identity>, VerifyError> {
        let verified = match self.recall(token, Arc::clone) {
            Recall::Known(verified) => verified,
            Recall::Unknown { digest, generation } => self.judge(token, digest, generation).await,
        };
        if let Err(e) = &verified {
            crate::measure::refused(e);
        }
        verified
    }

    /// [`Verifier::verify`] without waiting, for a token already judged (or
    /// too long to judge): `None` when it has to be checked, which
    /// `verify` then does. The request path asks this first, so a known
    /// token costs no future.
    ///
    /// `read` takes what the caller needs from the identity while the cache
    /// holds it (under a lock: keep it short). Not cloning the `Arc` spares
    /// a write to a count on a line the other worker may have written last:
    /// that count was a third of this lookup's time in perf.
    pub fn verify_known<T>(
        &self,
        token: &str,
        read: impl FnOnce(&Arc<Identity>) -> T,
    ) -> Option<Result<T, VerifyError>> {
        match self.recall(token, read) {
            Recall::Known(verified) => {
                if let Err(e) = &verified {
                    crate::measure::refused(e);
                }
                Some(verified)
            }
            Recall::Unknown { .. } => None,
        }
    }

    /// The size cap and the verified-token cache; `read` sees a hit.
    fn recall<T>(&self, token: &str, read: impl FnOnce(&Arc<Identity>) -> T) -> Recall<T> {
        let inner = &*self.0;
        if token.len() > inner.max_token_bytes {
            return Recall::Known(Err(VerifyError::TooLong {
                len: token.len(),
                max: inner.max_token_bytes,
            }));
        }
        // Read before the key lookup: see `KeyCache::fetch_and_store`.
        let generation = inner.keys.generation();
        // aws-lc's SHA-256 (SHA-NI where the CPU has it): every request pays it.
        let digest: TokenDigest = sha256(token.as_bytes());
        match inner.tokens.get(&digest, unix_now(), generation, read) {
            Lookup::Hit(read) => Recall::Known(Ok(read)),
            Lookup::Expired => Recall::Known(Err(VerifyError::Expired)),
            Lookup::Miss => Recall::Unknown { digest, generation },
        }
    }

    /// The header, key, signature and claims of a token not in the cache.
    async fn judge(
        &self,
        token: &str,
        digest: TokenDigest,
        generation: u64,
    ) -> Result<Arc<Identity>, VerifyError> {
        let inner = &*self.0;
        let header = parse_header(token)?;
        let key = inner.keys.key(&header.kid).await?;
        if key.alg() != header.alg {
            return Err(VerifyError::AlgorithmMismatch {
                header: header.alg,
                key: key.alg(),
            });
        }
        let claims: RawClaims = key.verify(token)?;
        // Read the clock again: the key lookup may have waited for a fetch.
        let now = unix_now();
        let identity = Arc::new(inner.people.share(claims.judge(&inner.expected, now)?));
        let valid_until = identity
            .expires_at()
            .unix_timestamp()
            .saturating_add(inner.expected.leeway_secs);
        inner
            .tokens
            .insert(digest, Arc::clone(&identity), valid_until, generation, now);
        Ok(identity)
    }

    /// Fetches the JWKS now, whatever its freshness or the minimum interval; for a
    /// start-up check. Returns the number of usable keys. On failure the
    /// previous keys stay in use.
    pub async fn refresh_keys(&self) -> Result<usize, JwksError> {
        self.0.keys.refresh().await
    }

    /// The pinned JWKS URL.
    pub fn jwks_url(&self) -> &Url {
        self.0.keys.url()
    }

    /// The expected `aud`.
    pub fn audience(&self) -> &str {
        &self.0.expected.audience
    }
}

/// What the cache knows of a token.
enum Recall<T> {
    Known(Result<T, VerifyError>),
    Unknown {
        digest: TokenDigest,
        generation: u64,
    },
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("jwks_url", &self.0.keys.url().as_str())
            .field("audience", &self.0.expected.audience)
            .field("issuer", &self.0.expected.issuer_host)
            .finish_non_exhaustive()
    }
}

fn sha256(bytes: &[u8]) -> TokenDigest {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    digest
        .as_ref()
        .try_into()
        .expect("a SHA-256 digest is 32 bytes")
}

/// Whole seconds since 1970 from the clock itself: through an
/// `OffsetDateTime` every lookup paid for a calendar date both ways. A
/// clock set before 1970 reads 0, where every token was issued in the
/// future and is refused.
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_clock_reads_as_the_calendar_does() {
        let before = time::OffsetDateTime::now_utc().unix_timestamp();
        let now = super::unix_now();
        let after = time::OffsetDateTime::now_utc().unix_timestamp();
        assert!((before..=after).contains(&now), "{before} {now} {after}");
    }
}
