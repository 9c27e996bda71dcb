//! The published key set, fetched from the pinned JWKS URL and kept in memory.
//!
//! - Fresh for the response's `Cache-Control: max-age` (60 s when absent,
//!   clamped to [`MAX_JWKS_MAX_AGE`]); a stale set keeps serving while one
//!   background fetch revalidates it (with `If-None-Match`).
//! - An unknown `kid` waits for a fetch that started after it was asked
//!   for, so a key published a moment ago is found: at once when the last
//!   fetch is older than the minimum interval (1 s), else at the end of it.
//!   Waiting callers share that fetch (single-flight), so any number of
//!   unknown `kid`s costs at most one fetch per interval.
//! - A failed fetch keeps the last good set and is logged (never with a token).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, CACHE_CONTROL, ETAG, HeaderMap, HeaderValue, IF_NONE_MATCH};
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::VerifyError;
use crate::keys::VerifyingKey;

/// How long a key set is fresh when the response has no usable `max-age`
/// (Pomerium sends exactly this).
pub const DEFAULT_JWKS_MAX_AGE: Duration = Duration::from_secs(60);
/// Upper bound on an advertised `max-age`, so a withdrawn key stops being
/// trusted within the hour whatever the server says.
pub const MAX_JWKS_MAX_AGE: Duration = Duration::from_secs(60 * 60);

/// Why fetching the JWKS failed. The last good key set stays in use.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// No complete answer within the fetch timeout.
    #[error("JWKS request timed out")]
    Timeout,
    /// Connection or protocol failure.
    #[error("JWKS request failed")]
    Request(#[source] reqwest::Error),
    /// The endpoint answered with a non-success status.
    #[error("JWKS endpoint answered HTTP {0}")]
    Status(StatusCode),
    /// The body is over the configured cap.
    #[error("JWKS body is over the {max}-byte limit")]
    TooLarge {
        /// The configured cap.
        max: usize,
    },
    /// The body is not `{"keys": [...]}`.
    #[error("JWKS body is not a JSON key set")]
    NotAKeySet,
    /// Every key was unusable (wrong type, curve, size, `use`, `alg`, or malformed).
    #[error("JWKS holds no usable ES256/RS256 signing key ({skipped} skipped)")]
    NoUsableKeys {
        /// How many entries were skipped.
        skipped: usize,
    },
}

impl From<reqwest::Error> for JwksError {
    fn from(error: reqwest::Error) -> Self {
        if error.is_timeout() {
            JwksError::Timeout
        } else {
            JwksError::Request(error)
        }
    }
}

/// One successfully fetched key set.
#[derive(Debug)]
struct KeySet {
    keys: HashMap<String, Arc<VerifyingKey>>,
    fresh_until: Instant,
    etag: Option<HeaderValue>,
}

/// Serialises fetches; remembers when the last one started.
#[derive(Debug, Default)]
struct FetchState {
    last_attempt: Option<Instant>,
}

impl FetchState {
    /// How long until the next fetch may start (zero: now).
    fn wait_for_next(&self, min_interval: Duration) -> Duration {
        self.last_attempt.map_or(Duration::ZERO, |at| {
            min_interval.saturating_sub(at.elapsed())
        })
    }

    /// Whether a fetch started at or after `asked`, so its answer is at least
    /// as new as the caller's token.
    fn fetched_since(&self, asked: Instant) -> bool {
        self.last_attempt.is_some_and(|at| at >= asked)
    }
}

/// In-memory cache of the pinned JWKS.
#[derive(Debug)]
pub(crate) struct KeyCache {
    url: Url,
    client: reqwest::Client,
    max_body: usize,
    min_interval: Duration,
    /// `None` until a fetch has succeeded.
    current: RwLock<Option<Arc<KeySet>>>,
    /// Bumped whenever a fetch withdraws a key; see `TokenCache::get`.
    generation: AtomicU64,
    fetch: Arc<Mutex<FetchState>>,
}

impl KeyCache {
    pub(crate) fn new(
        url: Url,
        client: reqwest::Client,
        max_body: usize,
        min_interval: Duration,
    ) -> Self {
        KeyCache {
            url,
            client,
            max_body,
            min_interval,
            current: RwLock::new(None),
            generation: AtomicU64::new(0),
            fetch: Arc::new(Mutex::new(FetchState::default())),
        }
    }

    pub(crate) fn url(&self) -> &Url {
        &self.url
    }

    /// Changes whenever a key is withdrawn from the published set.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    fn snapshot(&self) -> Option<Arc<KeySet>> {
        // The slot is replaced whole; a panic elsewhere cannot corrupt it.
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn lookup(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        self.snapshot()?.keys.get(kid).cloned()
    }

