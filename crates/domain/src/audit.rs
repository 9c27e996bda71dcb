use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;

use crate::{Email, RequestId};

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Actor {
    /// A person signed in through Pomerium.
    User(Email),
    /// This service on its own: the expiry sweep, or sealing state on upgrade.
    System,
    /// Someone editing the policy in the Pomerium Zero console or through its
    /// API: a change we saw in the policy but did not make.
    Zero,
    /// An operator at the command line (`pomerium-jit revoke`, `grant`),
    /// who holds the database's rights rather than an approver's.
    Cli(Operator),
}

/// The name an operator acts under at the command line, as the audit trail
/// records it after `cli:`: 1-64 letters, digits and `.` `_` `-` `@` `+`
/// (a login name or an email), so it can neither hide nor forge another actor.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Operator(Box<str>);

impl Operator {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let ok = (1..=64).contains(&raw.len())
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-@+".contains(c));
        if ok {
            Ok(Self(raw.into()))
        } else {
            Err(format!(
                "`{raw}` is not an operator name: use 1-64 letters, digits and . _ - @ + \
                 (a login name or an email)"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::User(e) => write!(f, "user:{e}"),
            Actor::System => f.write_str("system"),
            Actor::Zero => f.write_str("zero"),
            Actor::Cli(o) => write!(f, "cli:{o}"),
        }
    }
}

impl FromStr for Actor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "system" => Ok(Actor::System),
            "zero" => Ok(Actor::Zero),
            _ if s.starts_with("cli:") => Operator::parse(&s[4..]).map(Actor::Cli),
            _ => s
                .strip_prefix("user:")
                .and_then(|e| Email::parse(e).ok())
                .map(Actor::User)
                .ok_or_else(|| format!("unknown actor `{s}`")),
        }
    }
}

impl Actor {
    /// Whether `text` is this actor's written form (its `Display`, which
    /// `FromStr` reads back), checked without writing it.
    pub fn is_written_as(&self, text: &str) -> bool {
        match self {
            Actor::User(e) => text.strip_prefix("user:") == Some(e.as_str()),
            Actor::System => text == "system",
            Actor::Zero => text == "zero",
            Actor::Cli(o) => text.strip_prefix("cli:") == Some(o.as_str()),
        }
    }

    /// A short human label: the email, "pomerium-jit" or "an edit in Pomerium Zero".
    pub fn label(&self) -> String {
        match self {
            Actor::User(e) => e.to_string(),
            Actor::System => "pomerium-jit".into(),
            Actor::Zero => "an edit in Pomerium Zero".into(),
            Actor::Cli(o) => format!("{o} (command line)"),
        }
    }
}

/// The kind of move an audit event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Requested,
    Approved,
    Rejected,
    /// Someone else ended active access: an admin, or an edit in Zero.
    Revoked,
    Expired,
    /// The requester withdrew their pending request.
    Cancelled,
    /// The requester ended their own active access early.
    GaveBack,
    /// An active grant's window changed outside the app (adopted from Zero).
    Modified,
    /// The store recorded a request's state as it found it when upgrading
    /// to events that commit to state: written before, not by a decision.
    Sealed,
    /// One approver approved; the request (or extension) needs more.
    Reviewed,
    /// The holder of active access asked for more time.
    ExtensionRequested,
    /// Active access was given more time.
    Extended,
    /// An approver declined an asked extension; the access runs on.
    ExtensionRejected,
    /// A pending request waited past its resource's time to live.
    TimedOut,
}

impl Action {
    pub const ALL: [Action; 14] = [
        Action::Requested,
        Action::Approved,
        Action::Rejected,
        Action::Revoked,
        Action::Expired,
        Action::Cancelled,
        Action::GaveBack,
        Action::Modified,
        Action::Sealed,
        Action::Reviewed,
        Action::ExtensionRequested,
        Action::Extended,
        Action::ExtensionRejected,
        Action::TimedOut,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Requested => "requested",
            Action::Approved => "approved",
            Action::Rejected => "rejected",
            Action::Revoked => "revoked",
            Action::Expired => "expired",
            Action::Cancelled => "cancelled",
            Action::GaveBack => "gave-back",
            Action::Modified => "modified",
            Action::Sealed => "sealed",
            Action::Reviewed => "reviewed",
            Action::ExtensionRequested => "extension-requested",
            Action::Extended => "extended",
            Action::ExtensionRejected => "extension-rejected",
            Action::TimedOut => "timed-out",
        }
    }

    /// What the actor did, in words for people: "alice withdrew".
    pub fn word(self) -> &'static str {
        match self {
            Action::Requested => "requested",
            Action::Approved => "approved",
            Action::Rejected => "rejected",
            Action::Revoked => "revoked",
            Action::Expired => "expired",
            Action::Cancelled => "withdrew",
            Action::GaveBack => "gave back",
            Action::Modified => "changed",
            Action::Sealed => "sealed on upgrade",
            Action::Reviewed => "approved, awaiting more approvals",
            Action::ExtensionRequested => "asked to extend",
            Action::Extended => "extended",
            Action::ExtensionRejected => "declined the extension",
            Action::TimedOut => "timed out unanswered",
        }
    }
}

impl FromStr for Action {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| format!("unknown audit action `{s}`"))
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of the append-only audit trail: who did what to whose request,
/// when, with details (expiry, reason, …) as a JSON object.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub at: OffsetDateTime,
    pub actor: Actor,
    pub action: Action,
    pub subject: Email,
    pub request_id: RequestId,
    pub details: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actor_round_trips() {
        for a in [
            Actor::System,
            Actor::Zero,
            Actor::User(Email::parse("a@b.c").unwrap()),
            Actor::Cli(Operator::parse("ops.lead@example.com").unwrap()),
        ] {
            assert_eq!(a.to_string().parse::<Actor>().unwrap(), a);
            assert!(a.is_written_as(&a.to_string()), "{a}");
            for other in [
                "system",
                "zero",
                "user:a@b.c",
                "cli:ops.lead@example.com",
                "user:",
            ] {
                assert_eq!(
                    a.is_written_as(other),
                    a.to_string() == other,
                    "{a} vs {other}"
                );
            }
        }
        assert!("user:nope".parse::<Actor>().is_err());
        for forged in ["cli:", "cli:a b", "cli:user:x", "cli:zero\nsystem"] {
            assert!(forged.parse::<Actor>().is_err(), "{forged}");
        }
        assert!("root".parse::<Actor>().is_err());
    }

    #[test]
    fn action_round_trips() {
        for a in Action::ALL {
            assert_eq!(a.as_str().parse::<Action>().unwrap(), a);
        }
    }
}
