//! Client configuration: where the API lives, which credentials to use, and
//! how patient to be.

use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

use reqwest::Url;
use secrecy::SecretString;

/// The Pomerium Zero console; the management API lives under `/api/v0`.
pub const DEFAULT_BASE_URL: &str = "https://console.pomerium.app";

/// Why a [`crate::ZeroConfig`] cannot be turned into a client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `API_BASE_URL` is not usable; the input is not echoed because it
    /// might carry credentials.
    #[error("invalid Pomerium Zero API base URL: {reason}")]
    InvalidBaseUrl {
        /// What is wrong with it.
        reason: String,
    },
    /// The API user token is empty.
    #[error(
        "the Pomerium Zero API user token is empty; create one in the console under Account → API Tokens"
    )]
    EmptyApiUserToken,
    /// The organization id is empty or contains whitespace.
    #[error(
        "invalid Pomerium Zero organization id {0:?}: expected a non-empty id without whitespace (see the console URL)"
    )]
    InvalidOrganizationId(String),
    /// A zero request timeout would fail every call.
    #[error("the Pomerium Zero request timeout must be greater than zero")]
    ZeroTimeout,
    /// The HTTP client could not be built (TLS backend initialisation).
    #[error("could not build the HTTP client")]
    HttpClient(#[source] reqwest::Error),
}

/// The root of the management API, e.g. `https://console.pomerium.app/api/v0`.
///
/// Parsed from the origin (`https://console.pomerium.app`, what `API_BASE_URL`
/// holds); `/api/v0` is appended unless already present. Plain `http` is only
/// accepted for loopback hosts (tests, the local demo) because the API user
/// token would otherwise cross the network in clear text.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiBaseUrl(Url);

impl ApiBaseUrl {
    /// The API root, ending in `/api/v0`.
    pub fn as_url(&self) -> &Url {
        &self.0
    }
}

impl Default for ApiBaseUrl {
    fn default() -> Self {
        DEFAULT_BASE_URL
            .parse()
            .expect("the default base URL is valid")
    }
}

impl FromStr for ApiBaseUrl {
    type Err = ConfigError;

    fn from_str(input: &str) -> Result<Self, ConfigError> {
        let invalid = |reason: &str| ConfigError::InvalidBaseUrl {
            reason: reason.to_owned(),
        };
        let mut url = Url::parse(input.trim())
            .map_err(|e| invalid(&format!("{e} (expected e.g. {DEFAULT_BASE_URL})")))?;
        let Some(host) = url.host_str() else {
            return Err(invalid("it has no host"));
        };
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" => {
                return Err(invalid(
                    "plain http is only allowed for loopback hosts; use https so the API token is not sent in clear text",
                ));
            }
            other => return Err(invalid(&format!("unsupported scheme {other:?}"))),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(
                "it must not contain credentials; the API user token is configured separately",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("it must not contain a query or fragment"));
        }
        let path = url.path().trim_end_matches('/');
        let path = path.strip_suffix("/api/v0").unwrap_or(path);
        let api_root = format!("{path}/api/v0");
        url.set_path(&api_root);
        Ok(ApiBaseUrl(url))
    }
}

impl fmt::Display for ApiBaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl fmt::Debug for ApiBaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiBaseUrl({})", self.0)
    }
}

/// How failed calls are retried: exponential backoff with full jitter.
///
/// Retry `n` (1-based) sleeps a uniformly random time in
/// `[0, min(max_delay, base_delay * 2^(n-1))]`. A `Retry-After` header
/// replaces that delay (plus up to `base_delay` of jitter, so clients that
/// were told the same time do not return in lockstep); if it asks for more
/// than `max_retry_after` the call fails at once with
/// [`crate::ZeroError::RateLimited`] carrying the requested delay, so the
/// caller can schedule the work instead of blocking on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts including the first one.
    pub max_attempts: NonZeroU32,
    /// Upper bound of the first retry's delay.
    pub base_delay: Duration,
    /// Upper bound of any backoff delay.
    pub max_delay: Duration,
    /// Longest `Retry-After` the client is willing to wait for.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: NonZeroU32::new(4).expect("4 is not zero"),
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Upper bound of the backoff before retry number `retry` (1-based).
    pub(crate) fn backoff_ceiling(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// The sleep before retry number `retry`, or `None` when the server asked
    /// to wait longer than [`RetryPolicy::max_retry_after`].
    pub(crate) fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Option<Duration> {
        match retry_after {
            Some(wait) if wait > self.max_retry_after => None,
            Some(wait) => Some(wait + jitter(self.base_delay)),
            None => Some(jitter(self.backoff_ceiling(retry))),
        }
    }
}

