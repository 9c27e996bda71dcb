//! Who hears what: pure functions from a notice to its audience.
//!
//! - Approvers hear of new pending requests and extension asks (asked to
//!   decide), of another approver's decision on them (reviewed, approved,
//!   rejected, extended, extension declined), of a withdrawn request, of
//!   auto-approvals, and of anything done in the Pomerium Zero console.
//! - Requesters hear of decisions on their requests (approved, rejected,
//!   revoked with its comment, extended, extension declined, timed out,
//!   expired, changed in the console) and that their access ends soon.
//! - A break-glass grant (an operator's `cli:` grant, or details marking
//!   `break_glass`) is told to every approver, loudly.
//!
//! Nobody is mailed about what they did themselves.

use jit_domain::{Action, Actor, Approvers, AuditEvent, Email, Request, Resource, State};
use jit_store::Notice;

/// Who is told about one notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Audience {
    pub requester: bool,
    pub approvers: bool,
    /// Told loudly (a break-glass grant).
    pub loud: bool,
    /// The approvers are asked to decide.
    pub ask: Option<Ask>,
}

/// What approvers are asked to decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    Request,
    Extension,
}

impl Audience {
    pub fn is_empty(&self) -> bool {
        !self.requester && !self.approvers
    }
}

/// Whether `event` marks a break-glass grant: its details say so, or an
/// operator granted access from the command line, past the approvers.
pub fn is_break_glass(event: &AuditEvent) -> bool {
    event.details.get("break_glass") == Some(&serde_json::Value::Bool(true))
        || (by_operator(&event.actor) && event.action == Action::Approved)
}

/// An operator at the command line (`cli:NAME` in the trail).
fn by_operator(actor: &Actor) -> bool {
    actor.to_string().starts_with("cli:")
}

/// Who hears of `notice`. `now` is the request as it stands at expansion:
/// an ask already decided (auto-approved in the same commit, or answered
/// before the notifier got to it) is not put to approvers any more; its
/// decision is told instead.
pub fn audience(notice: &Notice, now: Option<&Request>) -> Audience {
    let event = match notice {
        Notice::ExpirySoon { .. } => {
            return Audience {
                requester: true,
                ..Audience::default()
            };
        }
        Notice::Event { event, .. } => event,
    };
    let both = Audience {
        requester: true,
        approvers: true,
        ..Audience::default()
    };
    let requester = Audience {
        requester: true,
        ..Audience::default()
    };
    let approvers = Audience {
        approvers: true,
        ..Audience::default()
    };
    if is_break_glass(event) {
        return Audience { loud: true, ..both };
    }
    match event.action {
        Action::Requested => {
            if now.is_some_and(|r| r.state == State::Pending) {
                Audience {
                    ask: Some(Ask::Request),
                    ..approvers
                }
            } else {
                Audience::default()
            }
        }
        Action::ExtensionRequested => {
            if now.is_some_and(|r| r.extension.is_some()) {
                Audience {
                    ask: Some(Ask::Extension),
                    ..approvers
                }
            } else {
                Audience::default()
            }
        }
        Action::Reviewed | Action::Cancelled => approvers,
        Action::Approved | Action::Rejected | Action::Extended | Action::ExtensionRejected => both,
        // Done outside the app's pages: the approvers should know too.
        Action::Revoked | Action::Modified
            if event.actor == Actor::Zero || by_operator(&event.actor) =>
        {
            both
        }
        Action::Revoked | Action::Modified | Action::Expired | Action::TimedOut => requester,
        Action::GaveBack | Action::Sealed => Audience::default(),
    }
}

/// The emails a resource's approvers are reached at: its listed emails
/// (groups have no address), or the admins' for [`Approvers::Admins`].
pub fn approver_emails(resource: &Resource, admins: &[Email]) -> Vec<Email> {
    match &resource.approvers {
        Approvers::Admins => admins.to_vec(),
        Approvers::Listed { emails, .. } => emails.iter().cloned().collect(),
    }
}

