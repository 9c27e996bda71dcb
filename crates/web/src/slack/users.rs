//! Who a Slack user is here: the email (and groups) an approver signs in
//! to Pomerium with. From a static table in the config file first, then,
//! when a bot token is configured, from Slack's `users.info` (the profile's
//! email; no groups), cached.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jit_domain::Email;
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// A Slack user id: `U` or `W` and upper-case letters and digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SlackUserId(String);

impl FromStr for SlackUserId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let ok = s.len() >= 3
            && s.len() <= 32
            && (s.starts_with('U') || s.starts_with('W'))
            && s.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if ok {
            Ok(SlackUserId(s.to_owned()))
        } else {
            Err(format!(
                "`{}` is not a Slack user id like U012AB3CD (U or W, then capital letters and digits; \
                 in Slack: a profile's ⋮ menu → Copy member ID)",
                s.chars().take(40).collect::<String>()
            ))
        }
    }
}

impl fmt::Display for SlackUserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who a Slack user is here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackPerson {
    pub email: Email,
    /// Matched against approver and admin groups as the assertion's
    /// `groups` claim would be.
    pub groups: Vec<String>,
}

/// Slack's Web API, for `users.info`.
#[derive(Debug, Clone)]
pub struct UsersInfo {
    /// `https://slack.com/api` by default.
    pub base: Url,
    /// A bot token with the `users:read` and `users:read.email` scopes.
    pub token: SecretString,
}

/// Why a Slack user could not be mapped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Unmapped {
    #[error("is not in the [slack] users table of the config file")]
    NotListed,
    #[error(
        "is not in the [slack] users table, and Slack's users.info has no usable email for them ({0})"
    )]
    NoEmail(String),
    #[error("could not be looked up with Slack's users.info ({0})")]
    Lookup(String),
}

impl Unmapped {
    /// Whether trying again later may help (Slack was out of reach).
    pub(crate) fn is_transient(&self) -> bool {
        matches!(self, Unmapped::Lookup(_))
    }
}

/// How long a `users.info` answer is reused, and how many are kept.
const TTL: Duration = Duration::from_secs(10 * 60);
const CACHED: usize = 1_000;
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// The mapping sources, in the order they are asked.
#[derive(Debug)]
pub(crate) struct Directory {
    table: BTreeMap<SlackUserId, SlackPerson>,
    api: Option<(UsersInfo, reqwest::Client)>,
    cache: Mutex<HashMap<SlackUserId, (Instant, Email)>>,
}

impl Directory {
    pub(crate) fn new(
        table: BTreeMap<SlackUserId, SlackPerson>,
        api: Option<UsersInfo>,
        http: reqwest::Client,
    ) -> Directory {
        Directory {
            table,
            api: api.map(|a| (a, http)),
            cache: Mutex::default(),
        }
    }

    pub(crate) async fn person(&self, id: &SlackUserId) -> Result<SlackPerson, Unmapped> {
        if let Some(p) = self.table.get(id) {
            return Ok(p.clone());
        }
        let Some((api, http)) = &self.api else {
            return Err(Unmapped::NotListed);
        };
        if let Some(email) = self.cached(id, Instant::now()) {
            return Ok(SlackPerson {
                email,
                groups: Vec::new(),
            });
        }
        let email = lookup(api, http, id).await?;
        self.remember(id, &email, Instant::now());
        Ok(SlackPerson {
            email,
            groups: Vec::new(),
        })
    }

    fn cached(&self, id: &SlackUserId, now: Instant) -> Option<Email> {
        let cache = self.cache.lock().expect("slack user cache lock");
        cache
            .get(id)
            .filter(|(at, _)| now.duration_since(*at) < TTL)
            .map(|(_, e)| e.clone())
    }

    fn remember(&self, id: &SlackUserId, email: &Email, now: Instant) {
        let mut cache = self.cache.lock().expect("slack user cache lock");
        if cache.len() >= CACHED && !cache.contains_key(id) {
            cache.retain(|_, (at, _)| now.duration_since(*at) < TTL);
            if cache.len() >= CACHED
                && let Some(oldest) = cache
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(k, _)| k.clone())
            {
                cache.remove(&oldest);
            }
        }
        cache.insert(id.clone(), (now, email.clone()));
    }
}

#[derive(Deserialize)]
struct InfoAnswer {
    ok: bool,
    error: Option<String>,
    user: Option<InfoUser>,
}

#[derive(Deserialize)]
struct InfoUser {
    id: String,
    #[serde(default)]
    deleted: bool,
    #[serde(default)]
    is_bot: bool,
    /// Absent on some accounts; only an explicit `false` is refused.
    is_email_confirmed: Option<bool>,
    #[serde(default)]
    profile: InfoProfile,
}

