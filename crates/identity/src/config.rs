//! Verifier settings. The JWKS URL is parsed up front; everything else is
//! checked by [`crate::Verifier::new`].

use std::time::Duration;

use reqwest::Url;

use crate::ConfigError;

/// Default clock-skew allowance for `exp`, `nbf` and `iat` (go-jose's and sdk-go's value).
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
/// Largest accepted leeway: Pomerium assertions only live 5 minutes.
pub const MAX_LEEWAY: Duration = Duration::from_secs(5 * 60);
/// Default minimum interval between two JWKS fetches; also the longest an
/// assertion with an unknown `kid` waits for the fetch that may find its key.
pub const DEFAULT_MIN_FETCH_INTERVAL: Duration = Duration::from_secs(1);
/// Largest accepted minimum fetch interval: an assertion signed with a key
/// published a moment ago waits this long at most.
pub const MAX_MIN_FETCH_INTERVAL: Duration = Duration::from_secs(10);
/// Default timeout for one JWKS fetch (connect + headers + body).
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Default cap on the JWKS body (a handful of keys is ~1 KiB).
pub const DEFAULT_MAX_JWKS_BYTES: usize = 1024 * 1024;
/// Default cap on the assertion, checked before anything else (Pomerium's are ~1 KiB).
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Default number of verified assertions remembered until their `exp`.
pub const DEFAULT_TOKEN_CACHE_CAPACITY: usize = 10_000;

/// How to verify `X-Pomerium-Jwt-Assertion`. Build with [`VerifierConfig::new`]
/// and adjust with the `with_*` methods.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    pub(crate) jwks_url: Url,
    pub(crate) audience: String,
    pub(crate) issuer: String,
    pub(crate) leeway: Duration,
    pub(crate) min_fetch_interval: Duration,
    pub(crate) fetch_timeout: Duration,
    pub(crate) max_jwks_bytes: usize,
    pub(crate) max_token_bytes: usize,
    pub(crate) token_cache_capacity: usize,
}

impl VerifierConfig {
    /// Pins the JWKS URL — the only place keys ever come from — and defaults
    /// the expected `aud` and `iss` to its hostname (no port), which is what
    /// Pomerium puts in both when the app is served on the same host.
    pub fn new(jwks_url: &str) -> Result<Self, ConfigError> {
        let url = Url::parse(jwks_url).map_err(|e| ConfigError::InvalidUrl {
            url: jwks_url.to_owned(),
            reason: e.to_string(),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ConfigError::UnsupportedScheme(url.scheme().to_owned()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ConfigError::CredentialsInUrl);
        }
        // The url crate guarantees a non-empty host for http(s) URLs.
        let host = url
            .host_str()
            .ok_or_else(|| ConfigError::InvalidUrl {
                url: jwks_url.to_owned(),
                reason: "no host".to_owned(),
            })?
            // Go's URL.Hostname() drops the brackets of an IPv6 literal.
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if url.scheme() == "http" && !is_loopback(&host) {
            return Err(ConfigError::PlainHttpNotLoopback(url.to_string()));
        }
        Ok(VerifierConfig {
            jwks_url: url,
            audience: host.clone(),
            issuer: host,
            leeway: DEFAULT_LEEWAY,
            min_fetch_interval: DEFAULT_MIN_FETCH_INTERVAL,
            fetch_timeout: DEFAULT_FETCH_TIMEOUT,
            max_jwks_bytes: DEFAULT_MAX_JWKS_BYTES,
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            token_cache_capacity: DEFAULT_TOKEN_CACHE_CAPACITY,
        })
    }

    /// The expected `aud`: the hostname users reach the app on (Pomerium's
    /// `aud` is the request hostname, without scheme or port).
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = audience.into();
        self
    }

    /// The expected `iss` hostname. Tokens may carry it bare (Pomerium's
    /// default) or as `https://<host>/` (`jwt_issuer_format: uri`); either
    /// form is accepted here too.
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = issuer.into();
        self
    }

    /// Clock-skew allowance for `exp`, `nbf` and `iat`; at most [`MAX_LEEWAY`].
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Minimum interval between JWKS fetches, so forged `kid`s cost at most
    /// one fetch per interval; an unknown `kid` waits at most this long for
    /// its fetch. At most [`MAX_MIN_FETCH_INTERVAL`].
    pub fn with_min_fetch_interval(mut self, interval: Duration) -> Self {
        self.min_fetch_interval = interval;
        self
    }

    /// Timeout for one JWKS fetch.
    pub fn with_fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
        self
    }

    /// Cap on the JWKS response body.
    pub fn with_max_jwks_bytes(mut self, max: usize) -> Self {
        self.max_jwks_bytes = max;
        self
    }

    /// Cap on the assertion length, checked before anything else.
    pub fn with_max_token_bytes(mut self, max: usize) -> Self {
        self.max_token_bytes = max;
        self
    }

    /// How many verified assertions to remember; 0 turns the cache off.
    pub fn with_token_cache_capacity(mut self, capacity: usize) -> Self {
        self.token_cache_capacity = capacity;
        self
    }

    /// The pinned JWKS URL.
    pub fn jwks_url(&self) -> &Url {
        &self.jwks_url
    }

    /// The expected `aud`.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The expected `iss` hostname.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Checks every setting [`VerifierConfig::new`] could not, and normalises
    /// an issuer given as `https://host/` to its hostname.
    pub(crate) fn validated(mut self) -> Result<Self, ConfigError> {
        // Accept the issuer in the token's `uri` form too; the host is what we compare.
        let host = self.issuer.strip_prefix("https://").unwrap_or(&self.issuer);
        self.issuer = host.strip_suffix('/').unwrap_or(host).to_owned();
        for (field, value) in [("audience", &self.audience), ("issuer", &self.issuer)] {
            // Pomerium's `aud` and `iss` hold a bare hostname: no scheme, path or spaces.
            if value.is_empty() || value.contains(|c: char| c.is_whitespace() || c == '/') {
                return Err(ConfigError::InvalidExpectedValue {
                    field,
                    value: value.clone(),
                });
            }
        }
        if self.leeway > MAX_LEEWAY {
            return Err(ConfigError::LeewayTooLarge {
                given: self.leeway,
                max: MAX_LEEWAY,
            });
        }
        if self.min_fetch_interval.is_zero() {
            return Err(ConfigError::ZeroDuration("min_fetch_interval"));
        }
        if self.min_fetch_interval > MAX_MIN_FETCH_INTERVAL {
            return Err(ConfigError::MinFetchIntervalTooLarge {
                given: self.min_fetch_interval,
                max: MAX_MIN_FETCH_INTERVAL,
            });
        }
        if self.fetch_timeout.is_zero() {
            return Err(ConfigError::ZeroDuration("fetch_timeout"));
        }
        if self.max_jwks_bytes == 0 {
            return Err(ConfigError::ZeroLimit("max_jwks_bytes"));
        }
        if self.max_token_bytes == 0 {
            return Err(ConfigError::ZeroLimit("max_token_bytes"));
        }
        Ok(self)
    }
}

