use std::fmt;

use serde_json::json;
use time::OffsetDateTime;

use crate::{
    Action, Actor, AuditEvent, DurationError, Email, Grant, GrantDuration, RemoteEntry, Request,
    RequestId, State,
};

/// A requester's justification: trimmed, at most [`Reason::MAX_LEN`]
/// characters, no control characters but line breaks and tabs.
#[derive(Clone, PartialEq, Eq)]
pub struct Reason(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReasonError {
    #[error("the reason is longer than {max} characters", max = Reason::MAX_LEN)]
    TooLong,
    #[error("the reason contains control characters")]
    BadCharacter,
}

impl Reason {
    pub const MAX_LEN: usize = 500;

    /// `Ok(None)` for an empty or blank reason.
    pub fn parse(raw: &str) -> Result<Option<Self>, ReasonError> {
        let s = raw.trim();
        if s.is_empty() {
            return Ok(None);
        }
        if s.chars().count() > Self::MAX_LEN {
            return Err(ReasonError::TooLong);
        }
        if s.chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
        {
            return Err(ReasonError::BadCharacter);
        }
        Ok(Some(Self(s.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reason({:?})", self.0)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a move was refused. Each says what was wrong in words a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("{email} has no pending request or active access")]
    NoOpenRequest { email: Email },
    #[error("{email} already has a pending request (since {since})")]
    AlreadyPending { email: Email, since: OffsetDateTime },
    #[error("{email} already has access until {until}")]
    AlreadyActive { email: Email, until: OffsetDateTime },
    #[error("you cannot approve your own request; ask another admin")]
    SelfApproval,
    #[error(transparent)]
    Duration(#[from] DurationError),
    /// The request acted on is not the one the page showed any more.
    #[error("the request from {email} changed since it was shown: {change}")]
    Changed { email: Email, change: Change },
}

/// One move of one request: its new state and the audit event recording it.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub request: Request,
    pub event: AuditEvent,
}

/// The rules every move follows. Each method takes the email's open request
/// (pending or active; `None` if there is none) and returns the moves to
/// write, in order, or why the move is refused. A grant whose expiry has
/// passed is first moved to `Expired`, so decisions never act on lapsed access.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Length of a grant when the approver does not choose one.
    pub default_duration: GrantDuration,
    /// The longest grant an approver may give.
    pub max_duration: GrantDuration,
    /// Whether an admin may approve their own request.
    pub allow_self_approval: bool,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            default_duration: GrantDuration::ONE_HOUR,
            max_duration: GrantDuration::from_minutes(24 * 60).expect("nonzero"),
            allow_self_approval: false,
        }
    }
}

impl Rules {
    /// A user asks for access. Asking again while pending or holding access
    /// is refused rather than replacing the entry (the Go original revoked the
    /// caller's own grant here).
    pub fn request(
        &self,
        open: Option<&Request>,
        email: &Email,
        reason: Option<Reason>,
        now: OffsetDateTime,
    ) -> Result<Vec<Transition>, DomainError> {
        let (open, mut out) = settle(open, now);
        match open.as_ref().map(|r| &r.state) {
            Some(State::Pending) => {
                let since = open.as_ref().map_or(now, |r| r.requested_at);
                Err(DomainError::AlreadyPending {
                    email: email.clone(),
                    since,
                })
            }
            Some(State::Active(g)) => Err(DomainError::AlreadyActive {
                email: email.clone(),
                until: g.expires_at,
            }),
            _ => {
                out.push(new_pending(email, reason, Actor::User(email.clone()), now));
                Ok(out)
            }
        }
    }

    /// An admin approves a pending request for `duration` (or the default).
    pub fn approve(
        &self,
        open: Option<&Request>,
        email: &Email,
        by: &Email,
        duration: Option<GrantDuration>,
        now: OffsetDateTime,
    ) -> Result<Vec<Transition>, DomainError> {
        let duration = duration.unwrap_or(self.default_duration);
        if duration > self.max_duration {
            return Err(DurationError::TooLong {
                max: self.max_duration,
            }
            .into());
        }
        if email == by && !self.allow_self_approval {
            return Err(DomainError::SelfApproval);
        }
        let (open, mut out) = settle(open, now);
        let Some(req) = open else {
            return Err(DomainError::NoOpenRequest {
                email: email.clone(),
            });
        };
        if let State::Active(g) = &req.state {
            return Err(DomainError::AlreadyActive {
                email: email.clone(),
                until: g.expires_at,
            });
        }
        let grant = Grant {
            approved_by: Actor::User(by.clone()),
            approved_at: now,
            starts_at: None,
            // Whole seconds: the policy's RFC 3339 dates carry no fraction, so the
            // store and the policy agree exactly.
            expires_at: (now + duration.as_duration())
                .replace_nanosecond(0)
                .unwrap_or(now),
        };
        let details =
            json!({ "expires_at": rfc3339(grant.expires_at), "duration": duration.to_string() });
        out.push(moved(
            req,
            State::Active(grant),
            Actor::User(by.clone()),
            Action::Approved,
            details,
            now,
        ));
        Ok(out)
    }

    /// An admin rejects a pending request or revokes active access: the Go
    /// original's `revoke-access` did both, and so does this.
    pub fn revoke(
        &self,
        open: Option<&Request>,
        email: &Email,
        by: &Email,
        now: OffsetDateTime,
    ) -> Result<Vec<Transition>, DomainError> {
        end(open, email, Actor::User(by.clone()), EndKind::ByAdmin, now)
    }

    /// The requester withdraws a pending request or gives up access early.
    pub fn cancel(
        &self,
        open: Option<&Request>,
        email: &Email,
        now: OffsetDateTime,
    ) -> Result<Vec<Transition>, DomainError> {
        end(
            open,
            email,
            Actor::User(email.clone()),
            EndKind::BySelf,
            now,
        )
    }

    /// The expiry sweep: moves a lapsed grant to `Expired`, otherwise nothing.
    pub fn expire(&self, open: Option<&Request>, now: OffsetDateTime) -> Vec<Transition> {
        settle(open, now).1
    }

    /// Adopts what the policy in Pomerium Zero now says about `email` after
    /// someone changed it there (the console or the API): `remote` is the
    /// entry as it stands now, `None` if it was removed. Returns the moves
    /// that make the store agree, attributed to [`Actor::Zero`]; nothing if
    /// it already does.
    pub fn adopt(
        &self,
        open: Option<&Request>,
        email: &Email,
        remote: Option<RemoteEntry>,
        now: OffsetDateTime,
    ) -> Vec<Transition> {
        // A grant extended in the console before it lapsed, but seen only
        // after, is extended: not ended and granted anew.
        let extends_lapsed = matches!(
            (open, remote),
            (Some(Request { state: State::Active(_), .. }), Some(RemoteEntry::Grant { expires_at, .. }))
                if expires_at > now
        );
        let (open, mut out) = if extends_lapsed {
            (open.cloned(), Vec::new())
        } else {
            settle(open, now)
        };
        let zero = Actor::Zero;
        let adopted = json!({ "source": "pomerium-zero" });
        match (open, remote) {
            (None, None)
            | (
                Some(Request {
                    state: State::Pending,
                    ..
                }),
                Some(RemoteEntry::Pending),
            ) => {}
            (Some(req), None) => {
                out.extend(end(Some(&req), email, zero, EndKind::ByAdmin, now).unwrap_or_default());
            }
            (None, Some(RemoteEntry::Pending)) => out.push(new_pending(email, None, zero, now)),
            // `settle` only returns open requests, so this one is active.
            (Some(req), Some(RemoteEntry::Pending)) => {
                out.extend(
                    end(Some(&req), email, zero.clone(), EndKind::ByAdmin, now).unwrap_or_default(),
                );
                out.push(new_pending(email, None, zero, now));
            }
            (
                open,
                Some(RemoteEntry::Grant {
                    starts_at,
                    expires_at,
                }),
            ) => {
                let req = match open {
                    Some(req) => req,
                    None => {
                        let t = new_pending(email, None, zero.clone(), now);
                        let req = t.request.clone();
                        out.push(t);
                        req
                    }
                };
                let (grant, action) = match &req.state {
                    State::Active(g) if g.starts_at == starts_at && g.expires_at == expires_at => {
                        return out;
                    }
                    State::Active(g) => (
                        Grant {
                            starts_at,
                            expires_at,
                            ..g.clone()
                        },
                        Action::Modified,
                    ),
                    _ => (
                        Grant {
                            approved_by: zero.clone(),
                            approved_at: now,
                            starts_at,
                            expires_at,
                        },
                        Action::Approved,
                    ),
                };
                let mut details = adopted;
                details["expires_at"] = json!(rfc3339(expires_at));
                if let Some(s) = starts_at {
                    details["starts_at"] = json!(rfc3339(s));
                }
                let t = moved(req, State::Active(grant), zero, action, details, now);
                let lapsed = settle(Some(&t.request), now).1;
                out.push(t);
                out.extend(lapsed);
            }
        }
        out
    }
}

enum EndKind {
    ByAdmin,
    BySelf,
}

fn end(
    open: Option<&Request>,
    email: &Email,
    by: Actor,
    kind: EndKind,
    now: OffsetDateTime,
) -> Result<Vec<Transition>, DomainError> {
    let (open, mut out) = settle(open, now);
    let Some(req) = open else {
        return Err(DomainError::NoOpenRequest {
            email: email.clone(),
        });
    };
    let (state, action) = match (&req.state, kind) {
        (State::Pending, EndKind::ByAdmin) => (
            State::Rejected {
                by: by.clone(),
                at: now,
            },
            Action::Rejected,
        ),
        (State::Pending, EndKind::BySelf) => (
            State::Cancelled {
                by: by.clone(),
                at: now,
            },
            Action::Cancelled,
        ),
        (State::Active(g), kind) => (
            State::Revoked {
                grant: g.clone(),
                by: by.clone(),
                at: now,
            },
            match kind {
                EndKind::ByAdmin => Action::Revoked,
                EndKind::BySelf => Action::GaveBack,
            },
        ),
        _ => {
            return Err(DomainError::NoOpenRequest {
                email: email.clone(),
            });
        }
    };
    out.push(moved(req, state, by, action, json!({}), now));
    Ok(out)
}

/// Moves a lapsed grant to `Expired`; returns what is still open.
fn settle(open: Option<&Request>, now: OffsetDateTime) -> (Option<Request>, Vec<Transition>) {
    match open {
        Some(req) if req.is_open() => match &req.state {
            State::Active(g) if g.expires_at <= now => {
                let details = json!({ "expires_at": rfc3339(g.expires_at) });
                let t = moved(
                    req.clone(),
                    State::Expired(g.clone()),
                    Actor::System,
                    Action::Expired,
                    details,
                    g.expires_at,
                );
                (None, vec![t])
            }
            _ => (Some(req.clone()), Vec::new()),
        },
        _ => (None, Vec::new()),
    }
}

fn new_pending(
    email: &Email,
    reason: Option<Reason>,
    by: Actor,
    now: OffsetDateTime,
) -> Transition {
    let details = reason
        .as_ref()
        .map_or_else(|| json!({}), |r| json!({ "reason": r.as_str() }));
    let request = Request {
        id: RequestId::new(),
        email: email.clone(),
        reason,
        requested_at: now,
        requested_by: by.clone(),
        state: State::Pending,
    };
    let event = AuditEvent {
        at: now,
        actor: by,
        action: Action::Requested,
        subject: email.clone(),
        request_id: request.id,
        details,
    };
    Transition { request, event }
}

fn moved(
    mut request: Request,
    state: State,
    by: Actor,
    action: Action,
    details: serde_json::Value,
    at: OffsetDateTime,
) -> Transition {
    request.state = state;
    let event = AuditEvent {
        at,
        actor: by,
        action,
        subject: request.email.clone(),
        request_id: request.id,
        details,
    };
    Transition { request, event }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

mod seen;
#[cfg(test)]
mod tests;

pub use seen::{Change, Seen};
