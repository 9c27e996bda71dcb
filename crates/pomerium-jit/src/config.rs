//! Settings: every one an environment variable (the Go original's names
//! where it had one) and a `--flag`; secrets also from a `*_FILE`. Parsing
//! collects every problem, so a misconfigured start says everything wrong at
//! once. Secrets are held as [`SecretString`], so no `Debug` output shows them.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args};
use jit_domain::{Email, GrantDuration, Resource, Rules};
use jit_identity::{Verifier, VerifierConfig};
use jit_ppl::jit::DecodeOptions;
use jit_service::Admins;
use jit_zero::{ZeroClient, ZeroConfig};
use secrecy::{ExposeSecret, SecretString};

/// The options of `serve` (and of `pomerium-jit` with no subcommand).
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Pomerium Zero API user token (console → Account → API Tokens).
    #[arg(long, env = "API_USER_TOKEN", hide_env_values = true, value_parser = secret_arg)]
    pub api_user_token: Option<SecretString>,
    /// File holding the API user token (instead of API_USER_TOKEN).
    #[arg(long, env = "API_USER_TOKEN_FILE")]
    pub api_user_token_file: Option<PathBuf>,
    /// Pomerium Zero organization id.
    #[arg(long, env = "ORGANIZATION_ID")]
    pub organization_id: Option<String>,
    /// Pomerium Zero cluster id; also the namespace of the policy unless NAMESPACE_ID is set.
    #[arg(long, env = "CLUSTER_ID")]
    pub cluster_id: Option<String>,
    /// Pomerium's JWKS URL, e.g. https://jit.example.com/.well-known/pomerium/jwks.json.
    #[arg(long, env = "JWKS_ENDPOINT")]
    pub jwks_endpoint: Option<String>,
    /// TCP port to listen on.
    #[arg(long, env = "PORT", default_value = "8000")]
    pub port: String,
    /// Address to listen on.
    #[arg(long, env = "BIND_ADDRESS", default_value = "0.0.0.0")]
    pub bind_address: String,
    /// Address for Prometheus metrics at /metrics, e.g. 127.0.0.1:9000, apart from
    /// the main port and without identity checks [default: off].
    #[arg(long, env = "METRICS_ADDR")]
    pub metrics_addr: Option<String>,
    /// Pomerium Zero console URL; the API is under /api/v0.
    #[arg(long, env = "API_BASE_URL", default_value = jit_zero::DEFAULT_BASE_URL)]
    pub api_base_url: String,
    /// Expected `aud` of the assertion [default: the JWKS_ENDPOINT host].
    #[arg(long, env = "EXPECTED_JWT_AUDIENCE")]
    pub expected_jwt_audience: Option<String>,
    /// Expected `iss` of the assertion; `https://host/` form also accepted [default: the JWKS_ENDPOINT host].
    #[arg(long, env = "EXPECTED_JWT_ISSUER")]
    pub expected_jwt_issuer: Option<String>,
    /// Clock leeway for the assertion's exp/iat/nbf.
    #[arg(long, env = "JWT_LEEWAY", default_value = "60s")]
    pub jwt_leeway: String,
    /// Database: sqlite://path or postgres://… [default: sqlite in DATA_DIR].
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_parser = secret_arg)]
    pub database_url: Option<SecretString>,
    /// File holding DATABASE_URL (for a URL with a password).
    #[arg(long, env = "DATABASE_URL_FILE")]
    pub database_url_file: Option<PathBuf>,
    /// Directory for the default SQLite database.
    #[arg(long, env = "DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// Comma-separated emails allowed on /admin (checked in the app as well as by Pomerium).
    #[arg(long, env = "ADMIN_EMAILS")]
    pub admin_emails: Option<String>,
    /// Comma-separated group ids or names (the `groups` claim) allowed on /admin.
    #[arg(long, env = "ADMIN_GROUPS")]
    pub admin_groups: Option<String>,
    /// The resources file (TOML) listing what can be requested; without it, one resource
    /// built from POLICY_NAME, GRANT_DURATION, MAX_GRANT_DURATION and ALLOW_SELF_APPROVAL.
    #[arg(long = "config", env = "CONFIG_FILE")]
    pub config_file: Option<PathBuf>,
    /// Length of a grant when the approver does not choose one.
    #[arg(long, env = "GRANT_DURATION", default_value = "1h")]
    pub grant_duration: String,
    /// Longest grant an approver may give.
    #[arg(long, env = "MAX_GRANT_DURATION", default_value = "1d")]
    pub max_grant_duration: String,
    /// Let an admin approve their own request.
    #[arg(long, env = "ALLOW_SELF_APPROVAL", default_value = "false")]
    pub allow_self_approval: String,
    /// Name of the Pomerium Zero policy holding the JIT rules.
    #[arg(long, env = "POLICY_NAME", default_value = "jit-example")]
    pub policy_name: String,
    /// Namespace of the policy [default: CLUSTER_ID, as the original assumes].
    #[arg(long, env = "NAMESPACE_ID")]
    pub namespace_id: Option<String>,
    /// Time between periodic syncs with Pomerium Zero.
    #[arg(long, env = "SYNC_INTERVAL", default_value = "30s")]
    pub sync_interval: String,
    /// How old a sync may be before a load of /admin starts one in the background.
    #[arg(long, env = "SYNC_MAX_AGE", default_value = "5s")]
    pub sync_max_age: String,
    /// How long syncs may keep failing before /readyz fails.
    #[arg(long, env = "READY_SYNC_GRACE", default_value = "2m")]
    pub ready_sync_grace: String,
    /// How long a change waits to be applied before the page answers.
    #[arg(long, env = "APPLY_WAIT", default_value = "5s")]
    pub apply_wait: String,
    /// Apply a pending changeset when it holds only this policy's change.
    #[arg(long, env = "APPLY_CHANGESETS", default_value = "false")]
    pub apply_changesets: String,
    /// UTC offset for policy dates written without one, e.g. +00:00 (unconfirmed in Pomerium's docs).
    #[arg(long, env = "PPL_NAIVE_DATE_OFFSET", default_value = "+00:00")]
    pub ppl_naive_date_offset: String,
    /// Log format: text or json.
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: String,
    /// The Slack app's signing secret (Basic Information → App Credentials); turns on
    /// approving from Slack at POST /slack/actions.
    #[arg(long, env = "SLACK_SIGNING_SECRET", hide_env_values = true, value_parser = secret_arg)]
    pub slack_signing_secret: Option<SecretString>,
    /// File holding the Slack signing secret (instead of SLACK_SIGNING_SECRET).
    #[arg(long, env = "SLACK_SIGNING_SECRET_FILE")]
    pub slack_signing_secret_file: Option<PathBuf>,
    /// Slack bot token (scopes users:read, users:read.email) to map Slack users not in the
    /// config file's [slack] users table to their email with users.info.
    #[arg(long, env = "SLACK_BOT_TOKEN", hide_env_values = true, value_parser = secret_arg)]
    pub slack_bot_token: Option<SecretString>,
    /// File holding the Slack bot token (instead of SLACK_BOT_TOKEN).
    #[arg(long, env = "SLACK_BOT_TOKEN_FILE")]
    pub slack_bot_token_file: Option<PathBuf>,
    /// Slack's Web API, for users.info.
    #[arg(long, env = "SLACK_API_BASE_URL", default_value = jit_web::SLACK_DEFAULT_API_BASE)]
    pub slack_api_base_url: String,
    /// The only place answers to Slack (a click's response_url) may be posted.
    #[arg(long, env = "SLACK_RESPONSE_URL_BASE", default_value = jit_web::SLACK_DEFAULT_RESPONSE_BASE)]
    pub slack_response_url_base: String,
}

