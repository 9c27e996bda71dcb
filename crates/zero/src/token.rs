//! The short-lived ID token: parsing the `/token` answer, when to refresh,
//! and a single-flight cache.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Refresh this long before expiry (Pomerium's own clients use one minute).
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// Upper bound on a token's believed lifetime, so an absurd
/// `expiresInSeconds` cannot pin a token forever (the API issues 1 h tokens).
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// The body of a successful `POST /token`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TokenResponse {
    id_token: String,
    #[serde(deserialize_with = "seconds")]
    expires_in_seconds: u64,
}

/// `expiresInSeconds` is a JSON string holding an int64 in the spec; a plain
/// number is accepted too in case the server ever sends one.
fn seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Seconds {
        Text(String),
        Number(u64),
    }
    match Seconds::deserialize(d)? {
        Seconds::Number(n) => Ok(n),
        Seconds::Text(s) => s.trim().parse().map_err(|_| {
            serde::de::Error::custom(format!(
                "expiresInSeconds {s:?} is not a non-negative integer"
            ))
        }),
    }
}

/// An ID token, its ready-made `Authorization` header (marked sensitive so
/// the HTTP stack never logs it) and the moment it stops being used.
#[derive(Clone)]
pub(crate) struct IdToken {
    value: SecretString,
    header: HeaderValue,
    refresh_at: Instant,
}

impl IdToken {
    /// Builds the token from the `/token` answer; `sent_at` is when the
    /// exchange request was sent, so the network delay counts against the
    /// token's life rather than extending it.
    pub(crate) fn new(response: TokenResponse, sent_at: Instant) -> Result<Self, &'static str> {
        if response.id_token.is_empty() {
            return Err("idToken is empty");
        }
        let mut header = HeaderValue::try_from(format!("Bearer {}", response.id_token))
            .map_err(|_| "idToken contains characters not allowed in an HTTP header")?;
        header.set_sensitive(true);
        let lifetime = Duration::from_secs(response.expires_in_seconds).min(MAX_LIFETIME);
        Ok(IdToken {
            value: SecretString::from(response.id_token),
            header,
            refresh_at: sent_at + lifetime - refresh_margin(lifetime),
        })
    }

    /// The raw token, for redacting it from error bodies.
    pub(crate) fn secret(&self) -> &str {
        self.value.expose_secret()
    }

    /// `Bearer <token>`, marked sensitive.
    pub(crate) fn authorization(&self) -> &HeaderValue {
        &self.header
    }

    fn is_fresh(&self, now: Instant) -> bool {
        now < self.refresh_at
    }
}

impl fmt::Debug for IdToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdToken")
            .field("value", &"[redacted]")
            .field("refresh_at", &self.refresh_at)
            .finish()
    }
}

/// One minute, as Pomerium's own clients do; for a token that lives no
/// longer than that (the API issues one-hour tokens) half its lifetime, so
/// it is still reused at all.
fn refresh_margin(lifetime: Duration) -> Duration {
    if lifetime > REFRESH_MARGIN {
        REFRESH_MARGIN
    } else {
        lifetime / 2
    }
}

/// Holds the current ID token; concurrent callers that find it stale share
/// one exchange because the exchange runs while the lock is held. A caller
/// cancelled mid-exchange releases the lock and the next waiter exchanges.
#[derive(Default)]
pub(crate) struct TokenCache {
    slot: Mutex<Option<IdToken>>,
}

impl TokenCache {
    /// The cached token if fresh, else the result of `exchange`.
    pub(crate) async fn get<E, F, Fut>(&self, exchange: F) -> Result<IdToken, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<IdToken, E>>,
    {
        let mut slot = self.slot.lock().await;
        if let Some(token) = slot.as_ref().filter(|t| t.is_fresh(Instant::now())) {
            return Ok(token.clone());
        }
        let token = exchange().await?;
        *slot = Some(token.clone());
        Ok(token)
    }