/// A uniformly random duration in `[0, ceiling]`.
fn jitter(ceiling: Duration) -> Duration {
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rand::random_range(0..=nanos))
}

/// Everything the client needs; build it with [`ZeroConfig::new`] and adjust
/// the public fields.
#[derive(Clone)]
pub struct ZeroConfig {
    /// `API_BASE_URL`; defaults to [`DEFAULT_BASE_URL`].
    pub base_url: ApiBaseUrl,
    /// The long-lived API user token (`API_USER_TOKEN`), exchanged for
    /// short-lived ID tokens.
    pub api_user_token: SecretString,
    /// `ORGANIZATION_ID`.
    pub organization_id: String,
    /// Deadline for each HTTP attempt (connect, send, and read the body).
    pub request_timeout: Duration,
    /// Retry behaviour for transient failures.
    pub retry: RetryPolicy,
}

impl ZeroConfig {
    /// A configuration with the default base URL, a 10 s request timeout and
    /// the default [`RetryPolicy`].
    pub fn new(api_user_token: SecretString, organization_id: impl Into<String>) -> Self {
        ZeroConfig {
            base_url: ApiBaseUrl::default(),
            api_user_token,
            organization_id: organization_id.into(),
            request_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
        }
    }
}

impl fmt::Debug for ZeroConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZeroConfig")
            .field("base_url", &self.base_url)
            .field("api_user_token", &"[redacted]")
            .field("organization_id", &self.organization_id)
            .field("request_timeout", &self.request_timeout)
            .field("retry", &self.retry)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<String, String> {
        s.parse::<ApiBaseUrl>()
            .map(|u| u.to_string())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn base_url_gets_api_root_appended_once() {
        let expect = "https://console.pomerium.app/api/v0";
        assert_eq!(parse("https://console.pomerium.app").unwrap(), expect);
        assert_eq!(parse("https://console.pomerium.app/").unwrap(), expect);
        assert_eq!(
            parse(" https://console.pomerium.app/api/v0/ ").unwrap(),
            expect
        );
        assert_eq!(
            parse("https://proxy.example/zero").unwrap(),
            "https://proxy.example/zero/api/v0"
        );
        assert_eq!(ApiBaseUrl::default().to_string(), expect);
    }

    #[test]
    fn plain_http_only_for_loopback() {
        assert_eq!(
            parse("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080/api/v0"
        );
        assert!(parse("http://[::1]:1").is_ok());
        assert!(parse("http://localhost:1").is_ok());
        let err = parse("http://console.pomerium.app").unwrap_err();
        assert!(err.contains("use https"), "{err}");
    }

    #[test]
    fn bad_base_urls_are_rejected_without_echoing_them() {
        for (input, needle) in [
            ("console.pomerium.app", "relative URL"),
            ("ftp://console.pomerium.app", "unsupported scheme"),
            ("https://user:hunter2@console.pomerium.app", "credentials"),
            ("https://console.pomerium.app/?x=1", "query"),
            ("https://console.pomerium.app/#frag", "fragment"),
            ("mailto:someone@example.com", "no host"),
        ] {
            let err = parse(input).unwrap_err();
            assert!(err.contains(needle), "{input}: {err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff_ceiling(1), Duration::from_millis(200));
        assert_eq!(p.backoff_ceiling(2), Duration::from_millis(400));
        assert_eq!(p.backoff_ceiling(3), Duration::from_millis(800));
        assert_eq!(p.backoff_ceiling(8), Duration::from_secs(10));
        assert_eq!(p.backoff_ceiling(u32::MAX), Duration::from_secs(10));
    }

    #[test]
    fn delays_stay_within_bounds() {
        let p = RetryPolicy::default();
        for retry in 1..6 {
            for _ in 0..200 {
                let d = p.delay(retry, None).unwrap();
                assert!(d <= p.backoff_ceiling(retry));
            }
        }
        for _ in 0..200 {
            let d = p.delay(1, Some(Duration::from_secs(3))).unwrap();
            assert!(d >= Duration::from_secs(3) && d <= Duration::from_secs(3) + p.base_delay);
        }
        assert_eq!(p.delay(1, Some(Duration::from_secs(61))), None);
        assert!(p.delay(1, Some(Duration::from_secs(60))).is_some());
    }

    #[test]
    fn debug_hides_the_api_token() {
        let cfg = ZeroConfig::new(SecretString::from("s3cr3t-api-token"), "org1");
        let dbg = format!("{cfg:?}");
        assert!(!dbg.contains("s3cr3t"), "{dbg}");
        assert!(dbg.contains("[redacted]") && dbg.contains("org1"), "{dbg}");
    }
}