/// Settings holding a secret: argument id and environment variable.
const SECRET_ARGS: [(&str, &str); 4] = [
    ("api_user_token", "API_USER_TOKEN"),
    ("database_url", "DATABASE_URL"),
    ("slack_signing_secret", "SLACK_SIGNING_SECRET"),
    ("slack_bot_token", "SLACK_BOT_TOKEN"),
];

/// Everything `serve` needs, parsed and checked; the store is opened later.
#[derive(Debug)]
pub struct Settings {
    pub listen: SocketAddr,
    /// Where to serve `/metrics`; `None`: no metrics listener.
    pub metrics: Option<SocketAddr>,
    pub verifier: Verifier,
    pub zero: ZeroClient,
    pub cluster_id: String,
    /// The namespace of resources whose policy names none.
    pub namespace_id: String,
    /// May hold a PostgreSQL password.
    pub database_url: SecretString,
    /// What can be requested, in catalog order; at least one.
    pub resources: Vec<Resource>,
    pub admins: Admins,
    pub sync_interval: Duration,
    pub sync_max_age: Duration,
    pub ready_sync_grace: Duration,
    pub apply_wait: Duration,
    pub apply_changesets: bool,
    pub decode: DecodeOptions,
    /// Approving from Slack; `None` without SLACK_SIGNING_SECRET.
    pub slack: Option<jit_web::SlackConfig>,
    /// The config file's `[notifications]`; `None`: none are sent.
    pub notifications: Option<jit_notify::NotifyConfig>,
}

