//! The resources file (`CONFIG_FILE`): what can be requested, read from
//! TOML into [`Resource`]s. Every problem names its line and column, so an
//! operator fixes the file without guessing, and unknown keys are errors, so
//! a typo cannot quietly fall back to a default.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::num::NonZeroU8;
use std::ops::Range;
use std::path::{Path, PathBuf};

use jit_domain::{
    Approvers, AutoApprove, Condition, Durations, Email, GrantDuration, Pattern, PolicyTarget,
    Reason, ReasonRule, Resource, ResourceName, Rules, TicketRule,
};
use serde::Deserialize;
use serde::de::{Deserializer, Error as _};
use toml::Spanned;

mod slack;

/// The most approvals a resource may ask for.
const MAX_APPROVALS: u8 = 10;

/// One thing wrong in the file, where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub message: String,
}

/// Why the resources file cannot be used.
#[derive(Debug)]
pub enum FileError {
    Unreadable {
        path: PathBuf,
        error: std::io::Error,
    },
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

impl FileError {
    /// One line per problem, each `FILE:LINE:COLUMN: what is wrong`.
    pub fn lines(&self) -> Vec<String> {
        match self {
            FileError::Unreadable { path, error } => vec![format!(
                "cannot read the resources file {}: {error}",
                path.display()
            )],
            FileError::Invalid { path, problems } => problems
                .iter()
                .map(|p| format!("{}:{}:{}: {}", path.display(), p.line, p.column, p.message))
                .collect(),
        }
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lines().join("\n"))
    }
}

/// What a config file holds, checked.
#[derive(Debug, Clone)]
pub struct FileConfig {
    /// What can be requested, in file order; at least one.
    pub resources: Vec<Resource>,
    /// The `[slack]` users table: who each Slack member is here; empty without one.
    pub slack_users: BTreeMap<jit_web::SlackUserId, jit_web::SlackPerson>,
    /// The `[notifications]` section; `None`: no notifications are sent.
    pub notifications: Option<jit_notify::NotifyConfig>,
}

/// Reads and checks the file.
pub fn load(path: &Path) -> Result<FileConfig, FileError> {
    let text = std::fs::read_to_string(path).map_err(|error| FileError::Unreadable {
        path: path.to_owned(),
        error,
    })?;
    parse(&text).map_err(|problems| FileError::Invalid {
        path: path.to_owned(),
        problems,
    })
}

/// Parses and checks a config file's text; every problem found, in file order.
pub fn parse(text: &str) -> Result<FileConfig, Vec<Problem>> {
    let at = |span: Range<usize>, message: String| position(text, span.start, message);
    let file: RawFile = toml::from_str(text).map_err(|e| {
        vec![at(
            e.span().unwrap_or(0..0),
            e.message().trim_end().to_owned(),
        )]
    })?;
    let mut problems = Vec::new();
    let mut found = Vec::new();
    let slack_users = file.slack.map(|s| s.build(&mut found)).unwrap_or_default();
    problems.extend(found.into_iter().map(|(span, m)| at(span, m)));
    if file.resource.is_empty() {
        problems.push(at(
            0..0,
            "the file lists no resources; add at least one [[resource]] table".into(),
        ));
    }
    let mut names: HashMap<ResourceName, Range<usize>> = HashMap::new();
    let mut targets: HashMap<String, (ResourceName, Range<usize>)> = HashMap::new();
    let mut resources = Vec::new();
    for raw in file.resource {
        let raw = raw.into_inner();
        let name = raw.name.get_ref().0.clone();
        if let Some(first) = names.get(&name) {
            problems.push(at(
                raw.name.span(),
                format!(
                    "a second resource is named `{name}` (the first is on line {}); names must be unique",
                    line_of(text, first.start)
                ),
            ));
        } else {
            names.insert(name.clone(), raw.name.span());
        }
        // Unique by name alone, whatever the namespaces: the store keeps each
        // policy's base, write intents and writer lease under its name.
        let key = raw.policy.get_ref().name.get_ref().trim().to_owned();
        if let Some((other, first)) = targets.get(&key) {
            problems.push(at(
                raw.policy.span(),
                format!(
                    "resources `{other}` (line {}) and `{name}` both write a policy named `{key}`; \
                     each resource needs a policy name of its own (even in another namespace), \
                     so give this one another name",
                    line_of(text, first.start),
                ),
            ));
        } else {
            targets.insert(key, (name.clone(), raw.policy.span()));
        }
        let mut found = Vec::new();
        let resource = raw.build(&mut found);
        problems.extend(found.into_iter().map(|(span, m)| at(span, m)));
        resources.push(resource);
    }
    let notifications = file.notifications.and_then(|raw| {
        let section = raw.span();
        let names: Vec<ResourceName> = resources.iter().map(|r| r.name.clone()).collect();
        // Secrets come from the environment variables the section names.
        let env = |name: &str| std::env::var(name).ok();
        raw.into_inner()
            .build(&names, &env)
            .map_err(|found| {
                problems.extend(found.into_iter().map(|(span, m)| {
                    // Problems of the section as a whole sit at its header.
                    at(
                        if span.is_empty() {
                            section.clone()
                        } else {
                            span
                        },
                        m,
                    )
                }))
            })
            .ok()
    });
    if problems.is_empty() {
        Ok(FileConfig {
            resources,
            slack_users,
            notifications,
        })
    } else {
        problems.sort_by_key(|p| (p.line, p.column));
        Err(problems)
    }
}