/// `localhost` or a loopback IP literal: traffic that never leaves the machine.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_come_from_the_jwks_host() {
        let config =
            VerifierConfig::new("https://Jit.Example.com:8443/.well-known/pomerium/jwks.json")
                .unwrap();
        assert_eq!(config.audience(), "jit.example.com");
        assert_eq!(config.issuer(), "jit.example.com");
        assert_eq!(config.leeway, DEFAULT_LEEWAY);
        assert_eq!(config.min_fetch_interval, Duration::from_secs(1));
        assert_eq!(config.fetch_timeout, Duration::from_secs(5));
        let v6 = VerifierConfig::new("http://[::1]:9/jwks").unwrap();
        assert_eq!(v6.audience(), "::1");
    }

    #[test]
    fn plain_http_only_for_loopback() {
        for url in [
            "http://127.0.0.1:9/jwks",
            "http://127.8.0.1/jwks",
            "http://[::1]:9/jwks",
            "http://LocalHost:9/jwks",
        ] {
            assert!(VerifierConfig::new(url).is_ok(), "{url}");
        }
        for url in [
            "http://jit.example.com/.well-known/pomerium/jwks.json",
            "http://10.0.0.5/jwks",
            "http://[2001:db8::1]/jwks",
            "http://localhost.example.com/jwks",
        ] {
            let error = VerifierConfig::new(url).unwrap_err();
            assert!(
                matches!(error, ConfigError::PlainHttpNotLoopback(_)),
                "{url}: {error:?}"
            );
            assert!(error.to_string().contains("use https"), "{error}");
        }
        assert!(VerifierConfig::new("https://jit.example.com/jwks").is_ok());
    }

    #[test]
    fn bad_urls_are_typed_errors() {
        assert!(matches!(
            VerifierConfig::new("not a url"),
            Err(ConfigError::InvalidUrl { .. })
        ));
        assert_eq!(
            VerifierConfig::new("file:///etc/jwks.json").unwrap_err(),
            ConfigError::UnsupportedScheme("file".into())
        );
        assert_eq!(
            VerifierConfig::new("https://user:pw@example.com/jwks").unwrap_err(),
            ConfigError::CredentialsInUrl
        );
        assert!(matches!(
            VerifierConfig::new("https://"),
            Err(ConfigError::InvalidUrl { .. })
        ));
    }

    #[test]
    fn validation_catches_unusable_settings() {
        let base = VerifierConfig::new("https://example.com/jwks").unwrap();
        assert_eq!(
            base.clone().with_audience("").validated().unwrap_err(),
            ConfigError::InvalidExpectedValue {
                field: "audience",
                value: String::new()
            }
        );
        assert!(matches!(
            base.clone()
                .with_leeway(Duration::from_secs(301))
                .validated(),
            Err(ConfigError::LeewayTooLarge { .. })
        ));
        assert_eq!(
            base.clone()
                .with_min_fetch_interval(Duration::ZERO)
                .validated()
                .unwrap_err(),
            ConfigError::ZeroDuration("min_fetch_interval")
        );
        assert!(matches!(
            base.clone()
                .with_min_fetch_interval(Duration::from_secs(11))
                .validated(),
            Err(ConfigError::MinFetchIntervalTooLarge { .. })
        ));
        assert_eq!(
            base.clone()
                .with_max_token_bytes(0)
                .validated()
                .unwrap_err(),
            ConfigError::ZeroLimit("max_token_bytes")
        );
        for issuer in ["https://issuer.example.com/", "https://issuer.example.com"] {
            let uri = base.clone().with_issuer(issuer).validated().unwrap();
            assert_eq!(uri.issuer(), "issuer.example.com");
        }
        assert!(matches!(
            base.with_audience("https://jit.example.com").validated(),
            Err(ConfigError::InvalidExpectedValue {
                field: "audience",
                ..
            })
        ));
    }
}