/// What the operator commands need (see [`ServeArgs::ops_settings`]).
#[derive(Debug)]
pub struct OpsSettings {
    /// May hold a PostgreSQL password.
    pub database_url: SecretString,
    pub resources: Vec<Resource>,
    pub decode: DecodeOptions,
    /// `None`: no Pomerium Zero settings; changes wait for the running service.
    pub zero: Option<ZeroSettings>,
}

/// Pomerium Zero, for the operator commands that read or write policies.
#[derive(Debug)]
pub struct ZeroSettings {
    pub client: ZeroClient,
    pub cluster_id: String,
    /// The namespace of resources whose policy names none.
    pub namespace_id: String,
    pub apply_changesets: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl ServeArgs {
    pub fn log_format(&self) -> LogFormat {
        if self.log_format.eq_ignore_ascii_case("json") {
            LogFormat::Json
        } else {
            LogFormat::Text
        }
    }

    /// Parses every setting; on failure, one line per problem.
    pub fn settings(&self) -> Result<Settings, Vec<String>> {
        let mut problems = Vec::new();
        let p = &mut problems;
        let token = self.token(p);
        let token = need(
            p,
            "API_USER_TOKEN",
            token,
            "a Pomerium Zero API user token (console → Account → API Tokens), or API_USER_TOKEN_FILE",
        );
        let org = need(
            p,
            "ORGANIZATION_ID",
            nonempty(&self.organization_id),
            "your Pomerium Zero organization id",
        );
        let cluster = need(
            p,
            "CLUSTER_ID",
            nonempty(&self.cluster_id),
            "the id of the Pomerium Zero cluster",
        );
        let jwks = need(
            p,
            "JWKS_ENDPOINT",
            nonempty(&self.jwks_endpoint),
            "Pomerium's key set, e.g. https://jit.example.com/.well-known/pomerium/jwks.json",
        );
        let listen = check(p, parse_listen(&self.bind_address, &self.port));
        let metrics = check(p, parse_metrics(self.metrics_addr.as_deref(), listen));
        let leeway = check(p, duration("JWT_LEEWAY", &self.jwt_leeway));
        let verifier = jwks.and_then(|jwks| {
            let v = check(
                p,
                VerifierConfig::new(&jwks).map_err(|e| format!("JWKS_ENDPOINT: {e}")),
            )?;
            let v = match nonempty(&self.expected_jwt_audience) {
                Some(a) => v.with_audience(a),
                None => v,
            };
            let v = match nonempty(&self.expected_jwt_issuer) {
                Some(i) => v.with_issuer(i),
                None => v,
            };
            check(
                p,
                Verifier::new(v.with_leeway(leeway?))
                    .map_err(|e| format!("{}: {e}", verifier_setting(&e))),
            )
        });
        let database_url = self.database_url(p);

        let admin_emails: Vec<Email> = list(&self.admin_emails)
            .iter()
            .filter_map(|raw| {
                check(
                    p,
                    Email::parse(raw).map_err(|e| format!("ADMIN_EMAILS: `{raw}`: {e}")),
                )
            })
            .collect();
        let admins = Admins::new(admin_emails, list(&self.admin_groups));

        let file = self.file_config(p);
        let slack = self.slack(p, file.as_ref().map(|f| &f.slack_users));
        let notifications = file.as_ref().and_then(|f| f.notifications.clone());
        let resources = file.map(|f| f.resources);

        let sync_interval = check(p, duration("SYNC_INTERVAL", &self.sync_interval));
        if sync_interval.is_some_and(|d| d < Duration::from_secs(1)) {
            p.push("SYNC_INTERVAL must be at least 1s".into());
        }
        let sync_max_age = check(p, duration("SYNC_MAX_AGE", &self.sync_max_age));
        let ready_sync_grace = check(p, duration("READY_SYNC_GRACE", &self.ready_sync_grace));
        let apply_wait = check(p, duration("APPLY_WAIT", &self.apply_wait));
        let apply_changesets = check(p, boolean("APPLY_CHANGESETS", &self.apply_changesets));
        let naive_offset = self.naive_offset(p);
        if !["text", "json"]
            .iter()
            .any(|f| self.log_format.eq_ignore_ascii_case(f))
        {
            p.push(format!(
                "LOG_FORMAT: `{}` is not text or json",
                self.log_format
            ));
        }

        let zero = self.zero_client(p, token, org);

        match (
            (listen, metrics),
            verifier,
            zero,
            cluster,
            database_url,
            sync_interval,
            sync_max_age,
            ready_sync_grace,
            apply_wait,
            apply_changesets,
            naive_offset,
            resources,
        ) {
            (
                (Some(listen), Some(metrics)),
                Some(verifier),
                Some(zero),
                Some(cluster),
                Some(database_url),
                Some(sync_interval),
                Some(sync_max_age),
                Some(ready_sync_grace),
                Some(apply_wait),
                Some(apply_changesets),
                Some(naive_offset),
                Some(resources),
            ) if problems.is_empty() => {
                let namespace_id = nonempty(&self.namespace_id).unwrap_or_else(|| cluster.clone());
                Ok(Settings {
                    listen,
                    metrics,
                    verifier,
                    zero,
                    cluster_id: cluster,
                    namespace_id,
                    database_url,
                    resources,
                    admins,
                    sync_interval,
                    sync_max_age,
                    ready_sync_grace,
                    apply_wait,
                    apply_changesets,
                    decode: DecodeOptions { naive_offset },
                    slack,
                    notifications,
                })
            }
            _ => Err(problems),
        }
    }

    /// What the operator commands need, without the web's settings
    /// (JWKS_ENDPOINT, PORT, …): the database and the resources, and
    /// Pomerium Zero when API_USER_TOKEN, ORGANIZATION_ID or CLUSTER_ID is
    /// set (then all three must be).
    pub fn ops_settings(&self) -> Result<OpsSettings, Vec<String>> {
        let mut problems = Vec::new();
        let p = &mut problems;
        let database_url = self.database_url(p);
        let resources = self.resources(p);
        let naive_offset = self.naive_offset(p);
        let apply_changesets = check(p, boolean("APPLY_CHANGESETS", &self.apply_changesets));
        let token = self.token(p);
        let org = nonempty(&self.organization_id);
        let cluster = nonempty(&self.cluster_id);
        let zero = if token.is_none() && org.is_none() && cluster.is_none() {
            None
        } else {
            let token = need(
                p,
                "API_USER_TOKEN",
                token,
                "set it with ORGANIZATION_ID and CLUSTER_ID, or none of them",
            );
            let org = need(
                p,
                "ORGANIZATION_ID",
                org,
                "set it with API_USER_TOKEN and CLUSTER_ID, or none of them",
            );
            let cluster = need(
                p,
                "CLUSTER_ID",
                cluster,
                "set it with API_USER_TOKEN and ORGANIZATION_ID, or none of them",
            );
            let client = self.zero_client(p, token, org);
            client.zip(cluster).map(|(client, cluster)| ZeroSettings {
                namespace_id: nonempty(&self.namespace_id).unwrap_or_else(|| cluster.clone()),
                client,
                cluster_id: cluster,
                apply_changesets: apply_changesets.unwrap_or(false),
            })
        };
        match (database_url, resources, naive_offset) {
            (Some(database_url), Some(resources), Some(naive_offset)) if problems.is_empty() => {
                Ok(OpsSettings {
                    database_url,
                    resources,
                    decode: DecodeOptions { naive_offset },
                    zero,
                })
            }
            _ => Err(problems),
        }
    }

    fn token(&self, p: &mut Vec<String>) -> Option<SecretString> {
        check(
            p,
            secret(
                &self.api_user_token,
                &self.api_user_token_file,
                "API_USER_TOKEN",
            ),
        )
        .flatten()
    }

    fn zero_client(
        &self,
        p: &mut Vec<String>,
        token: Option<SecretString>,
        org: Option<String>,
    ) -> Option<ZeroClient> {
        let base = check(
            p,
            self.api_base_url
                .parse::<jit_zero::ApiBaseUrl>()
                .map_err(|e| format!("API_BASE_URL: {e}")),
        );
        let mut zero = ZeroConfig::new(token?, org?);
        zero.base_url = base?;
        check(
            p,
            ZeroClient::new(zero).map_err(|e| format!("Pomerium Zero settings: {e}")),
        )
    }

    fn database_url(&self, p: &mut Vec<String>) -> Option<SecretString> {
        check(
            p,
            secret(&self.database_url, &self.database_url_file, "DATABASE_URL"),
        )
        .map(|url| url.unwrap_or_else(|| default_database_url(&self.data_dir).into()))
    }

    fn resources(&self, p: &mut Vec<String>) -> Option<Vec<Resource>> {
        self.file_config(p).map(|f| f.resources)
    }

    /// The config file, or without one the original's one resource.
    fn file_config(&self, p: &mut Vec<String>) -> Option<crate::resources::FileConfig> {
        match &self.config_file {
            Some(path) => crate::resources::load(path)
                .map_err(|e| p.extend(e.lines()))
                .ok(),
            None => self
                .original_resource(p)
                .map(|r| crate::resources::FileConfig {
                    resources: vec![r],
                    slack_users: Default::default(),
                    notifications: None,
                }),
        }
    }

    /// Approving from Slack: on with a signing secret, which then needs a
    /// way to map Slack users (the file's table or a bot token).
    fn slack(
        &self,
        p: &mut Vec<String>,
        table: Option<&BTreeMap<jit_web::SlackUserId, jit_web::SlackPerson>>,
    ) -> Option<jit_web::SlackConfig> {
        let signing = check(
            p,
            secret(
                &self.slack_signing_secret,
                &self.slack_signing_secret_file,
                "SLACK_SIGNING_SECRET",
            ),
        )?;
        let token = check(
            p,
            secret(
                &self.slack_bot_token,
                &self.slack_bot_token_file,
                "SLACK_BOT_TOKEN",
            ),
        )?;
        let table = table.cloned().unwrap_or_default();
        let Some(signing) = signing else {
            if token.is_some() || !table.is_empty() {
                p.push(
                    "SLACK_SIGNING_SECRET is not set, but SLACK_BOT_TOKEN or a [slack] users table is: set it \
                     (the Slack app's Basic Information → Signing Secret) to approve from Slack, or remove them"
                        .into(),
                );
            }
            return None;
        };
        let api = check(
            p,
            jit_web::slack_base_url("SLACK_API_BASE_URL", &self.slack_api_base_url),
        );
        let response = check(
            p,
            jit_web::slack_base_url("SLACK_RESPONSE_URL_BASE", &self.slack_response_url_base),
        )?;
        let users_info = match token {
            Some(token) => Some(jit_web::SlackUsersInfo { base: api?, token }),
            None => None,
        };
        check(
            p,
            jit_web::SlackConfig::new(signing, table, users_info, response)
                .map_err(|e| format!("SLACK_SIGNING_SECRET is set, but {e}")),
        )
    }

    fn naive_offset(&self, p: &mut Vec<String>) -> Option<time::UtcOffset> {
        check(
            p,
            time::UtcOffset::parse(
                self.ppl_naive_date_offset.trim(),
                time::macros::format_description!("[offset_hour sign:mandatory]:[offset_minute]"),
            )
            .map_err(|_| {
                format!(
                    "PPL_NAIVE_DATE_OFFSET: `{}` is not an offset like +00:00 or -05:00",
                    self.ppl_naive_date_offset
                )
            }),
        )
    }

    /// The one resource of a deployment without a resources file, as the
    /// original: POLICY_NAME, GRANT_DURATION, MAX_GRANT_DURATION and
    /// ALLOW_SELF_APPROVAL.
    fn original_resource(&self, p: &mut Vec<String>) -> Option<Resource> {
        let mut rules = Rules::default();
        if let Some(d) = check(p, grant("GRANT_DURATION", &self.grant_duration)) {
            rules.durations.default = d;
        }
        if let Some(d) = check(p, grant("MAX_GRANT_DURATION", &self.max_grant_duration)) {
            rules.durations.max = d;
        }
        let durations = &mut rules.durations;
        if durations.default > durations.max {
            p.push(format!(
                "GRANT_DURATION ({}) is longer than MAX_GRANT_DURATION ({})",
                durations.default, durations.max
            ));
        }
        let (default, max) = (durations.default, durations.max);
        durations.presets.retain(|d| *d <= max);
        durations.presets.extend([default]);
        durations.presets.sort();
        durations.presets.dedup();
        rules.allow_self_approval =
            check(p, boolean("ALLOW_SELF_APPROVAL", &self.allow_self_approval)).unwrap_or(false);
        let policy_name = self.policy_name.trim();
        if policy_name.is_empty() {
            p.push("POLICY_NAME is empty".into());
            return None;
        }
        Some(Resource::original(policy_name, rules))
    }
}

/// Settings a resources file takes the place of, given explicitly (flag or
/// environment) alongside one: worth a warning, since they do nothing.
pub fn ignored_with_config_file(matches: &ArgMatches) -> Vec<&'static str> {
    if matches.get_one::<PathBuf>("config_file").is_none() {
        return Vec::new();
    }
    [
        ("policy_name", "POLICY_NAME"),
        ("grant_duration", "GRANT_DURATION"),
        ("max_grant_duration", "MAX_GRANT_DURATION"),
        ("allow_self_approval", "ALLOW_SELF_APPROVAL"),
    ]
    .into_iter()
    .filter(|(id, _)| {
        matches!(
            matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    })
    .map(|(_, env)| env)
    .collect()
}

/// The secret settings given as command-line flags, which any user of the
/// machine can read (`ps`, `/proc/PID/cmdline`).
pub fn secrets_given_as_flags(matches: &ArgMatches) -> Vec<&'static str> {
    SECRET_ARGS
        .iter()
        .filter(|(id, _)| matches.value_source(id) == Some(ValueSource::CommandLine))
        .map(|&(_, env)| env)
        .collect()
}

