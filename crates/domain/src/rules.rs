use std::num::NonZeroU8;

use serde_json::json;
use time::OffsetDateTime;

use crate::{
    Action, Actor, Approval, Ask, AuditEvent, DurationError, Email, ExtensionAsk, Grant,
    GrantDuration, RemoteEntry, Request, RequestId, ResourceName, State,
};

mod text;

pub use text::{Pattern, PatternError, Reason, ReasonError, ReasonRule, Ticket, TicketRule};

/// Why a move was refused. Each says what was wrong in words a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("{email} has no pending request or active access here")]
    NoOpenRequest { email: Email },
    #[error("{email} already has a pending request here (since {since})")]
    AlreadyPending { email: Email, since: OffsetDateTime },
    #[error("{email} already has access here until {until}")]
    AlreadyActive { email: Email, until: OffsetDateTime },
    #[error("you cannot approve your own request here; ask another approver")]
    SelfApproval,
    #[error("you already approved this; it needs {needed} approvals from different people")]
    AlreadyApproved { needed: u8 },
    #[error(transparent)]
    Duration(#[from] DurationError),
    #[error("this resource does not let requesters choose a duration; leave it empty")]
    DurationNotChoosable,
    #[error("{0}")]
    Reason(String),
    #[error("{0}")]
    Ticket(String),
    #[error("the start time is in the past; leave it empty to start on approval")]
    StartInPast,
    #[error("the start time is more than {days} days ahead; ask closer to the time")]
    StartTooFar { days: i64 },
    #[error("{}", too_many_extensions(email, *max))]
    TooManyExtensions { email: Email, max: u32 },
    #[error("{email} already asked to extend this access; wait for that answer")]
    ExtensionPending { email: Email },
    #[error("{email} has not asked to extend this access")]
    NoExtensionAsked { email: Email },
    /// The request acted on is not the one the page showed any more.
    #[error("the request from {email} changed since it was shown: {change}")]
    Changed { email: Email, change: Change },
}

fn too_many_extensions(email: &Email, max: u32) -> String {
    if max == 0 {
        format!(
            "this resource does not allow extensions; {email} can ask anew once this access ends"
        )
    } else {
        format!(
            "{email}'s access here was already extended {max} times, the most this resource \
             allows; ask anew once it ends"
        )
    }
}

/// One move of one request: its new state and the audit event recording it.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub request: Request,
    pub event: AuditEvent,
}

/// The lengths of grants on a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Durations {
    /// Used when neither the requester nor the approver chooses one.
    pub default: GrantDuration,
    /// The longest grant, and the longest single extension.
    pub max: GrantDuration,
    /// What the forms offer; each at most `max`.
    pub presets: Vec<GrantDuration>,
    /// Whether the requester may propose a duration (else only approvers choose).
    pub requester_chooses: bool,
}

/// The rules every move on one resource follows. Each method takes the
/// email's open request on the resource (pending or active; `None` if there
/// is none) and returns the moves to write, in order, or why the move is
/// refused. A grant past its expiry, or a pending request past its time to
/// live, is first closed, so decisions never act on lapsed state.
#[derive(Debug, Clone)]
pub struct Rules {
    /// The resource these rules belong to; new requests are made on it.
    pub resource: ResourceName,
    pub durations: Durations,
    pub reason: ReasonRule,
    /// `None`: the request form has no ticket field.
    pub ticket: Option<TicketRule>,
    /// Distinct approvers a request (or an extension) needs.
    pub approvals_needed: NonZeroU8,
    /// Whether someone may approve their own request (flagged in the trail).
    pub allow_self_approval: bool,
    /// How long a request may wait for a decision; `None`: until decided.
    pub pending_ttl: Option<GrantDuration>,
    /// How many times one grant may be extended.
    pub max_extensions: u32,
    /// Whether the holder extends without a new approval.
    pub self_extension: bool,
}

impl Default for Rules {
    /// The Go original: one hour, any admin approves, no reason required.
    fn default() -> Self {
        let minutes = |m| GrantDuration::from_minutes(m).expect("nonzero");
        Self {
            resource: ResourceName::default(),
            durations: Durations {
                default: GrantDuration::ONE_HOUR,
                max: minutes(24 * 60),
                presets: vec![minutes(30), GrantDuration::ONE_HOUR, minutes(4 * 60)],
                requester_chooses: false,
            },
            reason: ReasonRule::default(),
            ticket: None,
            approvals_needed: NonZeroU8::MIN,
            allow_self_approval: false,
            pending_ttl: None,
            max_extensions: 0,
            self_extension: false,
        }
    }
}