#[derive(Deserialize, Default)]
struct InfoProfile {
    email: Option<String>,
}

async fn lookup(
    api: &UsersInfo,
    http: &reqwest::Client,
    id: &SlackUserId,
) -> Result<Email, Unmapped> {
    let mut url = api.base.clone();
    url.path_segments_mut()
        .map_err(|()| Unmapped::Lookup("SLACK_API_BASE_URL cannot hold a path".into()))?
        .pop_if_empty()
        .push("users.info");
    url.query_pairs_mut().append_pair("user", &id.0);
    let response = http
        .get(url)
        .bearer_auth(api.token.expose_secret())
        .timeout(LOOKUP_TIMEOUT)
        .send()
        .await
        .map_err(|e| Unmapped::Lookup(format!("no answer: {}", e.without_url())))?;
    let status = response.status();
    if !status.is_success() {
        return Err(Unmapped::Lookup(format!("HTTP status {status}")));
    }
    let answer: InfoAnswer = response
        .json()
        .await
        .map_err(|e| Unmapped::Lookup(format!("unreadable answer: {}", e.without_url())))?;
    match answer {
        InfoAnswer {
            ok: false, error, ..
        } => {
            let error = error.unwrap_or_else(|| "no error given".into());
            // Slack's own words for a token or scope problem are what an admin needs.
            if error == "user_not_found" || error == "user_not_visible" {
                Err(Unmapped::NoEmail(error))
            } else {
                Err(Unmapped::Lookup(error))
            }
        }
        InfoAnswer { user: Some(u), .. } if u.id == id.0 => {
            if u.deleted || u.is_bot {
                return Err(Unmapped::NoEmail("a deactivated account or a bot".into()));
            }
            if u.is_email_confirmed == Some(false) {
                return Err(Unmapped::NoEmail("the email is not confirmed".into()));
            }
            let email = u.profile.email.ok_or_else(|| {
                Unmapped::NoEmail(
                    "no email in the profile: does the token have users:read.email?".into(),
                )
            })?;
            Email::parse(email.trim())
                .map_err(|e| Unmapped::NoEmail(format!("the profile's email: {e}")))
        }
        _ => Err(Unmapped::Lookup(
            "the answer names another user or none".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> SlackUserId {
        s.parse().unwrap()
    }

    #[test]
    fn slack_user_ids_are_checked() {
        for ok in ["U012AB3CD", "W0ABC", "U1X"] {
            assert!(ok.parse::<SlackUserId>().is_ok(), "{ok}");
        }
        for bad in [
            "",
            "U",
            "u012ab3cd",
            "T012AB3CD",
            "U01 2",
            "U01&x=1",
            "carol@example.com",
        ] {
            let e = bad.parse::<SlackUserId>().unwrap_err();
            assert!(e.contains("Copy member ID"), "{bad}: {e}");
        }
    }

    #[tokio::test]
    async fn the_table_maps_and_nothing_else_without_a_token() {
        let carol = SlackPerson {
            email: Email::parse("carol@example.com").unwrap(),
            groups: vec!["admins".into()],
        };
        let d = Directory::new(
            [(id("U1CAROL"), carol.clone())].into(),
            None,
            reqwest::Client::new(),
        );
        assert_eq!(d.person(&id("U1CAROL")).await.unwrap(), carol);
        assert!(matches!(
            d.person(&id("U2NOBODY")).await,
            Err(Unmapped::NotListed)
        ));
    }

    #[test]
    fn the_cache_expires_and_stays_bounded() {
        let d = Directory::new(BTreeMap::new(), None, reqwest::Client::new());
        let t0 = Instant::now();
        let e = Email::parse("a@example.com").unwrap();
        d.remember(&id("UA0"), &e, t0);
        assert_eq!(d.cached(&id("UA0"), t0 + TTL / 2), Some(e.clone()));
        assert_eq!(d.cached(&id("UA0"), t0 + TTL), None);
        for n in 1..=CACHED + 5 {
            d.remember(
                &id(&format!("UA{n}")),
                &e,
                t0 + Duration::from_millis(n as u64),
            );
        }
        let cache = d.cache.lock().unwrap();
        assert_eq!(cache.len(), CACHED);
        // The oldest went first.
        assert!(!cache.contains_key(&id("UA0")) && !cache.contains_key(&id("UA1")));
        assert!(cache.contains_key(&id(&format!("UA{}", CACHED + 5))));
    }
}
