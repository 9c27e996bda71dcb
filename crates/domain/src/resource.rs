//! What can be requested: resources, who approves them, and the rules each
//! request on them follows. Built from the config file (or the one default
//! resource that behaves like the Go original); the domain only reads them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::{Email, Rules};

/// A resource's short name: its key in the config file, in URLs and in the
/// store. 1 to 63 characters of `a-z`, `0-9`, `-` and `_`, starting with a
/// letter or digit, so it is safe in a path segment and a CSV cell as is.
/// Shared text: every request on a resource can hold the same name.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceName(Arc<str>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceNameError {
    #[error("a resource name cannot be empty")]
    Empty,
    #[error("the resource name `{0}` is longer than 63 characters")]
    TooLong(String),
    #[error(
        "the resource name `{0}` may only hold lowercase letters, digits, `-` and `_`, \
         and must start with a letter or digit"
    )]
    BadCharacter(String),
}

impl ResourceName {
    /// The resource every request belonged to before there were several,
    /// and the one that exists when no config file is given.
    pub const DEFAULT: &'static str = "default";

    pub fn parse(raw: &str) -> Result<Self, ResourceNameError> {
        let shown = || raw.chars().take(80).collect::<String>();
        if raw.is_empty() {
            return Err(ResourceNameError::Empty);
        }
        if raw.len() > 63 {
            return Err(ResourceNameError::TooLong(shown()));
        }
        let ok_char =
            |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
        let first_ok = raw
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !first_ok || !raw.chars().all(ok_char) {
            return Err(ResourceNameError::BadCharacter(shown()));
        }
        Ok(Self(raw.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for ResourceName {
    fn default() -> Self {
        Self(Self::DEFAULT.into())
    }
}

impl FromStr for ResourceName {
    type Err = ResourceNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for ResourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ResourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResourceName({})", self.0)
    }
}

/// One thing people can ask for: a Pomerium policy that grants it, who
/// decides, and the rules requests on it follow.
#[derive(Debug, Clone)]
pub struct Resource {
    pub name: ResourceName,
    pub title: String,
    pub description: String,
    pub policy: PolicyTarget,
    pub approvers: Approvers,
    pub auto_approve: Vec<AutoApprove>,
    /// Durations, reason and ticket, approvals needed, time limits.
    pub rules: Rules,
}

impl Resource {
    /// The resource of a deployment without a config file: the Go
    /// original's one policy, approved by the admins.
    pub fn original(policy_name: impl Into<String>, rules: Rules) -> Self {
        let policy_name = policy_name.into();
        Self {
            name: rules.resource.clone(),
            title: "Protected app".into(),
            description: format!("Access through the Pomerium policy `{policy_name}`."),
            policy: PolicyTarget {
                name: policy_name,
                namespace: None,
            },
            approvers: Approvers::Admins,
            auto_approve: Vec::new(),
            rules,
        }
    }

    /// The first auto-approve rule `person` meets, if any.
    pub fn auto_approval(&self, person: &Person) -> Option<&AutoApprove> {
        self.auto_approve.iter().find(|r| r.matches(person))
    }
}

/// The Pomerium Zero policy a resource's grants are written to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyTarget {
    pub name: String,
    /// `None`: the cluster's namespace (`CLUSTER_ID`), as the original.
    pub namespace: Option<String>,
}

/// Who may decide requests on a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approvers {
    /// The app's admins (`ADMIN_EMAILS` / `ADMIN_GROUPS`, or Pomerium's
    /// `/admin` route in open mode): the original's behaviour.
    Admins,
    /// These people and the members of these groups, and nobody else.
    Listed {
        emails: BTreeSet<Email>,
        groups: BTreeSet<String>,
    },
}

impl Approvers {
    /// Whether `person` is listed; `None` for [`Approvers::Admins`], which
    /// only the service can judge (it knows the admin lists and the route).
    pub fn lists(&self, person: &Person) -> Option<bool> {
        match self {
            Approvers::Admins => None,
            Approvers::Listed { emails, groups } => Some(
                emails.contains(person.email) || person.groups.iter().any(|g| groups.contains(g)),
            ),
        }
    }
}

/// A rule that approves a request at once, recorded with its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoApprove {
    pub name: String,
    pub when: Condition,
}