/// The furthest ahead a start may be scheduled.
const MAX_START_DAYS: i64 = 90;

impl Rules {
    /// A user asks for access. Asking again while pending or holding access
    /// is refused rather than replacing the entry (the Go original revoked the
    /// caller's own grant here).
    pub fn request(
        &self,
        open: Option<&Request>,
        email: &Email,
        ask: impl Into<Ask>,
        now: OffsetDateTime,
    ) -> Result<Vec<Transition>, DomainError> {
        let ask = ask.into();
        let (open, mut out) = self.settle(open, now);
        refuse_if_open(open.as_ref(), email, now)?;
        self.check_ask(&ask, now)?;
        out.push(new_pending(
            &self.resource,
            email,
            ask,
            Actor::User(email.clone()),
            now,
        ));
        Ok(out)
    }

    /// An approver grants access to someone who has not asked, with a
    /// reason: a request made on their behalf, carrying this approver's
    /// approval. A resource needing more approvals leaves it pending.
    pub fn grant(
        &self,
        open: Option<&Request>,
        email: &Email,
        by: &Email,
        ask: Ask,
        now: OffsetDateTime,
    ) -> Result<Vec<Transition>, DomainError> {
        let (open, mut out) = self.settle(open, now);
        refuse_if_open(open.as_ref(), email, now)?;
        if ask.reason.is_none() {
            return Err(DomainError::Reason(
                "say why you grant this access: the reason is kept in the audit trail".into(),
            ));
        }
        // The duration is this approver's choice, checked by `approve`
        // below, not a requester's proposal.
        self.check_ask(
            &Ask {
                duration: None,
                ..ask.clone()
            },
            now,
        )?;
        let duration = ask.duration;
        let mut asked = new_pending(&self.resource, email, ask, Actor::User(by.clone()), now);
        asked.event.details["on_behalf_of"] = json!(email.as_str());
        let pending = asked.request.clone();
        out.push(asked);
        out.extend(self.approve(Some(&pending), email, by, duration, now)?);
        Ok(out)
    }

    /// Approves the email's pending request, once an approval is recorded
    /// from as many distinct approvers as the resource needs; until then the
    /// approval is recorded (`Reviewed`) and the request stays pending. The
    /// duration is the completing approver's choice, else the requester's,
    /// else the resource's default.
    pub fn approve(
        &self,
        open: Option<&Request>,
        email: &Email,
        by: &Email,
        duration: Option<GrantDuration>,
        now: OffsetDateTime,
    ) -> Result<Vec<Transition>, DomainError> {
        if let Some(d) = duration {
            self.check_duration(d)?;
        }
        let (open, mut out) = self.settle(open, now);
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
        let mut details = self.check_approver(&req, by)?;
        let mut req = req;
        req.approvals.push(Approval {
            by: by.clone(),
            at: now,
        });
        let actor = Actor::User(by.clone());
        if !self.has_enough(&req.approvals) {
            details["approvals"] = json!(req.approvals.len());
            details["needed"] = json!(self.approvals_needed.get());
            let state = req.state.clone();
            out.push(moved(req, state, actor, Action::Reviewed, details, now));
            return Ok(out);
        }
        let duration = duration
            .or(req.ask.duration)
            .unwrap_or(self.durations.default);
        out.push(self.activate(req, actor, duration, details, now));
        Ok(out)
    }

    /// Approves a pending request at once under the auto-approve rule named
    /// `rule`, which the requester met; recorded with the rule's name.
    pub fn auto_approve(&self, pending: &Request, rule: &str, now: OffsetDateTime) -> Transition {
        let duration = pending.ask.duration.unwrap_or(self.durations.default);
        let details = json!({ "rule": rule });
        self.activate(pending.clone(), Actor::System, duration, details, now)
    }

