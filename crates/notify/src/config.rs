//! The `[notifications]` section of the config file: where to send what,
//! read with every problem placed at its key. Secrets (signing keys, Slack
//! webhook URLs, SMTP passwords) are read from environment variables the
//! file names (`secret_env`, `url_env`, `password_env`), so the file can be
//! committed.

use std::collections::{BTreeSet, HashSet};
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use jit_domain::ResourceName;
use secrecy::SecretString;
use serde::Deserialize;
use toml::Spanned;
use url::Url;

/// Problems found, each with the byte range of the key it is about.
pub type Problems = Vec<(Range<usize>, String)>;

/// The section as written. Parsed by the config file's reader, which keeps
/// the spans; [`RawNotifications::build`] checks it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotifications {
    app_url: Option<Spanned<String>>,
    expiry_warning: Option<Spanned<String>>,
    poll_interval: Option<Spanned<String>>,
    retry_min: Option<Spanned<String>>,
    retry_max: Option<Spanned<String>>,
    max_attempts: Option<Spanned<u32>>,
    #[serde(default)]
    channel: Vec<Spanned<RawChannel>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChannel {
    name: Spanned<String>,
    #[serde(rename = "type")]
    kind: Spanned<String>,
    resources: Option<Vec<Spanned<String>>>,
    url: Option<Spanned<String>>,
    url_env: Option<Spanned<String>>,
    secret_env: Option<Spanned<String>>,
    host: Option<Spanned<String>>,
    port: Option<u16>,
    tls: Option<Spanned<String>>,
    username: Option<String>,
    password_env: Option<Spanned<String>>,
    from: Option<Spanned<String>>,
    ca_file: Option<Spanned<String>>,
}

/// Where notifications go, and how the notifier paces itself.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// The app's public address, for links back to a request.
    pub app_url: Option<Url>,
    /// How long before a grant ends its holder is warned; `None`: never.
    pub expiry_warning: Option<Duration>,
    pub timing: Timing,
    pub channels: Vec<Channel>,
}

impl Default for NotifyConfig {
    /// No channels: notices are marked handled and nothing is sent.
    fn default() -> Self {
        Self {
            app_url: None,
            expiry_warning: None,
            timing: Timing::default(),
            channels: Vec::new(),
        }
    }
}

/// The notifier's pace: how often it looks for work, and how it retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub poll_interval: Duration,
    /// The wait after a first failure; doubled per failure up to `retry_max`,
    /// each wait jittered down by up to half.
    pub retry_min: Duration,
    pub retry_max: Duration,
    /// Attempts before a delivery is given up as dead.
    pub max_attempts: u32,
    /// How long a claimed delivery is held from other claims: longer than
    /// any send may take, so only one that was cut short is sent again.
    pub hold: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(2),
            retry_min: Duration::from_secs(5),
            retry_max: Duration::from_secs(15 * 60),
            max_attempts: 15,
            hold: Duration::from_secs(120),
        }
    }
}

/// One configured destination.
#[derive(Debug, Clone)]
pub struct Channel {
    /// Unique; shown on the admin page and in metrics.
    pub name: String,
    /// Only notices about these resources; `None`: every resource.
    pub resources: Option<BTreeSet<ResourceName>>,
    pub kind: ChannelKind,
}

impl Channel {
    pub fn covers(&self, resource: &ResourceName) -> bool {
        self.resources
            .as_ref()
            .is_none_or(|rs| rs.contains(resource))
    }
}

#[derive(Debug, Clone)]
pub enum ChannelKind {
    /// A JSON POST per notice, signed with HMAC-SHA256.
    Webhook { url: Url, secret: SecretString },
    /// A Slack incoming webhook (its URL is the secret).
    Slack { url: SecretString },
    /// Mail to each person concerned.
    Email(Smtp),
}

impl ChannelKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ChannelKind::Webhook { .. } => "webhook",
            ChannelKind::Slack { .. } => "slack",
            ChannelKind::Email(_) => "email",
        }
    }
}