/// One line per resource, for `config check`.
pub fn summary(resources: &[Resource]) -> String {
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let mut out = format!("{}:\n", plural(resources.len(), "resource"));
    for r in resources {
        let rules = &r.rules;
        let mut policy = format!("policy `{}`", r.policy.name);
        if let Some(ns) = &r.policy.namespace {
            policy.push_str(&format!(" in namespace `{ns}`"));
        }
        let approvers = match &r.approvers {
            Approvers::Admins => "the admins".to_owned(),
            Approvers::Listed { emails, groups } => {
                let mut who: Vec<String> = emails.iter().map(ToString::to_string).collect();
                who.extend(groups.iter().map(|g| format!("group {g}")));
                who.join(", ")
            }
        };
        let mut parts = vec![
            policy,
            format!(
                "{} from {approvers}",
                plural(rules.approvals_needed.get().into(), "approval")
            ),
        ];
        if !r.auto_approve.is_empty() {
            let names: Vec<&str> = r.auto_approve.iter().map(|a| a.name.as_str()).collect();
            parts.push(format!("auto-approved by {}", names.join(", ")));
        }
        if rules.reason.required {
            parts.push("reason required".into());
        }
        if let Some(t) = &rules.ticket {
            parts.push(format!(
                "{} {}",
                t.label,
                if t.required { "required" } else { "optional" }
            ));
        }
        parts.push(format!(
            "grants {} by default, at most {}",
            rules.durations.default, rules.durations.max
        ));
        if rules.max_extensions > 0 {
            parts.push(format!(
                "{} allowed",
                plural(rules.max_extensions as usize, "extension")
            ));
        }
        out.push_str(&format!(
            "- {} ({}): {}\n",
            r.name,
            r.title,
            parts.join("; ")
        ));
    }
    out
}

fn line_of(text: &str, offset: usize) -> usize {
    position(text, offset, String::new()).line
}