    /// An approver rejects a pending request or revokes active access, with
    /// an optional comment for the requester: the Go original's
    /// `revoke-access` did both, and so does this.
    pub fn revoke(
        &self,
        open: Option<&Request>,
        email: &Email,
        by: &Email,
        comment: Option<Reason>,
        now: OffsetDateTime,
    ) -> Result<Vec<Transition>, DomainError> {
        self.revoke_as(open, email, Actor::User(by.clone()), comment, now)
    }

    /// [`Rules::revoke`] by any actor: an operator at the command line.
    pub fn revoke_as(
        &self,
        open: Option<&Request>,
        email: &Email,
        by: Actor,
        comment: Option<Reason>,
        now: OffsetDateTime,
    ) -> Result<Vec<Transition>, DomainError> {
        let (open, mut out) = self.settle(open, now);
        out.extend(end(open, email, by, EndKind::ByApprover(comment), now)?);
        Ok(out)
    }

    /// Break-glass: an operator grants access for `duration` at once,
    /// without approvals: the email's pending request is approved, or one
    /// is made on their behalf. The reason is required and the resource's
    /// reason and ticket rules apply, as does its longest grant. The grant's
    /// event carries `"break_glass": true`, which notifications look for.
    pub fn break_glass(
        &self,
        open: Option<&Request>,
        email: &Email,
        by: Actor,
        ask: Ask,
        duration: GrantDuration,
        now: OffsetDateTime,
    ) -> Result<Vec<Transition>, DomainError> {
        self.check_duration(duration)?;
        let Some(reason) = ask.reason.clone() else {
            return Err(DomainError::Reason(
                "say why you break the glass: the reason is kept in the audit trail".into(),
            ));
        };
        self.check_ask(
            &Ask {
                duration: None,
                starts_at: None,
                ..ask.clone()
            },
            now,
        )?;
        let (open, mut out) = self.settle(open, now);
        let pending = match open {
            Some(Request {
                state: State::Active(g),
                ..
            }) => {
                return Err(DomainError::AlreadyActive {
                    email: email.clone(),
                    until: g.expires_at,
                });
            }
            Some(pending) => pending,
            None => {
                let mut asked = new_pending(&self.resource, email, ask.clone(), by.clone(), now);
                asked.event.details["on_behalf_of"] = json!(email.as_str());
                let pending = asked.request.clone();
                out.push(asked);
                pending
            }
        };
        let mut details = json!({ "break_glass": true, "reason": reason.as_str() });
        if let Some(t) = &ask.ticket {
            details["ticket"] = json!(t.as_str());
        }
        out.push(self.activate(pending, by, duration, details, now));
        Ok(out)
    }

    /// The requester withdraws a pending request or gives up access early.
    pub fn cancel(
        &self,
        open: Option<&Request>,
        email: &Email,
        now: OffsetDateTime,
    ) -> Result<Vec<Transition>, DomainError> {
        let (open, mut out) = self.settle(open, now);
        out.extend(end(
            open,
            email,
            Actor::User(email.clone()),
            EndKind::BySelf,
            now,
        )?);
        Ok(out)
    }

    /// The holder of active access asks for `duration` more. Extended at
    /// once where the resource allows self-extension; otherwise the ask
    /// waits for approvers like a request does.
    pub fn extend(
        &self,
        open: Option<&Request>,
        email: &Email,
        duration: GrantDuration,
        reason: Option<Reason>,
        now: OffsetDateTime,
    ) -> Result<Vec<Transition>, DomainError> {
        self.check_duration(duration)?;
        self.reason.check(reason.as_ref())?;
        let (open, mut out) = self.settle(open, now);
        let req = match open {
            Some(
                req @ Request {
                    state: State::Active(_),
                    ..
                },
            ) => req,
            _ => {
                return Err(DomainError::NoOpenRequest {
                    email: email.clone(),
                });
            }
        };
        if req.extension.is_some() {
            return Err(DomainError::ExtensionPending {
                email: email.clone(),
            });
        }
        if req.extensions >= self.max_extensions {
            return Err(DomainError::TooManyExtensions {
                email: email.clone(),
                max: self.max_extensions,
            });
        }
        let me = Actor::User(email.clone());
        let mut details = json!({ "duration": duration.to_string() });
        if let Some(r) = &reason {
            details["reason"] = json!(r.as_str());
        }
        if self.self_extension {
            details["self_extended"] = json!(true);
            out.push(extended(req, me, duration, details, now));
            return Ok(out);
        }
        let mut req = req;
        req.extension = Some(Box::new(ExtensionAsk {
            duration,
            reason,
            asked_at: now,
        }));
        req.approvals.clear();
        let state = req.state.clone();
        out.push(moved(
            req,
            state,
            me,
            Action::ExtensionRequested,
            details,
            now,
        ));
        Ok(out)
    }