/// An SMTP server to send mail through.
#[derive(Debug, Clone)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    /// The sender, e.g. `pomerium-jit <jit@example.com>`.
    pub from: String,
    /// An extra CA certificate (PEM) to trust, for a private CA.
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which must succeed (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Implicit,
    /// No TLS: only to a loopback address, for tests and development.
    None,
}

impl RawNotifications {
    /// Checks the section; `env` reads an environment variable (injected
    /// so tests need not set the process's).
    pub fn build(
        self,
        resources: &[ResourceName],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<NotifyConfig, Problems> {
        let mut found = Problems::new();
        let f = &mut found;
        let app_url = self.app_url.and_then(|u| {
            let span = u.span();
            match Url::parse(u.get_ref().trim()) {
                Ok(mut url) if url.scheme() == "https" || is_loopback_url(&url) => {
                    // Links are joined onto it: `https://x/jit` means the app is under /jit/.
                    if !url.path().ends_with('/') {
                        let path = format!("{}/", url.path());
                        url.set_path(&path);
                    }
                    Some(url)
                }
                Ok(_) => {
                    f.push((
                        span,
                        "`app_url` must be https:// (http:// only on loopback)".into(),
                    ));
                    None
                }
                Err(e) => {
                    f.push((
                        span,
                        format!(
                            "`app_url` is not a URL ({e}); write it like https://jit.example.com"
                        ),
                    ));
                    None
                }
            }
        });
        let mut timing = Timing::default();
        let mut dur = |v: Option<Spanned<String>>, key: &str, into: &mut Duration| {
            if let Some(v) = v {
                match humantime::parse_duration(v.get_ref().trim()) {
                    Ok(d) => *into = d,
                    Err(e) => f.push((
                        v.span(),
                        format!(
                            "`{key}`: `{}` is not a duration like 30s or 10m ({e})",
                            v.get_ref()
                        ),
                    )),
                }
            }
        };
        let mut warning = Duration::from_secs(600);
        dur(self.expiry_warning, "expiry_warning", &mut warning);
        dur(
            self.poll_interval,
            "poll_interval",
            &mut timing.poll_interval,
        );
        dur(self.retry_min, "retry_min", &mut timing.retry_min);
        dur(self.retry_max, "retry_max", &mut timing.retry_max);
        if let Some(n) = self.max_attempts {
            if *n.get_ref() == 0 {
                f.push((n.span(), "`max_attempts` must be at least 1".into()));
            }
            timing.max_attempts = n.into_inner().max(1);
        }
        if timing.retry_min > timing.retry_max {
            f.push((
                0..0,
                "notifications: `retry_min` is longer than `retry_max`".into(),
            ));
        }
        if timing.poll_interval.is_zero() {
            f.push((
                0..0,
                "notifications: `poll_interval` must be above 0s".into(),
            ));
        }

        let mut names = HashSet::new();
        let mut channels = Vec::new();
        for raw in self.channel {
            let span = raw.span();
            let raw = raw.into_inner();
            if !names.insert(raw.name.get_ref().clone()) {
                f.push((
                    raw.name.span(),
                    format!(
                        "a second channel is named `{}`; channel names must be unique",
                        raw.name.get_ref()
                    ),
                ));
            }
            if let Some(ch) = raw.build(span, resources, env, f) {
                let needs_link = !matches!(ch.kind, ChannelKind::Webhook { .. });
                if needs_link && app_url.is_none() {
                    f.push((
                        0..0,
                        format!(
                            "channel `{}` links back to the app: set `app_url` in [notifications] \
                             to the address people open, e.g. https://jit.example.com",
                            ch.name
                        ),
                    ));
                }
                channels.push(ch);
            }
        }
        if found.is_empty() {
            Ok(NotifyConfig {
                app_url,
                expiry_warning: Some(warning).filter(|w| !w.is_zero()),
                timing,
                channels,
            })
        } else {
            Err(found)
        }
    }
}

impl RawChannel {
    fn build(
        self,
        span: Range<usize>,
        resources: &[ResourceName],
        env: &dyn Fn(&str) -> Option<String>,
        f: &mut Problems,
    ) -> Option<Channel> {
        let name = self.name.get_ref().trim().to_owned();
        let ok_name = !name.is_empty()
            && name.len() <= 63
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok_name {
            f.push((
                self.name.span(),
                format!("channel name `{name}`: use 1 to 63 letters, digits, `-` or `_`"),
            ));
        }
        let only = self.resources.map(|list| {
            list.into_iter()
                .filter_map(|r| match ResourceName::parse(r.get_ref()) {
                    Ok(n) if resources.contains(&n) => Some(n),
                    _ => {
                        f.push((
                            r.span(),
                            format!(
                                "channel `{name}`: there is no resource named `{}` in this file",
                                r.get_ref()
                            ),
                        ));
                        None
                    }
                })
                .collect()
        });
        let secret_from = |var: &Spanned<String>, f: &mut Problems| -> Option<SecretString> {
            match env(var.get_ref().trim()).filter(|v| !v.trim().is_empty()) {
                Some(v) => Some(v.trim().to_owned().into()),
                None => {
                    f.push((
                        var.span(),
                        format!(
                            "channel `{name}`: the environment variable `{}` is not set (or empty)",
                            var.get_ref()
                        ),
                    ));
                    None
                }
            }
        };
        let unused = |f: &mut Problems, keys: &[(&str, bool)], kind: &str| {
            for (key, given) in keys {
                if *given {
                    f.push((
                        span.clone(),
                        format!("channel `{name}`: `{key}` does not apply to type \"{kind}\""),
                    ));
                }
            }
        };
        let kind = match self.kind.get_ref().as_str() {
            kind @ ("webhook" | "slack") => {
                unused(
                    f,
                    &[
                        ("host", self.host.is_some()),
                        ("port", self.port.is_some()),
                        ("tls", self.tls.is_some()),
                        ("username", self.username.is_some()),
                        ("password_env", self.password_env.is_some()),
                        ("from", self.from.is_some()),
                        ("ca_file", self.ca_file.is_some()),
                    ],
                    kind,
                );
                let url = match (&self.url, &self.url_env) {
                    (Some(u), None) => Some((u.get_ref().trim().to_owned(), u.span())),
                    (None, Some(var)) => secret_from(var, f).map(|s| {
                        (
                            secrecy::ExposeSecret::expose_secret(&s).to_owned(),
                            var.span(),
                        )
                    }),
                    _ => {
                        f.push((
                            span.clone(),
                            format!("channel `{name}`: set `url` or `url_env` (exactly one)"),
                        ));
                        None
                    }
                };
                let url = url.and_then(|(u, at)| match Url::parse(&u) {
                    Ok(url) if url.scheme() == "https" || is_loopback_url(&url) => Some(url),
                    _ => {
                        f.push((
                            at,
                            format!(
                                "channel `{name}`: the URL must be https:// (http:// only on loopback)"
                            ),
                        ));
                        None
                    }
                });
                if kind == "webhook" {
                    let secret = match &self.secret_env {
                        Some(var) => secret_from(var, f),
                        None => {
                            f.push((
                                span.clone(),
                                format!(
                                    "channel `{name}`: a webhook is signed; set `secret_env` to the \
                                     environment variable holding the signing secret"
                                ),
                            ));
                            None
                        }
                    };
                    ChannelKind::Webhook {
                        url: url?,
                        secret: secret?,
                    }
                } else {
                    unused(f, &[("secret_env", self.secret_env.is_some())], kind);
                    ChannelKind::Slack {
                        url: url?.to_string().into(),
                    }
                }
            }
            "email" => {
                unused(
                    f,
                    &[
                        ("url", self.url.is_some()),
                        ("url_env", self.url_env.is_some()),
                        ("secret_env", self.secret_env.is_some()),
                    ],
                    "email",
                );
                let tls = match self.tls.as_ref().map(|t| t.get_ref().as_str()) {
                    None | Some("starttls") => Some(SmtpTls::StartTls),
                    Some("tls") => Some(SmtpTls::Implicit),
                    Some("none") => Some(SmtpTls::None),
                    Some(other) => {
                        f.push((
                            self.tls.as_ref().map_or(span.clone(), Spanned::span),
                            format!("channel `{name}`: `tls = \"{other}\"`: use \"starttls\", \"tls\" or \"none\""),
                        ));
                        None
                    }
                };
                let host = match &self.host {
                    Some(h) if !h.get_ref().trim().is_empty() => {
                        Some(h.get_ref().trim().to_owned())
                    }
                    _ => {
                        f.push((
                            span.clone(),
                            format!("channel `{name}`: set `host`, the SMTP server"),
                        ));
                        None
                    }
                };
                if let (Some(SmtpTls::None), Some(h)) = (tls, &host)
                    && !is_loopback_host(h)
                {
                    f.push((
                        self.tls.as_ref().map_or(span.clone(), Spanned::span),
                        format!(
                            "channel `{name}`: `tls = \"none\"` sends mail and passwords in the \
                                 clear, so it is only allowed to a loopback host (127.0.0.1, ::1, \
                                 localhost); use \"starttls\" or \"tls\""
                        ),
                    ));
                }
                let from = match &self.from {
                    Some(fr) if fr.get_ref().parse::<lettre::message::Mailbox>().is_ok() => {
                        Some(fr.get_ref().trim().to_owned())
                    }
                    Some(fr) => {
                        f.push((
                            fr.span(),
                            format!(
                                "channel `{name}`: `from = \"{}\"` is not an address like \
                                 \"pomerium-jit <jit@example.com>\"",
                                fr.get_ref()
                            ),
                        ));
                        None
                    }
                    None => {
                        f.push((
                            span.clone(),
                            format!("channel `{name}`: set `from`, the sender's address"),
                        ));
                        None
                    }
                };
                let password = self.password_env.as_ref().and_then(|v| secret_from(v, f));
                if self.password_env.is_some() && self.username.is_none() {
                    f.push((
                        span.clone(),
                        format!("channel `{name}`: `password_env` needs `username`"),
                    ));
                }
                let ca_file = self.ca_file.map(|c| {
                    let path = PathBuf::from(c.get_ref());
                    if let Err(e) = std::fs::read(&path) {
                        f.push((
                            c.span(),
                            format!(
                                "channel `{name}`: cannot read `ca_file` {}: {e}",
                                path.display()
                            ),
                        ));
                    }
                    path
                });
                let tls = tls?;
                ChannelKind::Email(Smtp {
                    host: host?,
                    port: self.port.unwrap_or(match tls {
                        SmtpTls::StartTls => 587,
                        SmtpTls::Implicit => 465,
                        SmtpTls::None => 25,
                    }),
                    tls,
                    username: self.username,
                    password,
                    from: from?,
                    ca_file,
                })
            }
            other => {
                f.push((
                    self.kind.span(),
                    format!("channel `{name}`: `type = \"{other}\"`: use \"webhook\", \"slack\" or \"email\""),
                ));
                return None;
            }
        };
        Some(Channel {
            name,
            resources: only,
            kind,
        })
    }
}

fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn is_loopback_url(url: &Url) -> bool {
    url.scheme() == "http" && url.host_str().is_some_and(is_loopback_host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(text: &str, env: &[(&str, &str)]) -> Result<NotifyConfig, Vec<String>> {
        #[derive(Deserialize)]
        struct File {
            notifications: RawNotifications,
        }
        let file: File = toml::from_str(text).map_err(|e| vec![e.to_string()])?;
        let resources = [ResourceName::parse("db").unwrap()];
        let env = |k: &str| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        file.notifications
            .build(&resources, &env)
            .map_err(|ps| ps.into_iter().map(|(_, m)| m).collect())
    }

    #[test]
    fn reads_every_channel_type_with_secrets_from_the_environment() {
        let c = build(
            r#"
[notifications]
app_url = "https://jit.example.com"
expiry_warning = "15m"
poll_interval = "100ms"
retry_min = "1s"
retry_max = "1m"
max_attempts = 3

[[notifications.channel]]
name = "hook"
type = "webhook"
url = "https://hooks.example.com/jit"
secret_env = "HOOK_SECRET"
resources = ["db"]

[[notifications.channel]]
name = "ops"
type = "slack"
url_env = "SLACK_URL"

[[notifications.channel]]
name = "mail"
type = "email"
host = "smtp.example.com"
username = "jit"
password_env = "SMTP_PASSWORD"
from = "pomerium-jit <jit@example.com>"
"#,
            &[
                ("HOOK_SECRET", "s3cret"),
                ("SLACK_URL", "https://hooks.slack.com/services/T/B/X"),
                ("SMTP_PASSWORD", "pw"),
            ],
        )
        .unwrap();
        assert_eq!(c.expiry_warning, Some(Duration::from_secs(900)));
        assert_eq!(c.timing.max_attempts, 3);
        assert_eq!(c.timing.poll_interval, Duration::from_millis(100));
        let kinds: Vec<(&str, &str)> = c
            .channels
            .iter()
            .map(|ch| (ch.name.as_str(), ch.kind.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [("hook", "webhook"), ("ops", "slack"), ("mail", "email")]
        );
        assert!(c.channels[0].covers(&ResourceName::parse("db").unwrap()));
        assert!(!c.channels[0].covers(&ResourceName::parse("other").unwrap()));
        assert!(c.channels[1].covers(&ResourceName::parse("other").unwrap()));
        let ChannelKind::Email(smtp) = &c.channels[2].kind else {
            panic!()
        };
        assert_eq!((smtp.port, smtp.tls), (587, SmtpTls::StartTls));
        assert!(!format!("{c:?}").contains("s3cret"), "secrets stay hidden");
    }

    #[test]
    fn names_each_problem() {
        let problems = build(
            r#"
[notifications]
expiry_warning = "soon"

[[notifications.channel]]
name = "hook"
type = "webhook"
url = "http://hooks.example.com/jit"
secret_env = "MISSING"
resources = ["nope"]

[[notifications.channel]]
name = "hook"
type = "email"
host = "smtp.example.com"
tls = "none"
from = "not an address"
url = "https://x"

[[notifications.channel]]
name = "s"
type = "slack"
url = "https://hooks.slack.com/x"
"#,
            &[],
        )
        .unwrap_err()
        .join("\n");
        for needle in [
            "`expiry_warning`: `soon`",
            "no resource named `nope`",
            "`MISSING` is not set",
            "must be https://",
            "a second channel is named `hook`",
            "only allowed to a loopback host",
            "`from = \"not an address\"`",
            "`url` does not apply to type \"email\"",
            "channel `s` links back to the app: set `app_url`",
        ] {
            assert!(problems.contains(needle), "no {needle} in\n{problems}");
        }
    }

    #[test]
    fn plain_smtp_and_http_are_allowed_to_loopback_and_zero_warning_is_off() {
        let c = build(
            r#"
[notifications]
app_url = "http://127.0.0.1:8000"
expiry_warning = "0s"
[[notifications.channel]]
name = "mail"
type = "email"
host = "127.0.0.1"
port = 2525
tls = "none"
from = "jit@example.com"
[[notifications.channel]]
name = "hook"
type = "webhook"
url = "http://localhost:9000/hook"
secret_env = "S"
"#,
            &[("S", "x")],
        )
        .unwrap();
        assert_eq!(c.expiry_warning, None);
        assert_eq!(c.channels.len(), 2);
    }
}