/// The people to mail about a notice with `audience` on `request`, sorted,
/// each once, without whoever acted (`actor`) unless it is loud.
pub fn recipients(
    audience: &Audience,
    request: &Request,
    approvers: &[Email],
    actor: Option<&Actor>,
) -> Vec<Email> {
    let mut out = Vec::new();
    if audience.requester {
        out.push(request.email.clone());
    }
    if audience.approvers {
        out.extend(approvers.iter().cloned());
    }
    if !audience.loud
        && let Some(Actor::User(me)) = actor
    {
        out.retain(|e| e != me);
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use jit_domain::{GrantDuration, Rules};
    use time::macros::datetime;

    fn email(s: &str) -> Email {
        Email::parse(s).unwrap()
    }

    const T0: time::OffsetDateTime = datetime!(2026-11-30 12:00 UTC);

    /// Alice's request, approved by carol if `approve`, with its events.
    fn flow(approve: bool) -> Vec<(AuditEvent, Request)> {
        let rules = Rules::default();
        let alice = email("alice@x.test");
        let mut out = Vec::new();
        let t = rules.request(None, &alice, None, T0).unwrap();
        let pending = t.last().unwrap().request.clone();
        out.extend(t.into_iter().map(|t| (t.event, t.request)));
        if approve {
            let d = GrantDuration::from_minutes(60).unwrap();
            let t = rules
                .approve(Some(&pending), &alice, &email("carol@x.test"), Some(d), T0)
                .unwrap();
            out.extend(t.into_iter().map(|t| (t.event, t.request)));
        }
        out
    }

    fn notice(event: &AuditEvent) -> Notice {
        Notice::Event {
            seq: 1,
            event: event.clone(),
        }
    }

    #[test]
    fn approvers_are_asked_about_pending_requests_only_while_pending() {
        let events = flow(true);
        let (requested, pending) = &events[0];
        let (_, active) = &events[1];
        let a = audience(&notice(requested), Some(pending));
        assert_eq!(a.ask, Some(Ask::Request));
        assert!(a.approvers && !a.requester);
        // Decided before the notifier expanded it (auto-approved in the same
        // commit): not asked; the approval is told instead.
        assert!(audience(&notice(requested), Some(active)).is_empty());
    }

    #[test]
    fn decisions_reach_the_requester_and_the_other_approvers() {
        let events = flow(true);
        let (approved, active) = &events[1];
        let a = audience(&notice(approved), Some(active));
        assert!(a.requester && a.approvers && !a.loud && a.ask.is_none());
        let approvers = [email("carol@x.test"), email("dave@x.test")];
        assert_eq!(
            recipients(&a, active, &approvers, Some(&approved.actor)),
            [email("alice@x.test"), email("dave@x.test")],
            "carol acted, so she is not told"
        );
    }

    #[test]
    fn each_action_has_its_audience() {
        let (event, request) = flow(false).remove(0);
        let of = |action: Action, actor: Actor| {
            audience(
                &notice(&AuditEvent {
                    action,
                    actor,
                    ..event.clone()
                }),
                Some(&request),
            )
        };
        let carol = Actor::User(email("carol@x.test"));
        let who = |a: Audience| (a.requester, a.approvers);
        assert_eq!(who(of(Action::Rejected, carol.clone())), (true, true));
        assert_eq!(who(of(Action::Revoked, carol.clone())), (true, false));
        assert_eq!(who(of(Action::Revoked, Actor::Zero)), (true, true));
        assert_eq!(who(of(Action::Expired, Actor::System)), (true, false));
        assert_eq!(who(of(Action::TimedOut, Actor::System)), (true, false));
        assert_eq!(who(of(Action::Reviewed, carol.clone())), (false, true));
        assert_eq!(who(of(Action::Cancelled, carol.clone())), (false, true));
        assert_eq!(who(of(Action::Extended, carol.clone())), (true, true));
        assert_eq!(who(of(Action::ExtensionRejected, carol)), (true, true));
        assert_eq!(who(of(Action::GaveBack, Actor::System)), (false, false));
        assert_eq!(who(of(Action::Sealed, Actor::System)), (false, false));
        // An extension ask is put to approvers only while it is open.
        assert!(of(Action::ExtensionRequested, Actor::System).is_empty());
        let expiry = audience(&Notice::ExpirySoon { expires_at: T0 }, Some(&request));
        assert_eq!(who(expiry), (true, false));
    }

    #[test]
    fn break_glass_is_told_to_every_approver_loudly() {
        let events = flow(true);
        let (approved, active) = &events[1];
        let mut marked = approved.clone();
        marked.details["break_glass"] = serde_json::json!(true);
        let a = audience(&notice(&marked), Some(active));
        assert!(a.loud && a.approvers && a.requester);
        let approvers = [email("carol@x.test"), email("dave@x.test")];
        assert_eq!(
            recipients(&a, active, &approvers, Some(&marked.actor)).len(),
            3,
            "loud: even the one who acted is told"
        );
        assert!(!is_break_glass(approved));
    }

    #[test]
    fn admins_are_the_approvers_of_resources_approved_by_admins() {
        let admins = [email("root@x.test")];
        let r = Resource::original("jit-example", Rules::default());
        assert_eq!(approver_emails(&r, &admins), admins);
        let listed = Resource {
            approvers: Approvers::Listed {
                emails: [email("dba@x.test")].into(),
                groups: ["dba".to_owned()].into(),
            },
            ..r
        };
        assert_eq!(approver_emails(&listed, &admins), [email("dba@x.test")]);
    }
}