    /// The key published under `kid`. An unknown `kid` waits for a fetch
    /// that starts after this call (at most one per minimum interval, shared
    /// by every caller waiting), so a key published just before its first
    /// token is found, while forged `kid`s cannot multiply fetches.
    pub(crate) async fn key(self: &Arc<Self>, kid: &str) -> Result<Arc<VerifyingKey>, VerifyError> {
        if let Some(set) = self.snapshot()
            && let Some(key) = set.keys.get(kid)
        {
            if Instant::now() >= set.fresh_until {
                self.revalidate_in_background();
            }
            return Ok(Arc::clone(key));
        }

        let asked = Instant::now();
        let mut state = self.fetch.lock().await;
        // A fetch that finished while we queued may have brought the key; one
        // that started after we asked saw everything published before our
        // token, so another would not find more.
        if self.lookup(kid).is_none() && !state.fetched_since(asked) {
            // Holding the lock while waiting makes later callers queue for
            // this fetch instead of starting their own.
            tokio::time::sleep(state.wait_for_next(self.min_interval)).await;
            // A failure is logged inside and leaves the last good set in place.
            let _ = self.fetch_and_store(&mut state).await;
        }
        self.lookup(kid).ok_or_else(|| {
            if self.snapshot().is_none() {
                VerifyError::KeysUnavailable
            } else {
                VerifyError::UnknownKeyId
            }
        })
    }

    /// Fetches now (waiting for any fetch in flight), regardless of freshness
    /// or the minimum interval. Returns how many usable keys are published.
    pub(crate) async fn refresh(&self) -> Result<usize, JwksError> {
        let mut state = self.fetch.lock().await;
        self.fetch_and_store(&mut state).await
    }

    /// Starts one revalidation unless a fetch is running or the minimum
    /// interval has not passed; the caller carries on with the stale (still published) key.
    fn revalidate_in_background(self: &Arc<Self>) {
        let Ok(mut state) = Arc::clone(&self.fetch).try_lock_owned() else {
            return;
        };
        if !state.wait_for_next(self.min_interval).is_zero() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("no Tokio runtime: cannot refresh the stale JWKS in the background");
            return;
        };
        let cache = Arc::clone(self);
        runtime.spawn(async move {
            // Failures are logged inside; the stale set stays in use.
            let _ = cache.fetch_and_store(&mut state).await;
        });
    }

    /// One fetch; on success replaces the key set. Caller holds the fetch lock.
    async fn fetch_and_store(&self, state: &mut FetchState) -> Result<usize, JwksError> {
        state.last_attempt = Some(Instant::now());
        let previous = self.snapshot();
        let fetched = self.fetch(previous.as_deref()).await;
        crate::measure::jwks_fetched(fetched.as_ref().err());
        let set = match fetched {
            Ok(set) => set,
            Err(error) => {
                tracing::warn!(
                    url = %self.url,
                    error = %error,
                    cause = ?std::error::Error::source(&error).map(ToString::to_string),
                    keeping_last_good = previous.is_some(),
                    "JWKS fetch failed"
                );
                return Err(error);
            }
        };
        let withdrew_a_key =
            previous.is_some_and(|p| p.keys.keys().any(|kid| !set.keys.contains_key(kid)));
        let count = set.keys.len();
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(set));
        // After the store: a verification that reads the new generation also
        // sees the new set, so it cannot cache a token under a withdrawn key.
        if withdrew_a_key {
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
        tracing::debug!(url = %self.url, keys = count, "JWKS refreshed");
        Ok(count)
    }

    /// GETs the JWKS, revalidating `previous` with `If-None-Match` when it
    /// has an ETag (a 304 renews it as is).
    async fn fetch(&self, previous: Option<&KeySet>) -> Result<KeySet, JwksError> {
        let mut request = self
            .client
            .get(self.url.clone())
            .header(ACCEPT, HeaderValue::from_static("application/json"));
        let revalidating = previous.and_then(|p| p.etag.as_ref().map(|etag| (p, etag)));
        if let Some((_, etag)) = revalidating {
            request = request.header(IF_NONE_MATCH, etag.clone());
        }
        let mut response = request.send().await?;
        let fresh_until = Instant::now() + max_age(response.headers());
        let status = response.status();
        if let Some((previous, etag)) = revalidating
            && status == StatusCode::NOT_MODIFIED
        {
            return Ok(KeySet {
                keys: previous.keys.clone(),
                fresh_until,
                etag: Some(etag.clone()),
            });
        }
        if !status.is_success() {
            return Err(JwksError::Status(status));
        }
        let too_large = JwksError::TooLarge { max: self.max_body };
        if response
            .content_length()
            .is_some_and(|len| len > self.max_body as u64)
        {
            return Err(too_large);
        }
        let etag = response.headers().get(ETAG).cloned();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > self.max_body {
                return Err(too_large);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(KeySet {
            keys: parse_key_set(&body)?,
            fresh_until,
            etag,
        })
    }
}