/// Takes a secret argument straight into a [`SecretString`].
pub(crate) fn secret_arg(value: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(value.into())
}

/// The setting a verifier configuration error is about.
fn verifier_setting(error: &jit_identity::ConfigError) -> &'static str {
    use jit_identity::ConfigError;
    match error {
        ConfigError::InvalidExpectedValue {
            field: "audience", ..
        } => "EXPECTED_JWT_AUDIENCE",
        ConfigError::InvalidExpectedValue { .. } => "EXPECTED_JWT_ISSUER",
        ConfigError::LeewayTooLarge { .. } => "JWT_LEEWAY",
        _ => "JWKS_ENDPOINT",
    }
}

/// Records a problem; the value if there was none.
fn check<T>(problems: &mut Vec<String>, r: Result<T, String>) -> Option<T> {
    r.map_err(|e| problems.push(e)).ok()
}

fn need<T>(problems: &mut Vec<String>, name: &str, value: Option<T>, what: &str) -> Option<T> {
    if value.is_none() {
        problems.push(format!("{name} is not set: {what}"));
    }
    value
}

fn nonempty(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn list(v: &Option<String>) -> Vec<String> {
    v.as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A secret from its variable or from the file its `_FILE` variable names (not both).
fn secret(
    value: &Option<SecretString>,
    file: &Option<PathBuf>,
    name: &str,
) -> Result<Option<SecretString>, String> {
    let value = value
        .as_ref()
        .map(|v| v.expose_secret().trim())
        .filter(|v| !v.is_empty());
    match (value, file) {
        (Some(_), Some(_)) => Err(format!("set {name} or {name}_FILE, not both")),
        (Some(v), None) => Ok(Some(v.into())),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map(|s| Some(s.trim().into()).filter(|s: &SecretString| !s.expose_secret().is_empty()))
            .map_err(|e| format!("{name}_FILE: cannot read {}: {e}", path.display())),
        (None, None) => Ok(None),
    }
}

pub fn default_database_url(data_dir: &Path) -> String {
    format!("sqlite://{}", data_dir.join("pomerium-jit.db").display())
}

fn parse_listen(bind: &str, port: &str) -> Result<SocketAddr, String> {
    let ip: IpAddr = bind.trim().parse().map_err(|_| {
        format!("BIND_ADDRESS: `{bind}` is not an IP address (e.g. 0.0.0.0 or 127.0.0.1)")
    })?;
    // The Go original's PORT may be written ":8000".
    let port: u16 = port
        .trim()
        .trim_start_matches(':')
        .parse()
        .map_err(|_| format!("PORT: `{port}` is not a port number (1-65535)"))?;
    Ok(SocketAddr::new(ip, port))
}

/// `METRICS_ADDR`: unset or empty is off; otherwise an address and port,
/// not the main one (`/metrics` has no identity check, so it must not share
/// the port Pomerium forwards to).
fn parse_metrics(
    raw: Option<&str>,
    main: Option<SocketAddr>,
) -> Result<Option<SocketAddr>, String> {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    let addr: SocketAddr = raw.parse().map_err(|_| {
        format!("METRICS_ADDR: `{raw}` is not an address and port like 127.0.0.1:9000")
    })?;
    if main.is_some_and(|m| m.port() == addr.port() && addr.port() != 0) {
        return Err(format!(
            "METRICS_ADDR: port {} is the main port (PORT); metrics need a port of their own",
            addr.port()
        ));
    }
    Ok(Some(addr))
}

fn duration(name: &str, v: &str) -> Result<Duration, String> {
    humantime::parse_duration(v.trim())
        .map_err(|e| format!("{name}: `{v}` is not a duration like 30s or 5m ({e})"))
}

fn grant(name: &str, v: &str) -> Result<GrantDuration, String> {
    v.parse().map_err(|e| format!("{name}: {e}"))
}

fn boolean(name: &str, v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" | "" => Ok(false),
        _ => Err(format!("{name}: `{v}` is not true or false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn parse(args: &[&str]) -> Result<Settings, Vec<String>> {
        let mut argv = vec!["t"];
        argv.extend_from_slice(args);
        T::try_parse_from(argv).unwrap().args.settings()
    }

    const FULL: [&str; 8] = [
        "--api-user-token",
        "s3cr3t-api-token",
        "--organization-id",
        "org1",
        "--cluster-id",
        "c1",
        "--jwks-endpoint",
        "https://jit.example.com/.well-known/pomerium/jwks.json",
    ];

    #[test]
    fn slack_needs_its_signing_secret_and_a_way_to_map_users() {
        assert!(parse(&FULL).unwrap().slack.is_none());
        let with = |extra: &[&str]| {
            let mut argv = FULL.to_vec();
            argv.extend_from_slice(extra);
            parse(&argv)
        };
        let problems = with(&["--slack-signing-secret", "sl4ck-s3cret"])
            .unwrap_err()
            .join("\n");
        assert!(
            problems.contains("SLACK_SIGNING_SECRET is set, but no Slack user can be mapped"),
            "{problems}"
        );
        let problems = with(&["--slack-bot-token", "xoxb-1"])
            .unwrap_err()
            .join("\n");
        assert!(
            problems.starts_with("SLACK_SIGNING_SECRET is not set, but SLACK_BOT_TOKEN"),
            "{problems}"
        );
        let problems = with(&[
            "--slack-signing-secret",
            "s",
            "--slack-bot-token",
            "xoxb-1",
            "--slack-api-base-url",
            "http://slack.example/api",
        ])
        .unwrap_err()
        .join("\n");
        assert!(problems.starts_with("SLACK_API_BASE_URL: "), "{problems}");
        let s = with(&[
            "--slack-signing-secret",
            "sl4ck-s3cret",
            "--slack-bot-token",
            "xoxb-s3cret-token",
        ])
        .unwrap();
        assert!(s.slack.is_some());
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("sl4ck-s3cret") && !shown.contains("xoxb-s3cret"),
            "{shown}"
        );
    }

    #[test]
    fn debug_output_hides_secrets() {
        let mut argv = vec!["t", "--database-url", "postgres://jit:hunter2@db/jit"];
        argv.extend_from_slice(&FULL);
        let args = T::try_parse_from(argv).unwrap().args;
        let settings = args.settings().unwrap();
        for shown in [format!("{args:?}"), format!("{settings:?}")] {
            assert!(!shown.contains("s3cr3t"), "{shown}");
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("org1"), "{shown}");
        }
    }

    #[test]
    fn metrics_listener_is_off_unless_set_and_never_the_main_port() {
        assert_eq!(parse(&FULL).unwrap().metrics, None);
        let with = |addr: &str| {
            let mut argv = FULL.to_vec();
            argv.extend(["--metrics-addr", addr]);
            parse(&argv)
        };
        assert_eq!(
            with("127.0.0.1:9000").unwrap().metrics,
            Some("127.0.0.1:9000".parse().unwrap())
        );
        assert_eq!(with(" ").unwrap().metrics, None);
        let problems = with("localhost").unwrap_err().join("\n");
        assert!(
            problems.starts_with("METRICS_ADDR: `localhost`"),
            "{problems}"
        );
        let problems = with("0.0.0.0:8000").unwrap_err().join("\n");
        assert!(problems.contains("is the main port"), "{problems}");
    }

    #[test]
    fn secrets_given_as_flags_are_named() {
        use clap::CommandFactory;
        let mut argv = vec!["t", "--database-url", "sqlite://x.db"];
        argv.extend_from_slice(&FULL);
        let matches = T::command().try_get_matches_from(argv).unwrap();
        assert_eq!(
            secrets_given_as_flags(&matches),
            ["API_USER_TOKEN", "DATABASE_URL"]
        );
        let matches = T::command()
            .try_get_matches_from(["t", "--organization-id", "org1"])
            .unwrap();
        assert!(secrets_given_as_flags(&matches).is_empty());
    }

    #[test]
    fn jwks_over_plain_http_only_to_loopback() {
        let mut argv = FULL.to_vec();
        argv[7] = "http://jit.example.com/.well-known/pomerium/jwks.json";
        let problems = parse(&argv).unwrap_err().join("\n");
        assert!(
            problems.starts_with("JWKS_ENDPOINT: ") && problems.contains("use https"),
            "{problems}"
        );
        argv[7] = "http://127.0.0.1:8443/.well-known/pomerium/jwks.json";
        assert!(parse(&argv).is_ok());
    }

    #[test]
    fn verifier_and_zero_settings_are_checked_before_start_up() {
        let mut argv = FULL.to_vec();
        argv.extend_from_slice(&["--expected-jwt-audience", "https://jit.example.com"]);
        let problems = parse(&argv).unwrap_err().join("\n");
        assert!(
            problems.starts_with("EXPECTED_JWT_AUDIENCE: "),
            "{problems}"
        );
        let mut argv = FULL.to_vec();
        argv[3] = "org 1";
        let problems = parse(&argv).unwrap_err().join("\n");
        assert!(problems.contains("organization id"), "{problems}");
    }

    #[test]
    fn reports_every_missing_setting() {
        // Clear the environment's say in this test by passing flags only.
        let problems = parse(&["--port", "x", "--grant-duration", "zz"]).unwrap_err();
        let text = problems.join("\n");
        for needle in [
            "API_USER_TOKEN",
            "ORGANIZATION_ID",
            "CLUSTER_ID",
            "JWKS_ENDPOINT",
            "PORT",
            "GRANT_DURATION",
        ] {
            assert!(text.contains(needle), "missing {needle} in {text}");
        }
    }

    #[test]
    fn a_config_file_replaces_the_original_resource_settings() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("r.toml");
        std::fs::write(
            &file,
            "[[resource]]\nname = \"db\"\ntitle = \"DB\"\npolicy = { name = \"jit-db\" }\n",
        )
        .unwrap();
        let mut argv = FULL.to_vec();
        argv.extend_from_slice(&["--config", file.to_str().unwrap()]);
        // Not read with a file, so not an error either.
        argv.extend_from_slice(&["--grant-duration", "zz", "--policy-name", "old"]);
        let s = parse(&argv).unwrap();
        let names: Vec<(&str, &str)> = s
            .resources
            .iter()
            .map(|r| (r.name.as_str(), r.policy.name.as_str()))
            .collect();
        assert_eq!(names, [("db", "jit-db")]);

        use clap::CommandFactory;
        let matches = T::command()
            .try_get_matches_from(["t"].into_iter().chain(argv.iter().copied()))
            .unwrap();
        assert_eq!(
            ignored_with_config_file(&matches),
            ["POLICY_NAME", "GRANT_DURATION"]
        );
        let matches = T::command()
            .try_get_matches_from(["t", "--policy-name", "old"])
            .unwrap();
        assert!(ignored_with_config_file(&matches).is_empty());

        // A bad file: its problems, with file and line, among the settings'.
        std::fs::write(&file, "[[resource]]\nname = \"db\"\n").unwrap();
        let problems = parse(&argv).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with(&format!("{}:1:1: ", file.display())),
            "{problems:?}"
        );
    }

    #[test]
    fn parses_a_full_configuration() {
        let s = parse(&[
            "--api-user-token",
            "tok",
            "--organization-id",
            "org1",
            "--cluster-id",
            "c1",
            "--jwks-endpoint",
            "https://jit.example.com/.well-known/pomerium/jwks.json",
            "--port",
            ":9000",
            "--admin-emails",
            "a@x.test, b@x.test",
            "--admin-groups",
            "admins",
            "--grant-duration",
            "30m",
        ])
        .unwrap();
        assert_eq!(s.listen.port(), 9000);
        assert_eq!(s.namespace_id, "c1");
        assert_eq!(s.resources[0].rules.durations.default.whole_minutes(), 30);
        assert_eq!(s.verifier.audience(), "jit.example.com");
        assert!(!s.admins.is_open());
        assert!(s.database_url.expose_secret().starts_with("sqlite://"));
    }
}