    /// An approver approves an asked extension; like a request, it takes
    /// effect once enough distinct approvers have approved.
    pub fn approve_extension(
        &self,
        open: Option<&Request>,
        email: &Email,
        by: &Email,
        now: OffsetDateTime,
    ) -> Result<Vec<Transition>, DomainError> {
        let (open, mut out) = self.settle(open, now);
        let (mut req, ask) = asked_extension(open, email)?;
        let mut details = self.check_approver(&req, by)?;
        req.approvals.push(Approval {
            by: by.clone(),
            at: now,
        });
        let actor = Actor::User(by.clone());
        details["extension"] = json!(true);
        if !self.has_enough(&req.approvals) {
            details["approvals"] = json!(req.approvals.len());
            details["needed"] = json!(self.approvals_needed.get());
            let state = req.state.clone();
            out.push(moved(req, state, actor, Action::Reviewed, details, now));
            return Ok(out);
        }
        details["duration"] = json!(ask.duration.to_string());
        out.push(extended(req, actor, ask.duration, details, now));
        Ok(out)
    }

    /// An approver declines an asked extension; the access runs on to its
    /// current expiry.
    pub fn reject_extension(
        &self,
        open: Option<&Request>,
        email: &Email,
        by: &Email,
        comment: Option<Reason>,
        now: OffsetDateTime,
    ) -> Result<Vec<Transition>, DomainError> {
        let (open, mut out) = self.settle(open, now);
        let (mut req, _) = asked_extension(open, email)?;
        req.extension = None;
        req.approvals.clear();
        let details = comment_details(comment.as_ref());
        req.comment = comment;
        let state = req.state.clone();
        out.push(moved(
            req,
            state,
            Actor::User(by.clone()),
            Action::ExtensionRejected,
            details,
            now,
        ));
        Ok(out)
    }

    /// The schedule's sweep: closes a lapsed grant or a pending request past
    /// its time to live, otherwise nothing.
    pub fn expire(&self, open: Option<&Request>, now: OffsetDateTime) -> Vec<Transition> {
        self.settle(open, now).1
    }