    /// Forgets `rejected` (the server answered 401 to it) unless another
    /// caller already replaced it, so a burst of 401s costs one exchange.
    pub(crate) async fn invalidate(&self, rejected: &IdToken) {
        let mut slot = self.slot.lock().await;
        if slot
            .as_ref()
            .is_some_and(|t| t.secret() == rejected.secret())
        {
            *slot = None;
        }
    }
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.slot.try_lock() {
            Ok(slot) => match slot.as_ref() {
                Some(t) => format!("token refreshing at {:?}", t.refresh_at),
                None => "no token".to_owned(),
            },
            Err(_) => "busy".to_owned(),
        };
        f.debug_struct("TokenCache").field("state", &state).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn response(json: &str) -> Result<TokenResponse, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn expires_in_seconds_is_a_string_or_a_number() {
        let r = response(r#"{"idToken":"t","expiresInSeconds":"3600"}"#).unwrap();
        assert_eq!(r.expires_in_seconds, 3600);
        let r = response(r#"{"idToken":"t","expiresInSeconds":120,"extra":1}"#).unwrap();
        assert_eq!(r.expires_in_seconds, 120);
        for bad in [
            r#"{"idToken":"t","expiresInSeconds":"soon"}"#,
            r#"{"idToken":"t","expiresInSeconds":"-5"}"#,
            r#"{"idToken":"t","expiresInSeconds":-5}"#,
            r#"{"idToken":"t"}"#,
            r#"{"expiresInSeconds":"5"}"#,
        ] {
            assert!(response(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refresh_one_minute_early_or_at_half_life_for_short_tokens() {
        assert_eq!(
            refresh_margin(Duration::from_secs(3600)),
            Duration::from_secs(60)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(61)),
            Duration::from_secs(60)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(60)),
            Duration::from_secs(30)
        );
        assert_eq!(refresh_margin(Duration::ZERO), Duration::ZERO);

        let sent = Instant::now();
        let t = IdToken::new(
            response(r#"{"idToken":"t","expiresInSeconds":"3600"}"#).unwrap(),
            sent,
        )
        .unwrap();
        assert!(t.is_fresh(sent + Duration::from_secs(3539)));
        assert!(!t.is_fresh(sent + Duration::from_secs(3540)));
        let huge = IdToken::new(
            response(r#"{"idToken":"t","expiresInSeconds":"18446744073709551615"}"#).unwrap(),
            sent,
        )
        .unwrap();
        assert!(!huge.is_fresh(sent + MAX_LIFETIME));
        let empty = response(r#"{"idToken":"","expiresInSeconds":"60"}"#).unwrap();
        assert!(IdToken::new(empty, sent).is_err());
        let newline = response(r#"{"idToken":"a\nb","expiresInSeconds":"60"}"#).unwrap();
        assert!(IdToken::new(newline, sent).is_err());
    }

    #[test]
    fn debug_hides_the_token() {
        let t = IdToken::new(
            response(r#"{"idToken":"very-secret-id-token","expiresInSeconds":"3600"}"#).unwrap(),
            Instant::now(),
        )
        .unwrap();
        assert!(!format!("{t:?}").contains("very-secret"));
        assert!(!format!("{:?}", t.authorization()).contains("very-secret"));
        let cache = TokenCache {
            slot: Mutex::new(Some(t)),
        };
        assert!(!format!("{cache:?}").contains("very-secret"));
    }

    fn token(value: &str) -> IdToken {
        let body = format!(r#"{{"idToken":"{value}","expiresInSeconds":"3600"}}"#);
        IdToken::new(response(&body).unwrap(), Instant::now()).unwrap()
    }

    #[tokio::test]
    async fn cache_is_single_flight_and_invalidation_is_targeted() {
        let cache = std::sync::Arc::new(TokenCache::default());
        let exchanges = std::sync::Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (cache, exchanges) = (cache.clone(), exchanges.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get(|| async {
                        exchanges.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok::<_, ()>(token("a"))
                    })
                    .await
                    .unwrap()
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().secret(), "a");
        }
        assert_eq!(exchanges.load(Ordering::SeqCst), 1);

        // A stale 401 for an already replaced token does not evict the new one.
        cache.invalidate(&token("old")).await;
        let got = cache
            .get(|| async { Err::<IdToken, _>("must not exchange") })
            .await
            .unwrap();
        assert_eq!(got.secret(), "a");
        cache.invalidate(&token("a")).await;
        let got = cache
            .get(|| async { Ok::<_, ()>(token("b")) })
            .await
            .unwrap();
        assert_eq!(got.secret(), "b");
    }

    #[tokio::test]
    async fn a_failed_exchange_is_not_cached() {
        let cache = TokenCache::default();
        assert_eq!(
            cache
                .get(|| async { Err::<IdToken, _>("boom") })
                .await
                .unwrap_err(),
            "boom"
        );
        let got = cache
            .get(|| async { Ok::<_, ()>(token("ok")) })
            .await
            .unwrap();
        assert_eq!(got.secret(), "ok");
    }
}