impl AutoApprove {
    pub fn matches(&self, person: &Person) -> bool {
        self.when.matches(person)
    }
}

/// What a requester must be for an auto-approve rule to fire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Member of this group (as Pomerium's assertion lists groups).
    Group(String),
    /// One of these emails.
    Email(Email),
    /// The assertion's claim `name` is `value`, or a list holding it.
    Claim { name: String, value: String },
}

impl Condition {
    pub fn matches(&self, person: &Person) -> bool {
        match self {
            Condition::Group(g) => person.groups.iter().any(|x| x == g),
            Condition::Email(e) => person.email == e,
            Condition::Claim { name, value } => person
                .claims
                .get(name)
                .is_some_and(|vs| vs.iter().any(|v| v == value)),
        }
    }
}

/// Who is asking, as far as the rules care: from Pomerium's verified
/// assertion, borrowed. Every page asks the rules about its caller once per
/// resource; an owned copy cloned each group and claim each time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Person<'a> {
    pub email: &'a Email,
    pub groups: &'a [String],
    /// Other string claims of the assertion (a list claim holds each item).
    pub claims: &'a BTreeMap<String, Vec<String>>,
}

/// Who someone is, owned: what a verified assertion (or Slack's directory)
/// says of them. Held once per person and shared: a request takes its
/// caller with one reference count, where three shared parts took three,
/// each on a cache line the other worker had written last (2% of `GET /`'s
/// CPU time in perf).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Profile {
    pub email: Email,
    pub groups: Arc<[String]>,
    /// Other string claims of the assertion (a list claim holds each item).
    pub claims: Arc<BTreeMap<String, Vec<String>>>,
}

impl Profile {
    /// The profile as the rules read it.
    pub fn person(&self) -> Person<'_> {
        Person {
            email: &self.email,
            groups: &self.groups,
            claims: &self.claims,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(email: &str) -> Profile {
        Profile {
            email: Email::parse(email).unwrap(),
            groups: Arc::new([]),
            claims: Arc::default(),
        }
    }

    #[test]
    fn resource_names_are_safe_slugs() {
        for ok in ["default", "prod-db", "a", "x_1", "0day"] {
            assert_eq!(ResourceName::parse(ok).unwrap().as_str(), ok);
        }
        assert_eq!(ResourceName::parse(""), Err(ResourceNameError::Empty));
        for bad in ["Prod", "-x", "_x", "a b", "a/b", "é", "a.b"] {
            assert!(
                matches!(
                    ResourceName::parse(bad),
                    Err(ResourceNameError::BadCharacter(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            ResourceName::parse(&"a".repeat(64)),
            Err(ResourceNameError::TooLong(_))
        ));
        assert_eq!(ResourceName::default().as_str(), ResourceName::DEFAULT);
    }

    #[test]
    fn conditions_match_groups_emails_and_claims() {
        let mut p = person("a@x.test");
        p.groups = ["on-call".to_owned()].into();
        p.claims = Arc::new([("team".into(), vec!["sre".into(), "db".into()])].into());
        let p = p.person();
        assert!(Condition::Group("on-call".into()).matches(&p));
        assert!(!Condition::Group("on".into()).matches(&p));
        assert!(Condition::Email(Email::parse("a@x.test").unwrap()).matches(&p));
        let claim = |n: &str, v: &str| Condition::Claim {
            name: n.into(),
            value: v.into(),
        };
        assert!(claim("team", "db").matches(&p));
        assert!(!claim("team", "web").matches(&p));
        assert!(!claim("role", "db").matches(&p));
    }

    #[test]
    fn listed_approvers_are_emails_or_group_members() {
        let a = Approvers::Listed {
            emails: [Email::parse("boss@x.test").unwrap()].into(),
            groups: ["dba".to_owned()].into(),
        };
        let mut p = person("boss@x.test");
        assert_eq!(a.lists(&p.person()), Some(true));
        p.email = Email::parse("other@x.test").unwrap();
        assert_eq!(a.lists(&p.person()), Some(false));
        p.groups = ["dba".to_owned()].into();
        assert_eq!(a.lists(&p.person()), Some(true));
        assert_eq!(Approvers::Admins.lists(&p.person()), None);
    }
}