    /// When `request` is next due to be closed by [`Rules::expire`].
    pub fn deadline(&self, request: &Request) -> Option<OffsetDateTime> {
        match &request.state {
            State::Pending => self
                .pending_ttl
                .map(|ttl| request.requested_at + ttl.as_duration()),
            State::Active(g) => Some(g.expires_at),
            _ => None,
        }
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
            self.settle(open, now)
        };
        let zero = Actor::Zero;
        let adopted = json!({ "source": "pomerium-zero" });
        let fresh = |by: Actor| new_pending(&self.resource, email, Ask::default(), by, now);
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
                out.extend(
                    end(Some(req), email, zero, EndKind::ByApprover(None), now).unwrap_or_default(),
                );
            }
            (None, Some(RemoteEntry::Pending)) => out.push(fresh(zero)),
            // `settle` only returns open requests, so this one is active.
            (Some(req), Some(RemoteEntry::Pending)) => {
                out.extend(
                    end(
                        Some(req),
                        email,
                        zero.clone(),
                        EndKind::ByApprover(None),
                        now,
                    )
                    .unwrap_or_default(),
                );
                out.push(fresh(zero));
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
                        let t = fresh(zero.clone());
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
                let mut req = req;
                if action == Action::Approved {
                    // Zero decided; approvals gathered toward it are moot.
                    req.approvals.clear();
                }
                let t = moved(req, State::Active(grant), zero, action, details, now);
                let lapsed = self.settle(Some(&t.request), now).1;
                out.push(t);
                out.extend(lapsed);
            }
        }
        out
    }

    /// Moves a lapsed grant to `Expired` and a pending request past its time
    /// to live to `Cancelled` by the system; returns what is still open.
    pub(crate) fn settle(
        &self,
        open: Option<&Request>,
        now: OffsetDateTime,
    ) -> (Option<Request>, Vec<Transition>) {
        let Some(req) = open.filter(|r| r.is_open()) else {
            return (None, Vec::new());
        };
        let Some(due) = self.deadline(req).filter(|due| *due <= now) else {
            return (Some(req.clone()), Vec::new());
        };
        let mut closed = req.clone();
        closed.extension = None;
        closed.approvals.clear();
        let t = match &req.state {
            State::Active(g) => moved(
                closed,
                State::Expired(g.clone()),
                Actor::System,
                Action::Expired,
                json!({ "expires_at": rfc3339(g.expires_at) }),
                due,
            ),
            _ => moved(
                closed,
                State::Cancelled {
                    by: Actor::System,
                    at: due,
                },
                Actor::System,
                Action::TimedOut,
                json!({ "pending_ttl": self.pending_ttl.map(|t| t.to_string()) }),
                due,
            ),
        };
        (None, vec![t])
    }

    fn check_duration(&self, d: GrantDuration) -> Result<(), DomainError> {
        if d > self.durations.max {
            return Err(DurationError::TooLong {
                max: self.durations.max,
            }
            .into());
        }
        Ok(())
    }

    fn check_ask(&self, ask: &Ask, now: OffsetDateTime) -> Result<(), DomainError> {
        self.reason.check(ask.reason.as_ref())?;
        match &self.ticket {
            Some(rule) => rule.check(ask.ticket.as_ref())?,
            None if ask.ticket.is_some() => {
                return Err(DomainError::Ticket(
                    "this resource takes no ticket; leave it empty".into(),
                ));
            }
            None => {}
        }
        if let Some(d) = ask.duration {
            if !self.durations.requester_chooses {
                return Err(DomainError::DurationNotChoosable);
            }
            self.check_duration(d)?;
        }
        if let Some(start) = ask.starts_at {
            // A minute's grace for the time it took to fill the form.
            if start < now - time::Duration::MINUTE {
                return Err(DomainError::StartInPast);
            }
            if start > now + time::Duration::days(MAX_START_DAYS) {
                return Err(DomainError::StartTooFar {
                    days: MAX_START_DAYS,
                });
            }
        }
        Ok(())
    }

    /// Refuses a second approval by the same person and, unless allowed,
    /// the requester's own; returns the details to record.
    fn check_approver(&self, req: &Request, by: &Email) -> Result<serde_json::Value, DomainError> {
        if req.approvals.iter().any(|a| &a.by == by) {
            return Err(DomainError::AlreadyApproved {
                needed: self.approvals_needed.get(),
            });
        }
        let mut details = json!({});
        if &req.email == by {
            if !self.allow_self_approval {
                return Err(DomainError::SelfApproval);
            }
            details["self_approved"] = json!(true);
        }
        Ok(details)
    }

    fn has_enough(&self, approvals: &[Approval]) -> bool {
        approvals.len() >= usize::from(self.approvals_needed.get())
    }

    /// Grants a pending request for `duration`, from its scheduled start if
    /// that is still ahead.
    fn activate(
        &self,
        mut req: Request,
        by: Actor,
        duration: GrantDuration,
        mut details: serde_json::Value,
        now: OffsetDateTime,
    ) -> Transition {
        let starts_at = req.ask.starts_at.filter(|s| *s > now).map(whole_seconds);
        let from = starts_at.unwrap_or(now);
        let grant = Grant {
            approved_by: by.clone(),
            approved_at: now,
            starts_at,
            // Whole seconds: the policy's RFC 3339 dates carry no fraction,
            // so the store and the policy agree exactly.
            expires_at: whole_seconds(from + duration.as_duration()),
        };
        details["expires_at"] = json!(rfc3339(grant.expires_at));
        details["duration"] = json!(duration.to_string());
        if let Some(s) = starts_at {
            details["starts_at"] = json!(rfc3339(s));
        }
        if req.approvals.len() > 1 {
            details["approvers"] = json!(
                req.approvals
                    .iter()
                    .map(|a| a.by.as_str())
                    .collect::<Vec<_>>()
            );
        }
        req.comment = None;
        moved(
            req,
            State::Active(grant),
            by,
            Action::Approved,
            details,
            now,
        )
    }
}