fn position(text: &str, offset: usize, message: String) -> Problem {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Problem {
        line,
        column: before[line_start..].chars().count() + 1,
        message,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    resource: Vec<Spanned<RawResource>>,
    slack: Option<slack::RawSlack>,
    notifications: Option<Spanned<jit_notify::RawNotifications>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResource {
    name: Spanned<Name>,
    title: Spanned<String>,
    #[serde(default)]
    description: String,
    policy: Spanned<RawPolicy>,
    #[serde(default)]
    durations: RawDurations,
    #[serde(default)]
    reason: RawReason,
    ticket: Option<RawTicket>,
    approvers: Option<Spanned<RawApprovers>>,
    approvals_needed: Option<Spanned<u8>>,
    #[serde(default)]
    allow_self_approval: bool,
    #[serde(default)]
    auto_approve: Vec<Spanned<RawAutoApprove>>,
    pending_ttl: Option<Dur>,
    #[serde(default)]
    max_extensions: u32,
    self_extension: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    name: Spanned<String>,
    namespace: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDurations {
    default: Option<Spanned<Dur>>,
    max: Option<Spanned<Dur>>,
    presets: Option<Vec<Spanned<Dur>>>,
    #[serde(default)]
    requester_chooses: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawReason {
    #[serde(default)]
    required: bool,
    min_length: Option<Spanned<usize>>,
    pattern: Option<Regex>,
    hint: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTicket {
    label: Option<Spanned<String>>,
    #[serde(default)]
    required: bool,
    pattern: Option<Regex>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApprovers {
    #[serde(default)]
    emails: Vec<Addr>,
    #[serde(default)]
    groups: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAutoApprove {
    name: String,
    group: Option<String>,
    email: Option<Addr>,
    claim: Option<String>,
    value: Option<String>,
}

/// Problems found while building one resource, with where they are.
type Found = Vec<(Range<usize>, String)>;

impl RawResource {
    /// The resource; whatever is wrong goes to `found` (the returned value
    /// is then only used to keep checking).
    fn build(self, found: &mut Found) -> Resource {
        let name = self.name.into_inner().0;
        if self.title.get_ref().trim().is_empty() {
            found.push((
                self.title.span(),
                "`title` is empty; write what people ask for, e.g. \"Production database\"".into(),
            ));
        }
        let policy_span = self.policy.span();
        let policy = self.policy.into_inner();
        let policy_name = policy.name.get_ref().trim().to_owned();
        if policy_name.is_empty() {
            found.push((
                policy.name.span(),
                "`policy.name` is empty; name the Pomerium Zero policy this resource's grants are written to".into(),
            ));
        }
        let namespace = match policy.namespace {
            Some(ns) if ns.trim().is_empty() => {
                found.push((
                    policy_span,
                    "`policy.namespace` is empty; leave it out to use NAMESPACE_ID (or CLUSTER_ID)"
                        .into(),
                ));
                None
            }
            ns => ns.map(|ns| ns.trim().to_owned()),
        };

        let mut rules = Rules {
            resource: name.clone(),
            ..Rules::default()
        };
        rules.durations = self.durations.build(found);
        rules.reason = self.reason.build(found);
        rules.ticket = self.ticket.map(|t| t.build(found));
        rules.allow_self_approval = self.allow_self_approval;
        rules.pending_ttl = self.pending_ttl.map(|d| d.0);
        rules.max_extensions = self.max_extensions;
        if let Some(s) = &self.self_extension {
            rules.self_extension = *s.get_ref();
            if rules.self_extension && rules.max_extensions == 0 {
                found.push((
                    s.span(),
                    "`self_extension = true` has no effect while `max_extensions` is 0; \
                     set max_extensions to how many extensions are allowed"
                        .into(),
                ));
            }
        }

        let approvers = match self.approvers {
            None => Approvers::Admins,
            Some(a) => {
                let span = a.span();
                let a = a.into_inner();
                for g in &a.groups {
                    if g.get_ref().trim().is_empty() {
                        found.push((g.span(), "an approver group is empty".into()));
                    }
                }
                let emails: BTreeSet<Email> = a.emails.into_iter().map(|e| e.0).collect();
                let groups: BTreeSet<String> = a
                    .groups
                    .into_iter()
                    .map(|g| g.into_inner().trim().to_owned())
                    .filter(|g| !g.is_empty())
                    .collect();
                if emails.is_empty() && groups.is_empty() {
                    found.push((
                        span,
                        "`approvers` lists nobody; list `emails` or `groups`, or leave the \
                         table out so the admins (ADMIN_EMAILS, ADMIN_GROUPS) approve"
                            .into(),
                    ));
                }
                Approvers::Listed { emails, groups }
            }
        };
        if let Some(n) = self.approvals_needed {
            let needed = *n.get_ref();
            match NonZeroU8::new(needed).filter(|n| n.get() <= MAX_APPROVALS) {
                None => found.push((
                    n.span(),
                    format!("`approvals_needed` is {needed}; it must be 1 to {MAX_APPROVALS}"),
                )),
                Some(needed) => {
                    rules.approvals_needed = needed;
                    if let Approvers::Listed { emails, groups } = &approvers
                        && groups.is_empty()
                        && !emails.is_empty()
                        && usize::from(needed.get()) > emails.len()
                    {
                        found.push((
                            n.span(),
                            format!(
                                "`approvals_needed` is {needed} but `approvers` lists only {} \
                                 email{} and no group, so no request could ever be approved; \
                                 list more approvers or lower approvals_needed",
                                emails.len(),
                                if emails.len() == 1 { "" } else { "s" }
                            ),
                        ));
                    }
                }
            }
        }

        let mut rule_names = BTreeSet::new();
        let auto_approve = self
            .auto_approve
            .into_iter()
            .filter_map(|rule| {
                let span = rule.span();
                let rule = rule.into_inner();
                if rule.name.trim().is_empty() {
                    found.push((span.clone(), "an auto-approve rule needs a `name` (it is recorded with each approval it makes)".into()));
                } else if !rule_names.insert(rule.name.clone()) {
                    found.push((span.clone(), format!("two auto-approve rules are named `{}`; names must be unique within a resource", rule.name)));
                }
                let when = match (rule.group, rule.email, rule.claim, rule.value) {
                    (Some(g), None, None, None) if !g.trim().is_empty() => {
                        Condition::Group(g.trim().to_owned())
                    }
                    (None, Some(e), None, None) => Condition::Email(e.0),
                    (None, None, Some(name), Some(value))
                        if !name.trim().is_empty() && !value.is_empty() =>
                    {
                        Condition::Claim {
                            name: name.trim().to_owned(),
                            value,
                        }
                    }
                    _ => {
                        found.push((
                            span,
                            format!(
                                "the auto-approve rule `{}` must say exactly one of \
                                 `group = \"…\"`, `email = \"…\"`, or `claim = \"…\"` with `value = \"…\"`",
                                rule.name
                            ),
                        ));
                        return None;
                    }
                };
                Some(AutoApprove {
                    name: rule.name,
                    when,
                })
            })
            .collect();

        Resource {
            name,
            title: self.title.into_inner().trim().to_owned(),
            description: self.description.trim().to_owned(),
            policy: PolicyTarget {
                name: policy_name,
                namespace,
            },
            approvers,
            auto_approve,
            rules,
        }
    }
}

impl RawDurations {
    fn build(self, found: &mut Found) -> Durations {
        let original = Rules::default().durations;
        let default = self
            .default
            .as_ref()
            .map_or(original.default, |d| d.get_ref().0);
        let max = self.max.as_ref().map_or(original.max, |d| d.get_ref().0);
        if default > max {
            let span = match (&self.default, &self.max) {
                (Some(d), _) => d.span(),
                (None, Some(m)) => m.span(),
                (None, None) => 0..0,
            };
            found.push((
                span,
                format!("the default duration ({default}) is longer than the maximum ({max})"),
            ));
        }
        let mut presets = match self.presets {
            None => original.presets.into_iter().filter(|d| *d <= max).collect(),
            Some(given) => given
                .into_iter()
                .filter_map(|p| {
                    let d = p.get_ref().0;
                    if d > max {
                        found.push((
                            p.span(),
                            format!("the preset {d} is longer than the maximum ({max})"),
                        ));
                        None
                    } else {
                        Some(d)
                    }
                })
                .collect::<Vec<_>>(),
        };
        // The default is always offered.
        presets.push(default);
        presets.sort();
        presets.dedup();
        Durations {
            default,
            max,
            presets,
            requester_chooses: self.requester_chooses,
        }
    }
}

impl RawReason {
    fn build(self, found: &mut Found) -> ReasonRule {
        let min_chars = match self.min_length {
            Some(n) if *n.get_ref() > Reason::MAX_LEN => {
                found.push((
                    n.span(),
                    format!(
                        "`reason.min_length` is {}, but a reason holds at most {} characters",
                        n.get_ref(),
                        Reason::MAX_LEN
                    ),
                ));
                0
            }
            Some(n) => n.into_inner(),
            None => 0,
        };
        ReasonRule {
            required: self.required,
            min_chars,
            pattern: self.pattern.map(|p| p.0),
            hint: self
                .hint
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty()),
        }
    }
}

impl RawTicket {
    fn build(self, found: &mut Found) -> TicketRule {
        let label = match self.label {
            None => "Ticket".to_owned(),
            Some(l) if l.get_ref().trim().is_empty() => {
                found.push((
                    l.span(),
                    "`ticket.label` is empty; leave it out for \"Ticket\"".into(),
                ));
                "Ticket".to_owned()
            }
            Some(l) => l.into_inner().trim().to_owned(),
        };
        TicketRule {
            label,
            required: self.required,
            pattern: self.pattern.map(|p| p.0),
        }
    }
}

/// Values checked as they are read, so a bad one is reported at its own
/// place by the TOML reader.
struct Name(ResourceName);
struct Dur(GrantDuration);
struct Addr(Email);
struct Regex(Pattern);

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ResourceName::parse(&s).map(Name).map_err(D::Error::custom)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map(Dur).map_err(D::Error::custom)
    }
}

impl<'de> Deserialize<'de> for Addr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Email::parse(s.trim())
            .map(Addr)
            .map_err(|e| D::Error::custom(format!("`{s}`: {e}")))
    }
}

impl<'de> Deserialize<'de> for Regex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Pattern::new(&s).map(Regex).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One resource using every key.
    const FULL: &str = r#"
[[resource]]
name = "prod-db"
title = "Production database"
description = "Read-write access to the production database."
approvals_needed = 2
allow_self_approval = true
pending_ttl = "1d"
max_extensions = 2
self_extension = true
auto_approve = [
  { name = "on-call", group = "oncall" },
  { name = "sre", claim = "team", value = "sre" },
  { name = "boss", email = "boss@example.com" },
]

[resource.policy]
name = "jit-prod-db"
namespace = "ns-1"

[resource.durations]
default = "30m"
max = "4h"
presets = ["2h", "15m"]
requester_chooses = true

[resource.reason]
required = true
min_length = 10
pattern = "INC-[0-9]+: .*"
hint = "start with the incident, like INC-123: what you do"

[resource.ticket]
label = "Change ticket"
required = true
pattern = "CHG-[0-9]+"

[resource.approvers]
emails = ["a@example.com", "b@example.com"]
groups = ["dba"]
"#;

    fn problems(text: &str) -> Vec<Problem> {
        parse(text).unwrap_err()
    }

    /// The one problem of `text`, as `line:column: message`.
    fn problem(text: &str) -> String {
        let ps = problems(text);
        assert_eq!(ps.len(), 1, "{ps:#?}");
        format!("{}:{}: {}", ps[0].line, ps[0].column, ps[0].message)
    }

    fn minimal(name: &str, policy: &str) -> String {
        format!(
            "[[resource]]\nname = \"{name}\"\ntitle = \"T\"\npolicy = {{ name = \"{policy}\" }}\n"
        )
    }

    fn d(s: &str) -> GrantDuration {
        s.parse().unwrap()
    }

    #[test]
    fn reads_every_key() {
        let rs = parse(FULL).unwrap().resources;
        assert_eq!(rs.len(), 1);
        let r = &rs[0];
        assert_eq!(r.name.as_str(), "prod-db");
        assert_eq!(r.title, "Production database");
        assert_eq!(
            r.description,
            "Read-write access to the production database."
        );
        assert_eq!(
            r.policy,
            PolicyTarget {
                name: "jit-prod-db".into(),
                namespace: Some("ns-1".into())
            }
        );
        let email = |e: &str| Email::parse(e).unwrap();
        assert_eq!(
            r.approvers,
            Approvers::Listed {
                emails: [email("a@example.com"), email("b@example.com")].into(),
                groups: ["dba".to_owned()].into(),
            }
        );
        assert_eq!(
            r.auto_approve,
            [
                AutoApprove {
                    name: "on-call".into(),
                    when: Condition::Group("oncall".into())
                },
                AutoApprove {
                    name: "sre".into(),
                    when: Condition::Claim {
                        name: "team".into(),
                        value: "sre".into()
                    }
                },
                AutoApprove {
                    name: "boss".into(),
                    when: Condition::Email(email("boss@example.com"))
                },
            ]
        );
        let rules = &r.rules;
        assert_eq!(rules.resource, r.name);
        assert_eq!(
            rules.durations,
            Durations {
                default: d("30m"),
                max: d("4h"),
                // Sorted, and the default is offered too.
                presets: vec![d("15m"), d("30m"), d("2h")],
                requester_chooses: true,
            }
        );
        assert!(rules.reason.required);
        assert_eq!(rules.reason.min_chars, 10);
        assert_eq!(
            rules.reason.pattern.as_ref().unwrap().as_str(),
            "INC-[0-9]+: .*"
        );
        assert!(rules.reason.hint.as_ref().unwrap().contains("INC-123"));
        let ticket = rules.ticket.as_ref().unwrap();
        assert_eq!(ticket.label, "Change ticket");
        assert!(ticket.required);
        assert!(ticket.pattern.as_ref().unwrap().is_match("CHG-42"));
        assert_eq!(rules.approvals_needed.get(), 2);
        assert!(rules.allow_self_approval);
        assert_eq!(rules.pending_ttl, Some(d("1d")));
        assert_eq!(rules.max_extensions, 2);
        assert!(rules.self_extension);
    }

    #[test]
    fn left_out_keys_take_the_originals_defaults() {
        let rs = parse(&minimal("a", "p")).unwrap().resources;
        let r = &rs[0];
        assert_eq!(r.approvers, Approvers::Admins);
        assert_eq!(r.policy.namespace, None);
        assert!(r.auto_approve.is_empty());
        assert_eq!(r.description, "");
        let (rules, original) = (&r.rules, Rules::default());
        assert_eq!(rules.durations, original.durations);
        assert_eq!(rules.reason, original.reason);
        assert_eq!(rules.ticket, None);
        assert_eq!(rules.approvals_needed.get(), 1);
        assert!(!rules.allow_self_approval);
        assert_eq!(rules.pending_ttl, None);
        assert_eq!(rules.max_extensions, 0);
        assert!(!rules.self_extension);

        // A ticket table with nothing in it is an optional "Ticket" field.
        let rs = parse(&format!("{}[resource.ticket]\n", minimal("a", "p")))
            .unwrap()
            .resources;
        let ticket = rs[0].rules.ticket.as_ref().unwrap();
        assert_eq!((ticket.label.as_str(), ticket.required), ("Ticket", false));

        // Presets left out: the original's, cut at the maximum, plus the default.
        let text = format!(
            "{}[resource.durations]\ndefault = \"45m\"\nmax = \"1h\"\n",
            minimal("a", "p")
        );
        let rs = parse(&text).unwrap().resources;
        assert_eq!(rs[0].rules.durations.presets, [d("30m"), d("45m"), d("1h")]);
    }

    #[test]
    fn resources_keep_file_order() {
        let text = format!("{}{}", minimal("b", "p1"), minimal("a", "p2"));
        let names: Vec<String> = parse(&text)
            .unwrap()
            .resources
            .iter()
            .map(|r| r.name.to_string())
            .collect();
        assert_eq!(names, ["b", "a"]);
    }

    #[test]
    fn syntax_and_type_errors_name_their_line() {
        let bad = problem(&format!("{}title = \"again\"\n", minimal("a", "p")));
        assert!(
            bad.starts_with("5:1: ") && bad.contains("duplicate key"),
            "{bad}"
        );
        let bad = problem("[[resource]]\nname = \"a\"\ntitle = 3\n");
        assert!(bad.starts_with("3:9: ") && bad.contains("string"), "{bad}");
        let bad = problem("[[resource]\n");
        assert!(bad.starts_with("1:"), "{bad}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        // A typo at every level.
        for (text, line, key) in [
            ("[[resources]]\nname = \"a\"\n", 1, "resources"),
            (&format!("{}titel = \"x\"\n", minimal("a", "p")), 5, "titel"),
            (
                &format!(
                    "{}[resource.durations]\nmaximum = \"1h\"\n",
                    minimal("a", "p")
                ),
                6,
                "maximum",
            ),
            (
                &format!("{}[resource.reason]\nmin_len = 3\n", minimal("a", "p")),
                6,
                "min_len",
            ),
            (
                &format!("{}[resource.ticket]\nlable = \"x\"\n", minimal("a", "p")),
                6,
                "lable",
            ),
            (
                &format!("{}[resource.approvers]\nemail = []\n", minimal("a", "p")),
                6,
                "email",
            ),
            (
                &format!(
                    "{}auto_approve = [{{ name = \"x\", groups = \"g\" }}]\n",
                    minimal("a", "p")
                ),
                5,
                "groups",
            ),
            (
                "[[resource]]\nname = \"a\"\ntitle = \"T\"\npolicy = { name = \"p\", ns = \"x\" }\n",
                4,
                "ns",
            ),
        ] {
            let ps = problems(text);
            assert_eq!(ps.len(), 1, "{ps:#?}");
            assert_eq!(ps[0].line, line, "{key}: {ps:#?}");
            assert!(
                ps[0].message.contains(&format!("unknown field `{key}`")),
                "{key}: {ps:#?}"
            );
        }
    }

    #[test]
    fn bad_values_name_their_line() {
        for (extra, needle) in [
            ("pending_ttl = \"1 hour\"", "not a duration"),
            (
                "auto_approve = [{ name = \"x\", email = \"nope\" }]",
                "`nope`",
            ),
            ("[resource.durations]\nmax = \"0m\"", "at least one minute"),
            (
                "[resource.reason]\npattern = \"(\"",
                "not a valid regular expression",
            ),
            (
                "[resource.ticket]\npattern = \"[a-\"",
                "not a valid regular expression",
            ),
            ("approvals_needed = 300", ""),
        ] {
            let text = format!("{}{extra}\n", minimal("a", "p"));
            let ps = problems(&text);
            assert_eq!(ps.len(), 1, "{extra}: {ps:#?}");
            let line = 4 + extra.lines().count();
            assert_eq!(ps[0].line, line, "{extra}: {ps:#?}");
            assert!(ps[0].message.contains(needle), "{extra}: {ps:#?}");
        }
        let bad =
            problem("[[resource]]\nname = \"Prod DB\"\ntitle = \"T\"\npolicy = { name = \"p\" }\n");
        assert!(
            bad.starts_with("2:8: ") && bad.contains("lowercase"),
            "{bad}"
        );
    }

    #[test]
    fn missing_keys_are_named() {
        let bad = problem("[[resource]]\nname = \"a\"\ntitle = \"T\"\n");
        assert!(bad.contains("missing field `policy`"), "{bad}");
        let bad = problem("[[resource]]\nname = \"a\"\npolicy = { name = \"p\" }\n");
        assert!(
            bad.starts_with("1:") && bad.contains("missing field `title`"),
            "{bad}"
        );
    }

    #[test]
    fn no_resources_is_an_error() {
        for text in ["", "# nothing\n", "resource = []\n"] {
            let bad = problem(text);
            assert!(
                bad.starts_with("1:1: ") && bad.contains("no resources"),
                "{bad}"
            );
        }
    }

    #[test]
    fn rules_that_cannot_work_name_their_line() {
        let m = minimal("a", "p");
        for (extra, line, needle) in [
            (
                "[resource.durations]\ndefault = \"2h\"\nmax = \"1h\"",
                6,
                "default duration (2h) is longer than the maximum (1h)",
            ),
            (
                "[resource.durations]\ndefault = \"2d\"",
                6,
                "default duration (2d) is longer than the maximum (1d)",
            ),
            (
                "[resource.durations]\nmax = \"1h\"\npresets = [\"30m\",\n  \"2h\"]",
                8,
                "preset 2h is longer than the maximum (1h)",
            ),
            ("approvals_needed = 0", 5, "must be 1 to 10"),
            ("approvals_needed = 11", 5, "must be 1 to 10"),
            (
                "approvals_needed = 3\n[resource.approvers]\nemails = [\"a@x.test\", \"b@x.test\"]",
                5,
                "lists only 2 emails and no group",
            ),
            (
                "[resource.approvers]\nemails = []",
                5,
                "`approvers` lists nobody",
            ),
            ("[resource.reason]\nmin_length = 501", 6, "at most 500"),
            (
                "[resource.ticket]\nlabel = \" \"",
                6,
                "`ticket.label` is empty",
            ),
            (
                "self_extension = true",
                5,
                "no effect while `max_extensions` is 0",
            ),
            ("auto_approve = [{ name = \"x\" }]", 5, "exactly one of"),
            (
                "auto_approve = [{ name = \"x\", group = \"g\", email = \"a@x.test\" }]",
                5,
                "exactly one of",
            ),
            (
                "auto_approve = [{ name = \"x\", claim = \"team\" }]",
                5,
                "exactly one of",
            ),
            (
                "auto_approve = [{ name = \"x\", group = \"g\" },\n  { name = \"x\", group = \"h\" }]",
                6,
                "two auto-approve rules are named `x`",
            ),
            ("title = \" \"", 0, ""),
        ] {
            let text = if extra.starts_with("title") {
                "[[resource]]\nname = \"a\"\ntitle = \" \"\npolicy = { name = \"p\" }\n".to_owned()
            } else {
                format!("{m}{extra}\n")
            };
            let (line, needle) = if extra.starts_with("title") {
                (3, "`title` is empty")
            } else {
                (line, needle)
            };
            let ps = problems(&text);
            assert_eq!(ps.len(), 1, "{extra}: {ps:#?}");
            assert_eq!(ps[0].line, line, "{extra}: {ps:#?}");
            assert!(ps[0].message.contains(needle), "{extra}: {ps:#?}");
        }
        // Enough emails, or any group (its size is unknown here): fine.
        for approvers in [
            "emails = [\"a@x.test\", \"b@x.test\"]",
            "emails = [\"a@x.test\"]\ngroups = [\"dba\"]",
        ] {
            let text = format!("{m}approvals_needed = 2\n[resource.approvers]\n{approvers}\n");
            assert!(parse(&text).is_ok(), "{approvers}");
        }
    }

    #[test]
    fn names_and_policies_must_be_unique() {
        let text = format!("{}{}", minimal("a", "p1"), minimal("a", "p2"));
        let bad = problem(&text);
        assert!(
            bad.starts_with("6:8: ")
                && bad.contains("second resource is named `a` (the first is on line 2)"),
            "{bad}"
        );

        let text = format!("{}{}", minimal("a", "p"), minimal("b", "p"));
        let bad = problem(&text);
        assert!(
            bad.starts_with("8:")
                && bad.contains("`a` (line 4) and `b` both write a policy named `p`"),
            "{bad}"
        );

        // The same name in another namespace too: the store keys a
        // policy's sync state by its name.
        let text = format!(
            "{}[[resource]]\nname = \"b\"\ntitle = \"T\"\npolicy = {{ name = \"p\", namespace = \"other\" }}\n",
            minimal("a", "p")
        );
        let bad = problem(&text);
        assert!(bad.contains("even in another namespace"), "{bad}");
    }

    #[test]
    fn an_empty_policy_name_or_namespace_is_an_error() {
        let bad = problem(&minimal("a", " "));
        assert!(bad.starts_with("4:19: `policy.name` is empty"), "{bad}");
        let text = "[[resource]]\nname = \"a\"\ntitle = \"T\"\npolicy = { name = \"p\", namespace = \"\" }\n";
        let bad = problem(text);
        assert!(
            bad.starts_with("4:10: `policy.namespace` is empty"),
            "{bad}"
        );
    }

    #[test]
    fn every_problem_is_reported_in_file_order() {
        let text = format!(
            "{}approvals_needed = 0\n{}self_extension = true\n",
            minimal("a", "p"),
            minimal("a", "q")
        );
        let lines: Vec<usize> = problems(&text).iter().map(|p| p.line).collect();
        assert_eq!(lines, [5, 7, 10]);
    }

    #[test]
    fn columns_count_characters() {
        let p = position("é = 1\nab", 8, String::new());
        assert_eq!((p.line, p.column), (2, 2));
    }

    #[test]
    fn file_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("res.toml");
        std::fs::write(&path, "[[resource]]\nname = \"a\"\n").unwrap();
        let lines = load(&path).unwrap_err().lines();
        assert_eq!(lines.len(), 1);
        assert!(
            lines[0].starts_with(&format!("{}:1:1: ", path.display())),
            "{lines:?}"
        );
        let missing = load(&dir.path().join("nope.toml")).unwrap_err();
        assert!(missing.to_string().contains("cannot read"), "{missing}");
    }

    #[test]
    fn summary_lists_each_resource() {
        let rs = parse(FULL).unwrap().resources;
        let s = summary(&rs);
        assert!(
            s.starts_with(
                "1 resource:\n- prod-db (Production database): policy `jit-prod-db` in namespace `ns-1`; "
            ),
            "{s}"
        );
        for part in [
            "; 2 approvals from a@example.com, b@example.com, group dba; ",
            "; auto-approved by on-call, sre, boss; ",
            "; reason required; Change ticket required; ",
            "; grants 30m by default, at most 4h; 2 extensions allowed\n",
        ] {
            assert!(s.contains(part), "{part}: {s}");
        }
    }
}