/// Decodes every usable key; unusable ones are skipped and logged.
fn parse_key_set(body: &[u8]) -> Result<HashMap<String, Arc<VerifyingKey>>, JwksError> {
    #[derive(Deserialize)]
    struct Body {
        keys: Vec<Value>,
    }
    let body: Body = serde_json::from_slice(body).map_err(|_| JwksError::NotAKeySet)?;
    let mut keys = HashMap::with_capacity(body.keys.len());
    let mut skipped = 0;
    for jwk in body.keys {
        match VerifyingKey::from_jwk(jwk) {
            Ok((kid, key)) if !keys.contains_key(&kid) => {
                keys.insert(kid, Arc::new(key));
            }
            Ok((kid, _)) => {
                skipped += 1;
                tracing::warn!(kid, "JWKS publishes this kid twice; keeping the first key");
            }
            Err(reason) => {
                skipped += 1;
                tracing::warn!(reason, "skipping unusable JWKS key");
            }
        }
    }
    if keys.is_empty() {
        return Err(JwksError::NoUsableKeys { skipped });
    }
    Ok(keys)
}

/// Freshness from `Cache-Control`: `max-age` (clamped), `no-store`/`no-cache`
/// as zero, otherwise [`DEFAULT_JWKS_MAX_AGE`].
fn max_age(headers: &HeaderMap) -> Duration {
    let mut max_age = None;
    for value in headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
    {
        for directive in value.split(',') {
            let (name, argument) = match directive.split_once('=') {
                Some((name, argument)) => (name.trim(), Some(argument.trim().trim_matches('"'))),
                None => (directive.trim(), None),
            };
            if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
                return Duration::ZERO;
            }
            if name.eq_ignore_ascii_case("max-age")
                && let Some(seconds) = argument.and_then(|a| a.parse::<u64>().ok())
            {
                max_age = Some(Duration::from_secs(seconds));
            }
        }
    }
    max_age.map_or(DEFAULT_JWKS_MAX_AGE, |age| age.min(MAX_JWKS_MAX_AGE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jit_fakes::pomerium::{Alg, SigningKey};
    use serde_json::json;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(CACHE_CONTROL, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn cache_control_max_age() {
        let secs = |values: &[&str]| max_age(&headers(values)).as_secs();
        assert_eq!(secs(&[]), 60);
        assert_eq!(secs(&["max-age=60"]), 60);
        assert_eq!(secs(&["public, MAX-AGE=5"]), 5);
        assert_eq!(secs(&["max-age=\"7\""]), 7);
        assert_eq!(secs(&["max-age=0"]), 0);
        assert_eq!(secs(&["max-age=99999999"]), 3600);
        assert_eq!(secs(&["max-age=abc"]), 60);
        assert_eq!(secs(&["private"]), 60);
        assert_eq!(secs(&["max-age=30, no-cache"]), 0);
        assert_eq!(secs(&["no-store"]), 0);
    }

    #[test]
    fn key_set_parsing_skips_unusable_keys() {
        let good = SigningKey::generate(Alg::Es256).unwrap().public_jwk();
        let mut wrong_alg = SigningKey::generate(Alg::Es256).unwrap().public_jwk();
        wrong_alg["alg"] = json!("RS256");
        let body = json!({"keys": [
            good, good.clone(), wrong_alg, {"kty": "oct", "kid": "h", "k": "c2VjcmV0"}, "junk", 7,
        ]});
        let keys = parse_key_set(body.to_string().as_bytes()).unwrap();
        assert_eq!(keys.len(), 1);
        assert!(keys.contains_key(good["kid"].as_str().unwrap()));

        let only_bad = json!({"keys": [{"kty": "EC"}]}).to_string();
        assert!(matches!(
            parse_key_set(only_bad.as_bytes()),
            Err(JwksError::NoUsableKeys { skipped: 1 })
        ));
        for body in [r#"{"keys":null}"#, r#"{"keys":{}}"#, "{}", "[]", "not json"] {
            assert!(
                matches!(parse_key_set(body.as_bytes()), Err(JwksError::NotAKeySet)),
                "{body}"
            );
        }
    }
}