fn refuse_if_open(
    open: Option<&Request>,
    email: &Email,
    now: OffsetDateTime,
) -> Result<(), DomainError> {
    match open.map(|r| (&r.state, r)) {
        Some((State::Pending, r)) => Err(DomainError::AlreadyPending {
            email: email.clone(),
            since: if r.requested_at > now {
                now
            } else {
                r.requested_at
            },
        }),
        Some((State::Active(g), _)) => Err(DomainError::AlreadyActive {
            email: email.clone(),
            until: g.expires_at,
        }),
        _ => Ok(()),
    }
}

/// The open request's asked extension, or why there is none.
fn asked_extension(
    open: Option<Request>,
    email: &Email,
) -> Result<(Request, ExtensionAsk), DomainError> {
    match open {
        Some(
            req @ Request {
                state: State::Active(_),
                ..
            },
        ) => match req.extension.clone() {
            Some(ask) => Ok((req, *ask)),
            None => Err(DomainError::NoExtensionAsked {
                email: email.clone(),
            }),
        },
        _ => Err(DomainError::NoOpenRequest {
            email: email.clone(),
        }),
    }
}

/// Moves the expiry `duration` later and counts the extension.
fn extended(
    mut req: Request,
    by: Actor,
    duration: GrantDuration,
    mut details: serde_json::Value,
    now: OffsetDateTime,
) -> Transition {
    let State::Active(mut grant) = req.state.clone() else {
        unreachable!("only active access is extended");
    };
    grant.expires_at = whole_seconds(grant.expires_at + duration.as_duration());
    details["expires_at"] = json!(rfc3339(grant.expires_at));
    req.extension = None;
    req.approvals.clear();
    req.extensions += 1;
    moved(
        req,
        State::Active(grant),
        by,
        Action::Extended,
        details,
        now,
    )
}

enum EndKind {
    ByApprover(Option<Reason>),
    BySelf,
}

/// Ends `open` (already settled).
fn end(
    open: Option<Request>,
    email: &Email,
    by: Actor,
    kind: EndKind,
    now: OffsetDateTime,
) -> Result<Vec<Transition>, DomainError> {
    let Some(mut req) = open else {
        return Err(DomainError::NoOpenRequest {
            email: email.clone(),
        });
    };
    let (state, action) = match (&req.state, &kind) {
        (State::Pending, EndKind::ByApprover(_)) => (
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
                grant: Box::new(g.clone()),
                by: by.clone(),
                at: now,
            },
            match kind {
                EndKind::ByApprover(_) => Action::Revoked,
                EndKind::BySelf => Action::GaveBack,
            },
        ),
        _ => {
            return Err(DomainError::NoOpenRequest {
                email: email.clone(),
            });
        }
    };
    let comment = match kind {
        EndKind::ByApprover(c) => c,
        EndKind::BySelf => None,
    };
    let details = comment_details(comment.as_ref());
    req.comment = comment;
    req.extension = None;
    req.approvals.clear();
    Ok(vec![moved(req, state, by, action, details, now)])
}

fn comment_details(comment: Option<&Reason>) -> serde_json::Value {
    comment.map_or_else(|| json!({}), |c| json!({ "comment": c.as_str() }))
}

fn new_pending(
    resource: &ResourceName,
    email: &Email,
    ask: Ask,
    by: Actor,
    now: OffsetDateTime,
) -> Transition {
    let mut details = json!({});
    if let Some(r) = &ask.reason {
        details["reason"] = json!(r.as_str());
    }
    if let Some(d) = ask.duration {
        details["duration"] = json!(d.to_string());
    }
    if let Some(s) = ask.starts_at {
        details["starts_at"] = json!(rfc3339(s));
    }
    if let Some(t) = &ask.ticket {
        details["ticket"] = json!(t.as_str());
    }
    let request = Request {
        id: RequestId::new(),
        resource: resource.clone(),
        email: email.clone(),
        ask,
        requested_at: now,
        requested_by: by.clone(),
        state: State::Pending,
        approvals: Vec::new(),
        extension: None,
        extensions: 0,
        comment: None,
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

fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod model_tests;
mod seen;
#[cfg(test)]
mod tests;

pub use seen::{Change, Seen};
