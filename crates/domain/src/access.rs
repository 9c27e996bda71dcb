use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Actor, Email, GrantDuration, Reason, ResourceName, Ticket};

/// Identifies one access request through its whole life. Time-ordered (UUID
/// v7), so ids sort by creation.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(Uuid);

impl RequestId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
}

impl Default for RequestId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestId({})", self.0)
    }
}

impl FromStr for RequestId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// What an approval granted: who approved it, when, and the window of access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub approved_by: Actor,
    pub approved_at: OffsetDateTime,
    /// A scheduled start (`date.after`), asked for or adopted from the console.
    pub starts_at: Option<OffsetDateTime>,
    pub expires_at: OffsetDateTime,
}

/// Where a request stands. `Pending` and `Active` are open; the rest are final.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Pending,
    Active(Grant),
    Expired(Grant),
    /// The grant is boxed: revoked requests are few, and every request in
    /// the pages' memory is as large as the largest state.
    Revoked {
        grant: Box<Grant>,
        by: Actor,
        at: OffsetDateTime,
    },
    Rejected {
        by: Actor,
        at: OffsetDateTime,
    },
    Cancelled {
        by: Actor,
        at: OffsetDateTime,
    },
}

/// The name of a [`State`], for storage, filters and display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Pending,
    Active,
    Expired,
    Revoked,
    Rejected,
    Cancelled,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Pending,
        Status::Active,
        Status::Expired,
        Status::Revoked,
        Status::Rejected,
        Status::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Active => "active",
            Status::Expired => "expired",
            Status::Revoked => "revoked",
            Status::Rejected => "rejected",
            Status::Cancelled => "cancelled",
        }
    }

    pub fn is_open(self) -> bool {
        matches!(self, Status::Pending | Status::Active)
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown request status `{s}`"))
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl State {
    pub fn status(&self) -> Status {
        match self {
            State::Pending => Status::Pending,
            State::Active(_) => Status::Active,
            State::Expired(_) => Status::Expired,
            State::Revoked { .. } => Status::Revoked,
            State::Rejected { .. } => Status::Rejected,
            State::Cancelled { .. } => Status::Cancelled,
        }
    }

    /// The grant, if this request was ever approved.
    pub fn grant(&self) -> Option<&Grant> {
        match self {
            State::Active(g) | State::Expired(g) => Some(g),
            State::Revoked { grant, .. } => Some(grant),
            _ => None,
        }
    }

    /// When the request left the open states, if it has.
    pub fn ended_at(&self) -> Option<OffsetDateTime> {
        match self {
            State::Pending | State::Active(_) => None,
            State::Expired(g) => Some(g.expires_at),
            State::Revoked { at, .. }
            | State::Rejected { at, .. }
            | State::Cancelled { at, .. } => Some(*at),
        }
    }
}

/// What a person asked for, beyond the resource: why, for how long, from
/// when, under which ticket. Every part is optional unless the resource's
/// rules require it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ask {
    pub reason: Option<Reason>,
    /// The proposed length; `None`: the approver's choice or the default.
    pub duration: Option<GrantDuration>,
    /// A scheduled start (`date.after`); `None`: on approval.
    pub starts_at: Option<OffsetDateTime>,
    pub ticket: Option<Ticket>,
}

impl From<Option<Reason>> for Ask {
    fn from(reason: Option<Reason>) -> Self {
        Self {
            reason,
            ..Self::default()
        }
    }
}

/// One approver's approval of a pending request or of an asked extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    pub by: Email,
    pub at: OffsetDateTime,
}

/// More time the holder of active access asked for, awaiting approvers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionAsk {
    pub duration: GrantDuration,
    pub reason: Option<Reason>,
    pub asked_at: OffsetDateTime,
}

/// One access request on one resource and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: RequestId,
    pub resource: ResourceName,
    pub email: Email,
    pub ask: Ask,
    pub requested_at: OffsetDateTime,
    /// The requester, an approver granting on someone's behalf, or
    /// [`Actor::Zero`] for an entry adopted from the policy.
    pub requested_by: Actor,
    pub state: State,
    /// Approvals toward the pending request (kept once it is approved, as
    /// the record of who approved), or toward an asked extension, which
    /// starts them afresh. Cleared when a request ends.
    pub approvals: Vec<Approval>,
    /// An extension asked of active access and not yet decided. Boxed:
    /// few requests have one, and the pages hold every open request.
    pub extension: Option<Box<ExtensionAsk>>,
    /// How many times this grant was extended.
    pub extensions: u32,
    /// The approver's comment on the last rejection or revocation.
    pub comment: Option<Reason>,
}

impl Request {
    /// Where this request stands among others: oldest first, ties broken
    /// by id, so every listing and every rendered policy keeps one order.
    pub fn order(&self) -> (OffsetDateTime, RequestId) {
        (self.requested_at, self.id)
    }

    pub fn is_open(&self) -> bool {
        self.state.status().is_open()
    }

    pub fn reason(&self) -> Option<&Reason> {
        self.ask.reason.as_ref()
    }

    /// Whether this request's access is in force at `now`: approved, started
    /// and not yet past its expiry (even if the sweep has not marked it).
    pub fn grants_access_at(&self, now: OffsetDateTime) -> bool {
        match &self.state {
            State::Active(g) => now < g.expires_at && g.starts_at.is_none_or(|s| s <= now),
            _ => false,
        }
    }

    /// Whether the system closed this request unanswered (its time to live passed).
    pub fn timed_out(&self) -> bool {
        matches!(
            self.state,
            State::Cancelled {
                by: Actor::System,
                ..
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pages keep every open request in memory: at 10,000 people each
    /// byte here is 10 KB. Rare parts are boxed (an asked extension, a
    /// revoked grant) and text is held as shared or boxed `str`, to keep it
    /// so (432 bytes, then 384, before).
    #[test]
    fn a_request_stays_small() {
        assert!(std::mem::size_of::<Request>() <= 288);
    }
}
