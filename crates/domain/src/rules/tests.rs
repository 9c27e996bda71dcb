use proptest::prelude::*;
use time::{Duration, OffsetDateTime, macros::datetime};

use super::*;
use crate::{Status, desired_entries};

const NOW: OffsetDateTime = datetime!(2026-11-28 12:00 UTC);

fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

fn last(ts: Vec<Transition>) -> Request {
    ts.last().expect("a transition").request.clone()
}

#[test]
fn the_whole_flow() {
    let rules = Rules::default();
    let (alice, admin) = (email("alice@x.test"), email("admin@x.test"));
    let reason = Reason::parse("deploy hotfix").unwrap();
    let ts = rules.request(None, &alice, reason, NOW).unwrap();
    assert_eq!(ts.len(), 1);
    assert_eq!(ts[0].event.action, Action::Requested);
    assert_eq!(ts[0].event.details["reason"], "deploy hotfix");
    let pending = last(ts);

    let ts = rules
        .approve(Some(&pending), &alice, &admin, None, NOW)
        .unwrap();
    let active = last(ts.clone());
    assert_eq!(ts[0].event.actor, Actor::User(admin.clone()));
    assert_eq!(
        active.state.grant().unwrap().expires_at,
        NOW + Duration::HOUR
    );
    assert!(active.grants_access_at(NOW + Duration::minutes(59)));
    assert!(!active.grants_access_at(NOW + Duration::HOUR));

    let ts = rules
        .revoke(
            Some(&active),
            &alice,
            &admin,
            None,
            NOW + Duration::minutes(5),
        )
        .unwrap();
    assert_eq!(last(ts).state.status(), Status::Revoked);
}

#[test]
fn requesting_again_never_downgrades() {
    let rules = Rules::default();
    let (alice, admin) = (email("alice@x.test"), email("admin@x.test"));
    let pending = last(rules.request(None, &alice, None, NOW).unwrap());
    assert!(matches!(
        rules.request(Some(&pending), &alice, None, NOW),
        Err(DomainError::AlreadyPending { .. })
    ));
    let active = last(
        rules
            .approve(Some(&pending), &alice, &admin, None, NOW)
            .unwrap(),
    );
    let err = rules.request(Some(&active), &alice, None, NOW).unwrap_err();
    assert_eq!(
        err,
        DomainError::AlreadyActive {
            email: alice.clone(),
            until: NOW + Duration::HOUR
        }
    );
    // Once lapsed, asking again first records the expiry, then the new request.
    let ts = rules
        .request(Some(&active), &alice, None, NOW + Duration::HOUR)
        .unwrap();
    let actions: Vec<_> = ts.iter().map(|t| t.event.action).collect();
    assert_eq!(actions, [Action::Expired, Action::Requested]);
    assert_ne!(ts[0].request.id, ts[1].request.id);
}

#[test]
fn approve_and_revoke_need_an_open_request() {
    let rules = Rules::default();
    let (alice, admin) = (email("alice@x.test"), email("admin@x.test"));
    assert_eq!(
        rules.approve(None, &alice, &admin, None, NOW).unwrap_err(),
        DomainError::NoOpenRequest {
            email: alice.clone()
        }
    );
    assert_eq!(
        rules.revoke(None, &alice, &admin, None, NOW).unwrap_err(),
        DomainError::NoOpenRequest {
            email: alice.clone()
        }
    );
    let pending = last(rules.request(None, &alice, None, NOW).unwrap());
    let active = last(
        rules
            .approve(Some(&pending), &alice, &admin, None, NOW)
            .unwrap(),
    );
    assert!(matches!(
        rules.approve(Some(&active), &alice, &admin, None, NOW),
        Err(DomainError::AlreadyActive { .. })
    ));
    // Revoking a lapsed grant is refused: it already ended.
    assert!(
        rules
            .revoke(Some(&active), &alice, &admin, None, NOW + Duration::HOUR)
            .is_err()
    );
}

#[test]
fn revoke_on_pending_rejects_and_cancel_withdraws() {
    let rules = Rules::default();
    let (alice, admin) = (email("alice@x.test"), email("admin@x.test"));
    let pending = last(rules.request(None, &alice, None, NOW).unwrap());
    let ts = rules
        .revoke(Some(&pending), &alice, &admin, None, NOW)
        .unwrap();
    assert_eq!(ts[0].event.action, Action::Rejected);
    let ts = rules.cancel(Some(&pending), &alice, NOW).unwrap();
    assert_eq!(ts[0].event.action, Action::Cancelled);
    assert_eq!(ts[0].event.actor, Actor::User(alice.clone()));
}

#[test]
fn giving_back_and_withdrawing_are_their_own_kinds() {
    let rules = Rules::default();
    let (alice, admin) = (email("alice@x.test"), email("admin@x.test"));
    let pending = last(rules.request(None, &alice, None, NOW).unwrap());
    let withdrawn = rules.cancel(Some(&pending), &alice, NOW).unwrap();
    assert_eq!(withdrawn[0].event.action, Action::Cancelled);
    assert_eq!(withdrawn[0].event.action.word(), "withdrew");
    let active = last(
        rules
            .approve(Some(&pending), &alice, &admin, None, NOW)
            .unwrap(),
    );
    let given = rules.cancel(Some(&active), &alice, NOW).unwrap();
    assert_eq!(given[0].event.action, Action::GaveBack);
    assert_eq!(given[0].event.action.word(), "gave back");
    assert_eq!(given[0].event.actor, Actor::User(alice.clone()));
    let revoked = rules
        .revoke(Some(&active), &alice, &admin, None, NOW)
        .unwrap();
    assert_eq!(revoked[0].event.action, Action::Revoked);
}

#[test]
fn self_approval_and_duration_limits() {
    let mut rules = Rules::default();
    let admin = email("admin@x.test");
    let pending = last(rules.request(None, &admin, None, NOW).unwrap());
    assert_eq!(
        rules
            .approve(Some(&pending), &admin, &admin, None, NOW)
            .unwrap_err(),
        DomainError::SelfApproval
    );
    rules.allow_self_approval = true;
    assert!(
        rules
            .approve(Some(&pending), &admin, &admin, None, NOW)
            .is_ok()
    );
    let too_long = "2d".parse().unwrap();
    assert!(matches!(
        rules.approve(Some(&pending), &admin, &admin, Some(too_long), NOW),
        Err(DomainError::Duration(DurationError::TooLong { .. }))
    ));
    let ts = rules
        .approve(
            Some(&pending),
            &admin,
            &admin,
            Some("15m".parse().unwrap()),
            NOW,
        )
        .unwrap();
    assert_eq!(
        last(ts).state.grant().unwrap().expires_at,
        NOW + Duration::minutes(15)
    );
}

#[test]
fn expire_only_when_due() {
    let rules = Rules::default();
    let (alice, admin) = (email("alice@x.test"), email("admin@x.test"));
    let pending = last(rules.request(None, &alice, None, NOW).unwrap());
    let active = last(
        rules
            .approve(Some(&pending), &alice, &admin, None, NOW)
            .unwrap(),
    );
    assert!(
        rules
            .expire(Some(&active), NOW + Duration::minutes(59))
            .is_empty()
    );
    let ts = rules.expire(Some(&active), NOW + Duration::hours(3));
    assert_eq!(ts.len(), 1);
    assert_eq!(ts[0].event.actor, Actor::System);
    assert_eq!(
        ts[0].event.at,
        NOW + Duration::HOUR,
        "recorded at the moment access ended"
    );
    assert!(
        rules
            .expire(Some(&pending), NOW + Duration::hours(3))
            .is_empty()
    );
}

#[test]
fn adopts_console_edits() {
    let rules = Rules::default();
    let alice = email("alice@x.test");
    let until = NOW + Duration::hours(2);
    let grant = RemoteEntry::Grant {
        starts_at: None,
        expires_at: until,
    };

    // A grant added in the console: requested and approved by Zero.
    let ts = rules.adopt(None, &alice, Some(grant), NOW);
    assert_eq!(
        ts.iter().map(|t| t.event.action).collect::<Vec<_>>(),
        [Action::Requested, Action::Approved]
    );
    assert!(ts.iter().all(|t| t.event.actor == Actor::Zero));
    let active = last(ts);
    assert_eq!(active.state.grant().unwrap().expires_at, until);

    // Nothing changed: nothing to do.
    assert!(
        rules
            .adopt(Some(&active), &alice, Some(grant), NOW)
            .is_empty()
    );

    // Expiry moved in the console.
    let later = RemoteEntry::Grant {
        starts_at: None,
        expires_at: until + Duration::HOUR,
    };
    let ts = rules.adopt(Some(&active), &alice, Some(later), NOW);
    assert_eq!(ts[0].event.action, Action::Modified);

    // Removed in the console.
    let ts = rules.adopt(Some(&active), &alice, None, NOW);
    assert_eq!(ts[0].event.action, Action::Revoked);
    assert_eq!(ts[0].event.actor, Actor::Zero);

    // An already-expired grant is imported as history.
    let old = RemoteEntry::Grant {
        starts_at: None,
        expires_at: NOW - Duration::HOUR,
    };
    let ts = rules.adopt(None, &alice, Some(old), NOW);
    assert_eq!(last(ts).state.status(), Status::Expired);

    // A pending entry added by hand.
    let ts = rules.adopt(None, &alice, Some(RemoteEntry::Pending), NOW);
    assert_eq!(last(ts).state, State::Pending);
}

#[test]
fn a_console_extension_seen_after_the_old_expiry_extends_the_grant() {
    let rules = Rules::default();
    let alice = email("alice@x.test");
    let old = RemoteEntry::Grant {
        starts_at: None,
        expires_at: NOW + Duration::minutes(1),
    };
    let active = last(rules.adopt(None, &alice, Some(old), NOW));
    let extended = RemoteEntry::Grant {
        starts_at: None,
        expires_at: NOW + Duration::HOUR,
    };
    // Seen two minutes later, past the old expiry.
    let ts = rules.adopt(
        Some(&active),
        &alice,
        Some(extended),
        NOW + Duration::minutes(2),
    );
    assert_eq!(
        ts.iter().map(|t| t.event.action).collect::<Vec<_>>(),
        [Action::Modified],
        "not expired and granted anew"
    );
    assert_eq!(
        last(ts).state.grant().unwrap().expires_at,
        NOW + Duration::HOUR
    );
}

#[test]
fn desired_leaves_out_ended_and_lapsed() {
    let rules = Rules::default();
    let (a, b, c, admin) = (
        email("a@x.test"),
        email("b@x.test"),
        email("c@x.test"),
        email("admin@x.test"),
    );
    let pa = last(rules.request(None, &a, None, NOW).unwrap());
    let pb = last(
        rules
            .request(None, &b, None, NOW + Duration::SECOND)
            .unwrap(),
    );
    let ab = last(rules.approve(Some(&pb), &b, &admin, None, NOW).unwrap());
    let pc = last(
        rules
            .request(None, &c, None, NOW + Duration::seconds(2))
            .unwrap(),
    );
    let rc = last(rules.revoke(Some(&pc), &c, &admin, None, NOW).unwrap());
    let want = vec![
        (a.clone(), RemoteEntry::Pending),
        (
            b.clone(),
            RemoteEntry::Grant {
                starts_at: None,
                expires_at: NOW + Duration::HOUR,
            },
        ),
    ];
    assert_eq!(desired_entries([&rc, &ab, &pa], NOW), want);
    assert_eq!(
        desired_entries([&rc, &ab, &pa], NOW + Duration::HOUR),
        vec![(a, RemoteEntry::Pending)]
    );
}

#[derive(Debug, Clone)]
enum Cmd {
    Request(usize),
    Approve(usize, u32),
    Revoke(usize),
    Cancel(usize),
    Expire(usize),
    Adopt(usize, Option<bool>),
    Tick(u32),
}

fn cmd() -> impl Strategy<Value = Cmd> {
    prop_oneof![
        (0..3usize).prop_map(Cmd::Request),
        (0..3usize, 1u32..180).prop_map(|(i, m)| Cmd::Approve(i, m)),
        (0..3usize).prop_map(Cmd::Revoke),
        (0..3usize).prop_map(Cmd::Cancel),
        (0..3usize).prop_map(Cmd::Expire),
        (0..3usize, proptest::option::of(any::<bool>())).prop_map(|(i, e)| Cmd::Adopt(i, e)),
        (1u32..120).prop_map(Cmd::Tick),
    ]
}

fn allowed(from: Option<Status>, to: Status) -> bool {
    use Status::*;
    match from {
        None => to == Pending,
        Some(Pending) => matches!(to, Active | Rejected | Cancelled),
        Some(Active) => matches!(to, Active | Expired | Revoked),
        Some(_) => false,
    }
}

proptest! {
    /// Any sequence of commands keeps the machine on its edges: at most one
    /// open request per email, one audit event per move about that request,
    /// and the desired policy never holds a lapsed or ended entry.
    #[test]
    fn state_machine_holds(cmds in proptest::collection::vec(cmd(), 1..60)) {
        let rules = Rules::default();
        let people = [email("a@x.test"), email("b@x.test"), email("c@x.test")];
        let admin = email("admin@x.test");
        let mut open: [Option<Request>; 3] = Default::default();
        let mut now = NOW;
        for c in cmds {
            let (i, result) = match c {
                Cmd::Tick(m) => { now += Duration::minutes(i64::from(m)); continue; }
                Cmd::Request(i) => (i, rules.request(open[i].as_ref(), &people[i], None, now)),
                Cmd::Approve(i, m) => (i, rules.approve(open[i].as_ref(), &people[i], &admin, Some(GrantDuration::from_minutes(m).unwrap()), now)),
                Cmd::Revoke(i) => (i, rules.revoke(open[i].as_ref(), &people[i], &admin, None, now)),
                Cmd::Cancel(i) => (i, rules.cancel(open[i].as_ref(), &people[i], now)),
                Cmd::Expire(i) => (i, Ok(rules.expire(open[i].as_ref(), now))),
                Cmd::Adopt(i, e) => {
                    let remote = e.map(|g| if g { RemoteEntry::Grant { starts_at: None, expires_at: now + Duration::minutes(30) } } else { RemoteEntry::Pending });
                    (i, Ok(rules.adopt(open[i].as_ref(), &people[i], remote, now)))
                }
            };
            let Ok(ts) = result else { continue };
            for t in ts {
                prop_assert_eq!(&t.event.subject, &people[i]);
                prop_assert_eq!(t.event.request_id, t.request.id);
                let from = open[i].as_ref().filter(|r| r.id == t.request.id).map(|r| r.state.status());
                prop_assert!(allowed(from, t.request.state.status()), "{:?} -> {:?}", from, t.request.state.status());
                if from.is_none() {
                    prop_assert!(open[i].is_none(), "a second open request was created");
                }
                open[i] = t.request.is_open().then_some(t.request);
            }
            for (e, entry) in desired_entries(open.iter().flatten(), now) {
                if let RemoteEntry::Grant { expires_at, .. } = entry {
                    prop_assert!(expires_at > now, "lapsed grant of {} rendered", e);
                }
            }
        }
    }
}

// ---- The resource rules: asks, N-of-M approvals, starts, extensions, time to live.

fn mins(m: u32) -> GrantDuration {
    GrantDuration::from_minutes(m).unwrap()
}

fn reason(s: &str) -> Option<Reason> {
    Reason::parse(s).unwrap()
}

fn actions(ts: &[Transition]) -> Vec<Action> {
    ts.iter().map(|t| t.event.action).collect()
}

fn needing(n: u8) -> Rules {
    Rules {
        approvals_needed: NonZeroU8::new(n).unwrap(),
        ..Rules::default()
    }
}

fn expires(r: &Request) -> OffsetDateTime {
    r.state.grant().expect("a grant").expires_at
}

/// Alice's request under `rules`, approved by `approvers` in turn at `NOW`.
fn active_for(rules: &Rules, approvers: &[&Email]) -> Request {
    let alice = email("alice@x.test");
    let mut r = last(rules.request(None, &alice, None, NOW).unwrap());
    for by in approvers {
        r = last(rules.approve(Some(&r), &alice, by, None, NOW).unwrap());
    }
    assert_eq!(r.state.status(), Status::Active);
    r
}

#[test]
fn the_reason_rule_applies_to_requests() {
    let rules = Rules {
        reason: ReasonRule {
            required: true,
            min_chars: 10,
            pattern: Some(Pattern::new("INC-[0-9]+: .*").unwrap()),
            hint: Some("name the incident, like `INC-12: …`".into()),
        },
        ..Rules::default()
    };
    let alice = email("alice@x.test");
    let refused = |r: Option<Reason>| match rules.request(None, &alice, r, NOW) {
        Err(DomainError::Reason(m)) => m,
        other => panic!("{other:?}"),
    };
    assert!(refused(None).contains("required"));
    assert!(refused(reason("INC-1")).contains("at least 10"));
    assert!(refused(reason("the db is down")).contains("name the incident"));
    let ts = rules
        .request(None, &alice, reason("INC-7: db is down"), NOW)
        .unwrap();
    assert_eq!(ts[0].event.details["reason"], "INC-7: db is down");
    assert_eq!(ts[0].request.reason(), reason("INC-7: db is down").as_ref());
}

#[test]
fn the_ticket_rule_applies_to_requests() {
    let alice = email("alice@x.test");
    let ticket = |s: &str| Ask {
        ticket: Ticket::parse(s).unwrap(),
        ..Ask::default()
    };
    // No ticket field: a ticket is refused, not silently dropped.
    let none = Rules::default();
    assert!(matches!(
        none.request(None, &alice, ticket("CHG1234"), NOW),
        Err(DomainError::Ticket(m)) if m.contains("takes no ticket")
    ));
    assert!(none.request(None, &alice, ticket(""), NOW).is_ok());

    let rules = Rules {
        ticket: Some(TicketRule {
            label: "Change ticket".into(),
            required: true,
            pattern: Some(Pattern::new("CHG[0-9]{4}").unwrap()),
        }),
        ..Rules::default()
    };
    assert!(matches!(
        rules.request(None, &alice, Ask::default(), NOW),
        Err(DomainError::Ticket(m)) if m.contains("Change ticket") && m.contains("required")
    ));
    assert!(matches!(
        rules.request(None, &alice, ticket("CHG12"), NOW),
        Err(DomainError::Ticket(m)) if m.contains("CHG[0-9]{4}")
    ));
    let ts = rules.request(None, &alice, ticket("CHG1234"), NOW).unwrap();
    assert_eq!(ts[0].event.details["ticket"], "CHG1234");
    assert_eq!(ts[0].request.ask.ticket, Ticket::parse("CHG1234").unwrap());
}

#[test]
fn requesters_choose_a_duration_only_where_allowed() {
    let alice = email("alice@x.test");
    let asking = |d: GrantDuration| Ask {
        duration: Some(d),
        ..Ask::default()
    };
    let mut rules = Rules::default();
    assert_eq!(
        rules.request(None, &alice, asking(mins(30)), NOW),
        Err(DomainError::DurationNotChoosable)
    );
    rules.durations.requester_chooses = true;
    assert_eq!(
        rules.request(None, &alice, asking(mins(24 * 60 + 1)), NOW),
        Err(DomainError::Duration(DurationError::TooLong {
            max: mins(24 * 60)
        }))
    );
    let ts = rules
        .request(None, &alice, asking(mins(24 * 60)), NOW)
        .unwrap();
    assert_eq!(ts[0].event.details["duration"], "1d");
    assert_eq!(ts[0].request.ask.duration, Some(mins(24 * 60)));
}

#[test]
fn a_start_is_at_most_a_minute_past_and_90_days_ahead() {
    let rules = Rules::default();
    let alice = email("alice@x.test");
    let starting = |at: OffsetDateTime| Ask {
        starts_at: Some(at),
        ..Ask::default()
    };
    let ask = |at| rules.request(None, &alice, starting(at), NOW);
    assert!(ask(NOW - Duration::seconds(60)).is_ok(), "a minute's grace");
    assert_eq!(
        ask(NOW - Duration::seconds(61)),
        Err(DomainError::StartInPast)
    );
    assert!(ask(NOW + Duration::days(90)).is_ok());
    assert_eq!(
        ask(NOW + Duration::days(90) + Duration::SECOND),
        Err(DomainError::StartTooFar { days: 90 })
    );
    let ts = ask(NOW + Duration::hours(2)).unwrap();
    assert_eq!(ts[0].event.details["starts_at"], "2026-11-28T14:00:00Z");
}

#[test]
fn n_distinct_approvers_approve() {
    let rules = needing(3);
    let (alice, b, c, d) = (
        email("alice@x.test"),
        email("b@x.test"),
        email("c@x.test"),
        email("d@x.test"),
    );
    let pending = last(rules.request(None, &alice, None, NOW).unwrap());
    let ts = rules
        .approve(Some(&pending), &alice, &b, None, NOW)
        .unwrap();
    assert_eq!(actions(&ts), [Action::Reviewed]);
    assert_eq!(ts[0].event.actor, Actor::User(b.clone()));
    assert_eq!(ts[0].event.request_id, pending.id);
    assert_eq!(ts[0].event.details["approvals"], 1);
    assert_eq!(ts[0].event.details["needed"], 3);
    let once = last(ts);
    assert_eq!(once.state, State::Pending);
    assert_eq!(
        once.approvals,
        [Approval {
            by: b.clone(),
            at: NOW
        }]
    );

    assert_eq!(
        rules.approve(Some(&once), &alice, &b, None, NOW),
        Err(DomainError::AlreadyApproved { needed: 3 })
    );
    let twice = last(rules.approve(Some(&once), &alice, &c, None, NOW).unwrap());
    assert_eq!(twice.state, State::Pending);
    assert_eq!(twice.approvals.len(), 2);

    let ts = rules
        .approve(Some(&twice), &alice, &d, None, NOW + Duration::MINUTE)
        .unwrap();
    assert_eq!(actions(&ts), [Action::Approved]);
    assert_eq!(ts[0].event.actor, Actor::User(d.clone()));
    assert_eq!(
        ts[0].event.details["approvers"],
        serde_json::json!(["b@x.test", "c@x.test", "d@x.test"])
    );
    let active = last(ts);
    let grant = active.state.grant().unwrap();
    assert_eq!(grant.approved_by, Actor::User(d));
    assert_eq!(grant.approved_at, NOW + Duration::MINUTE);
    assert_eq!(grant.expires_at, NOW + Duration::MINUTE + Duration::HOUR);

    // One approver is enough by default, and the trail names no list then.
    let ts = Rules::default()
        .approve(Some(&pending), &alice, &b, None, NOW)
        .unwrap();
    assert_eq!(actions(&ts), [Action::Approved]);
    assert!(ts[0].event.details.get("approvers").is_none());
}

#[test]
fn self_approval_is_refused_unless_allowed_and_then_flagged() {
    let mut rules = needing(2);
    let (alice, b) = (email("alice@x.test"), email("b@x.test"));
    let pending = last(rules.request(None, &alice, None, NOW).unwrap());
    assert_eq!(
        rules.approve(Some(&pending), &alice, &alice, None, NOW),
        Err(DomainError::SelfApproval)
    );
    let reviewed = last(
        rules
            .approve(Some(&pending), &alice, &b, None, NOW)
            .unwrap(),
    );
    assert_eq!(
        rules.approve(Some(&reviewed), &alice, &alice, None, NOW),
        Err(DomainError::SelfApproval),
        "not even as the last of several"
    );

    rules.allow_self_approval = true;
    let ts = rules
        .approve(Some(&pending), &alice, &alice, None, NOW)
        .unwrap();
    assert_eq!(actions(&ts), [Action::Reviewed]);
    assert_eq!(ts[0].event.details["self_approved"], true);
    let ts = rules
        .approve(Some(&reviewed), &alice, &alice, None, NOW)
        .unwrap();
    assert_eq!(actions(&ts), [Action::Approved]);
    assert_eq!(ts[0].event.details["self_approved"], true);
    assert_eq!(
        ts[0].event.details["approvers"],
        serde_json::json!(["b@x.test", "alice@x.test"])
    );
    // Others' approvals are not flagged.
    let ts = rules
        .approve(Some(&pending), &alice, &b, None, NOW)
        .unwrap();
    assert!(ts[0].event.details.get("self_approved").is_none());
}

#[test]
fn the_completing_approver_chooses_the_duration_else_the_ask_else_the_default() {
    let mut rules = needing(2);
    rules.durations.requester_chooses = true;
    let (alice, b, c) = (email("alice@x.test"), email("b@x.test"), email("c@x.test"));
    let asked = Ask {
        duration: Some(mins(120)),
        ..Ask::default()
    };
    let pending = last(rules.request(None, &alice, asked, NOW).unwrap());
    // The first approver's choice does not carry over.
    let reviewed = last(
        rules
            .approve(Some(&pending), &alice, &b, Some(mins(30)), NOW)
            .unwrap(),
    );
    let by_ask = last(
        rules
            .approve(Some(&reviewed), &alice, &c, None, NOW)
            .unwrap(),
    );
    assert_eq!(expires(&by_ask), NOW + Duration::hours(2));
    let ts = rules
        .approve(Some(&reviewed), &alice, &c, Some(mins(15)), NOW)
        .unwrap();
    assert_eq!(ts[0].event.details["duration"], "15m");
    assert_eq!(expires(&last(ts)), NOW + Duration::minutes(15));
    assert_eq!(
        rules.approve(Some(&reviewed), &alice, &c, Some(mins(24 * 60 + 1)), NOW),
        Err(DomainError::Duration(DurationError::TooLong {
            max: mins(24 * 60)
        }))
    );

    let plain = last(rules.request(None, &alice, None, NOW).unwrap());
    let reviewed = last(rules.approve(Some(&plain), &alice, &b, None, NOW).unwrap());
    let by_default = last(
        rules
            .approve(Some(&reviewed), &alice, &c, None, NOW)
            .unwrap(),
    );
    assert_eq!(expires(&by_default), NOW + Duration::HOUR);
}

#[test]
fn a_scheduled_start_still_ahead_starts_the_grant() {
    let mut rules = Rules::default();
    rules.durations.requester_chooses = true;
    let (alice, admin) = (email("alice@x.test"), email("admin@x.test"));
    let start = NOW + Duration::hours(2);
    let ask = Ask {
        starts_at: Some(start),
        duration: Some(mins(30)),
        ..Ask::default()
    };
    let pending = last(rules.request(None, &alice, ask, NOW).unwrap());
    let at = NOW + Duration::minutes(10);
    let ts = rules
        .approve(Some(&pending), &alice, &admin, None, at)
        .unwrap();
    assert_eq!(ts[0].event.details["starts_at"], "2026-11-28T14:00:00Z");
    assert_eq!(ts[0].event.details["expires_at"], "2026-11-28T14:30:00Z");
    let active = last(ts);
    let grant = active.state.grant().unwrap().clone();
    assert_eq!(grant.starts_at, Some(start));
    assert_eq!(grant.expires_at, start + Duration::minutes(30));
    assert!(!active.grants_access_at(at));
    assert!(active.grants_access_at(start));
    assert_eq!(rules.deadline(&active), Some(start + Duration::minutes(30)));
    assert_eq!(
        desired_entries([&active], at),
        vec![(
            alice.clone(),
            RemoteEntry::Grant {
                starts_at: Some(start),
                expires_at: start + Duration::minutes(30)
            }
        )]
    );

    // Approved after the asked start: access starts on approval.
    let late = start + Duration::minutes(5);
    let active = last(
        rules
            .approve(Some(&pending), &alice, &admin, None, late)
            .unwrap(),
    );
    let grant = active.state.grant().unwrap();
    assert_eq!(grant.starts_at, None);
    assert_eq!(grant.expires_at, late + Duration::minutes(30));
}

#[test]
fn a_scheduled_grant_is_in_whole_seconds() {
    let rules = Rules::default();
    let (alice, admin) = (email("alice@x.test"), email("admin@x.test"));
    let start = NOW + Duration::hours(1) + Duration::milliseconds(400);
    let ask = Ask {
        starts_at: Some(start),
        ..Ask::default()
    };
    let pending = last(rules.request(None, &alice, ask, NOW).unwrap());
    let active = last(
        rules
            .approve(Some(&pending), &alice, &admin, None, NOW)
            .unwrap(),
    );
    let grant = active.state.grant().unwrap();
    assert_eq!(grant.starts_at, Some(NOW + Duration::hours(1)));
    assert_eq!(grant.expires_at, NOW + Duration::hours(2));
}

#[test]
fn auto_approval_is_by_the_system_under_the_rules_name() {
    let mut rules = needing(2);
    rules.durations.requester_chooses = true;
    let alice = email("alice@x.test");
    let pending = last(rules.request(None, &alice, None, NOW).unwrap());
    let t = rules.auto_approve(&pending, "on-call", NOW);
    assert_eq!(t.event.action, Action::Approved);
    assert_eq!(t.event.actor, Actor::System);
    assert_eq!(t.event.request_id, pending.id);
    assert_eq!(t.event.details["rule"], "on-call");
    let grant = t.request.state.grant().unwrap();
    assert_eq!(grant.approved_by, Actor::System);
    assert_eq!(grant.expires_at, NOW + Duration::HOUR);

    let asked = Ask {
        duration: Some(mins(20)),
        ..Ask::default()
    };
    let pending = last(rules.request(None, &alice, asked, NOW).unwrap());
    let t = rules.auto_approve(&pending, "on-call", NOW);
    assert_eq!(expires(&t.request), NOW + Duration::minutes(20));
}

#[test]
fn an_approver_grants_on_behalf_with_a_reason() {
    let rules = Rules::default();
    let (alice, admin) = (email("alice@x.test"), email("admin@x.test"));
    assert!(matches!(
        rules.grant(None, &alice, &admin, Ask::default(), NOW),
        Err(DomainError::Reason(m)) if m.contains("why you grant")
    ));
    let ask = Ask {
        reason: reason("on call tonight"),
        ..Ask::default()
    };
    let ts = rules.grant(None, &alice, &admin, ask.clone(), NOW).unwrap();
    assert_eq!(actions(&ts), [Action::Requested, Action::Approved]);
    assert_eq!(ts[0].event.actor, Actor::User(admin.clone()));
    assert_eq!(ts[0].event.subject, alice);
    assert_eq!(ts[0].event.details["on_behalf_of"], "alice@x.test");
    assert_eq!(ts[0].event.details["reason"], "on call tonight");
    assert_eq!(ts[0].event.request_id, ts[1].event.request_id);
    assert_eq!(ts[1].event.actor, Actor::User(admin.clone()));
    let active = last(ts);
    assert_eq!(active.requested_by, Actor::User(admin.clone()));
    assert_eq!(active.email, alice);
    assert_eq!(expires(&active), NOW + Duration::HOUR);
    assert!(matches!(
        rules.grant(Some(&active), &alice, &admin, ask.clone(), NOW),
        Err(DomainError::AlreadyActive { .. })
    ));
    // Granting oneself is self-approval.
    assert_eq!(
        rules.grant(None, &admin, &admin, ask, NOW),
        Err(DomainError::SelfApproval)
    );
}

#[test]
fn a_grant_on_behalf_counts_as_one_approval() {
    let rules = needing(2);
    let (alice, admin, b) = (
        email("alice@x.test"),
        email("admin@x.test"),
        email("b@x.test"),
    );
    let ask = Ask {
        reason: reason("on call tonight"),
        ..Ask::default()
    };
    let ts = rules.grant(None, &alice, &admin, ask, NOW).unwrap();
    assert_eq!(actions(&ts), [Action::Requested, Action::Reviewed]);
    let pending = last(ts);
    assert_eq!(pending.state, State::Pending);
    assert_eq!(pending.approvals.len(), 1);
    assert_eq!(
        rules.approve(Some(&pending), &alice, &admin, None, NOW),
        Err(DomainError::AlreadyApproved { needed: 2 })
    );
    let ts = rules
        .approve(Some(&pending), &alice, &b, None, NOW)
        .unwrap();
    assert_eq!(actions(&ts), [Action::Approved]);
    assert_eq!(
        ts[0].event.details["approvers"],
        serde_json::json!(["admin@x.test", "b@x.test"])
    );
}

/// The approver granting chooses the length, as when approving, even where
/// requesters may not propose one.
#[test]
fn an_approver_granting_on_behalf_chooses_the_duration() {
    let rules = Rules::default();
    assert!(!rules.durations.requester_chooses);
    let (alice, admin) = (email("alice@x.test"), email("admin@x.test"));
    let ask = |d| Ask {
        reason: reason("on call tonight"),
        duration: Some(d),
        ..Ask::default()
    };
    let ts = rules
        .grant(None, &alice, &admin, ask(mins(30)), NOW)
        .unwrap();
    assert_eq!(expires(&last(ts)), NOW + Duration::minutes(30));
    assert_eq!(
        rules.grant(None, &alice, &admin, ask(mins(24 * 60 + 1)), NOW),
        Err(DomainError::Duration(DurationError::TooLong {
            max: mins(24 * 60)
        }))
    );
}

#[test]
fn rejections_and_revocations_keep_the_comment() {
    let rules = Rules::default();
    let (alice, admin) = (email("alice@x.test"), email("admin@x.test"));
    let pending = last(rules.request(None, &alice, None, NOW).unwrap());
    let ts = rules
        .revoke(Some(&pending), &alice, &admin, reason("ask Bob"), NOW)
        .unwrap();
    assert_eq!(actions(&ts), [Action::Rejected]);
    assert_eq!(ts[0].event.details["comment"], "ask Bob");
    assert_eq!(ts[0].request.comment, reason("ask Bob"));
    assert_eq!(
        ts[0].request.state,
        State::Rejected {
            by: Actor::User(admin.clone()),
            at: NOW
        }
    );

    let active = active_for(&rules, &[&admin]);
    let at = NOW + Duration::minutes(5);
    let ts = rules
        .revoke(Some(&active), &alice, &admin, reason("incident closed"), at)
        .unwrap();
    assert_eq!(actions(&ts), [Action::Revoked]);
    assert_eq!(ts[0].event.details["comment"], "incident closed");
    assert_eq!(ts[0].request.comment, reason("incident closed"));
    assert!(matches!(&ts[0].request.state, State::Revoked { at: a, .. } if *a == at));

    // Without a comment the details say nothing of one.
    let ts = rules
        .revoke(Some(&active), &alice, &admin, None, at)
        .unwrap();
    assert_eq!(ts[0].event.details, serde_json::json!({}));
    assert_eq!(ts[0].request.comment, None);
}

#[test]
fn only_active_access_is_extended_and_at_most_max_times() {
    let mut rules = Rules {
        self_extension: true,
        ..Rules::default()
    };
    let (alice, admin) = (email("alice@x.test"), email("admin@x.test"));
    assert_eq!(
        rules.extend(None, &alice, mins(30), None, NOW),
        Err(DomainError::NoOpenRequest {
            email: alice.clone()
        })
    );
    let pending = last(rules.request(None, &alice, None, NOW).unwrap());
    assert_eq!(
        rules.extend(Some(&pending), &alice, mins(30), None, NOW),
        Err(DomainError::NoOpenRequest {
            email: alice.clone()
        })
    );
    let active = active_for(&rules, &[&admin]);
    assert_eq!(
        rules.extend(Some(&active), &alice, mins(30), None, NOW),
        Err(DomainError::TooManyExtensions {
            email: alice.clone(),
            max: 0
        })
    );
    rules.max_extensions = 1;
    assert_eq!(
        rules.extend(Some(&active), &alice, mins(24 * 60 + 1), None, NOW),
        Err(DomainError::Duration(DurationError::TooLong {
            max: mins(24 * 60)
        }))
    );
    let ts = rules
        .extend(Some(&active), &alice, mins(30), reason("still on it"), NOW)
        .unwrap();
    assert_eq!(actions(&ts), [Action::Extended]);
    assert_eq!(ts[0].event.actor, Actor::User(alice.clone()));
    assert_eq!(ts[0].event.details["self_extended"], true);
    assert_eq!(ts[0].event.details["reason"], "still on it");
    assert_eq!(ts[0].event.details["duration"], "30m");
    let once = last(ts);
    assert_eq!(expires(&once), NOW + Duration::minutes(90));
    assert_eq!(once.extensions, 1);
    assert_eq!(once.extension, None);
    assert_eq!(
        rules.extend(Some(&once), &alice, mins(30), None, NOW),
        Err(DomainError::TooManyExtensions {
            email: alice.clone(),
            max: 1
        })
    );
    // A lapsed grant is not extended.
    assert_eq!(
        rules.extend(Some(&active), &alice, mins(30), None, NOW + Duration::HOUR),
        Err(DomainError::NoOpenRequest { email: alice })
    );
}

#[test]
fn an_extension_reason_follows_the_reason_rule() {
    let rules = Rules {
        self_extension: true,
        max_extensions: 1,
        reason: ReasonRule {
            required: true,
            ..ReasonRule::default()
        },
        ..Rules::default()
    };
    let (alice, admin) = (email("alice@x.test"), email("admin@x.test"));
    let pending = last(rules.request(None, &alice, reason("deploy"), NOW).unwrap());
    let active = last(
        rules
            .approve(Some(&pending), &alice, &admin, None, NOW)
            .unwrap(),
    );
    assert!(matches!(
        rules.extend(Some(&active), &alice, mins(30), None, NOW),
        Err(DomainError::Reason(_))
    ));
}

#[test]
fn an_asked_extension_needs_n_distinct_approvers() {
    let rules = Rules {
        max_extensions: 2,
        ..needing(2)
    };
    let (alice, b, c) = (email("alice@x.test"), email("b@x.test"), email("c@x.test"));
    let active = active_for(&rules, &[&b, &c]);
    assert_eq!(
        rules.approve_extension(Some(&active), &alice, &b, NOW),
        Err(DomainError::NoExtensionAsked {
            email: alice.clone()
        })
    );
    let at = NOW + Duration::minutes(10);
    let ts = rules
        .extend(Some(&active), &alice, mins(45), reason("not done"), at)
        .unwrap();
    assert_eq!(actions(&ts), [Action::ExtensionRequested]);
    assert_eq!(ts[0].event.actor, Actor::User(alice.clone()));
    assert_eq!(ts[0].event.details["duration"], "45m");
    let asked = last(ts);
    assert_eq!(expires(&asked), NOW + Duration::HOUR, "not extended yet");
    assert_eq!(
        asked.extension.as_deref(),
        Some(&ExtensionAsk {
            duration: mins(45),
            reason: reason("not done"),
            asked_at: at
        })
    );
    assert!(
        asked.approvals.is_empty(),
        "the request's approvals do not count"
    );
    assert_eq!(
        rules.extend(Some(&asked), &alice, mins(45), None, at),
        Err(DomainError::ExtensionPending {
            email: alice.clone()
        })
    );

    let ts = rules
        .approve_extension(Some(&asked), &alice, &b, at)
        .unwrap();
    assert_eq!(actions(&ts), [Action::Reviewed]);
    assert_eq!(ts[0].event.details["extension"], true);
    assert_eq!(ts[0].event.details["approvals"], 1);
    let reviewed = last(ts);
    assert_eq!(expires(&reviewed), NOW + Duration::HOUR);
    assert_eq!(
        rules.approve_extension(Some(&reviewed), &alice, &b, at),
        Err(DomainError::AlreadyApproved { needed: 2 })
    );
    assert_eq!(
        rules.approve_extension(Some(&reviewed), &alice, &alice, at),
        Err(DomainError::SelfApproval)
    );
    let ts = rules
        .approve_extension(Some(&reviewed), &alice, &c, at)
        .unwrap();
    assert_eq!(actions(&ts), [Action::Extended]);
    assert_eq!(ts[0].event.actor, Actor::User(c.clone()));
    assert_eq!(ts[0].event.details["duration"], "45m");
    let extended = last(ts);
    assert_eq!(expires(&extended), NOW + Duration::minutes(105));
    assert_eq!(extended.extensions, 1);
    assert_eq!(extended.extension, None);
    assert!(extended.approvals.is_empty());
    assert_eq!(
        rules.deadline(&extended),
        Some(NOW + Duration::minutes(105))
    );
}

#[test]
fn a_rejected_extension_keeps_the_grant() {
    let rules = Rules {
        max_extensions: 1,
        ..needing(2)
    };
    let (alice, b, c) = (email("alice@x.test"), email("b@x.test"), email("c@x.test"));
    let active = active_for(&rules, &[&b, &c]);
    assert_eq!(
        rules.reject_extension(Some(&active), &alice, &b, None, NOW),
        Err(DomainError::NoExtensionAsked {
            email: alice.clone()
        })
    );
    let asked = last(
        rules
            .extend(Some(&active), &alice, mins(30), None, NOW)
            .unwrap(),
    );
    let reviewed = last(
        rules
            .approve_extension(Some(&asked), &alice, &b, NOW)
            .unwrap(),
    );
    let ts = rules
        .reject_extension(Some(&reviewed), &alice, &c, reason("wrap up"), NOW)
        .unwrap();
    assert_eq!(actions(&ts), [Action::ExtensionRejected]);
    assert_eq!(ts[0].event.actor, Actor::User(c.clone()));
    assert_eq!(ts[0].event.details["comment"], "wrap up");
    let rejected = last(ts);
    assert_eq!(rejected.state, active.state, "the grant runs on as it was");
    assert_eq!(rejected.extension, None);
    assert!(rejected.approvals.is_empty());
    assert_eq!(rejected.extensions, 0);
    assert_eq!(rejected.comment, reason("wrap up"));
    // It may be asked again: a rejection does not use up an extension.
    assert!(
        rules
            .extend(Some(&rejected), &alice, mins(30), None, NOW)
            .is_ok()
    );
}

#[test]
fn a_pending_request_times_out_after_its_time_to_live() {
    let rules = Rules {
        pending_ttl: Some(mins(30)),
        ..needing(2)
    };
    let (alice, b) = (email("alice@x.test"), email("b@x.test"));
    let pending = last(rules.request(None, &alice, None, NOW).unwrap());
    let due = NOW + Duration::minutes(30);
    assert_eq!(rules.deadline(&pending), Some(due));
    assert!(
        rules
            .expire(Some(&pending), due - Duration::SECOND)
            .is_empty()
    );
    // Approvals so far do not keep it alive.
    let reviewed = last(
        rules
            .approve(Some(&pending), &alice, &b, None, NOW)
            .unwrap(),
    );
    let ts = rules.expire(Some(&reviewed), due + Duration::minutes(15));
    assert_eq!(actions(&ts), [Action::TimedOut]);
    assert_eq!(ts[0].event.actor, Actor::System);
    assert_eq!(ts[0].event.at, due, "recorded when it was due");
    assert_eq!(ts[0].event.details["pending_ttl"], "30m");
    let closed = last(ts);
    assert_eq!(
        closed.state,
        State::Cancelled {
            by: Actor::System,
            at: due
        }
    );
    assert!(closed.timed_out());
    assert!(closed.approvals.is_empty());
    assert_eq!(rules.deadline(&closed), None);
    assert!(rules.expire(Some(&closed), due + Duration::HOUR).is_empty());

    // Deciding after the deadline finds nothing open; asking anew records the timeout first.
    assert_eq!(
        rules.approve(Some(&reviewed), &alice, &email("c@x.test"), None, due),
        Err(DomainError::NoOpenRequest {
            email: alice.clone()
        })
    );
    let ts = rules.request(Some(&reviewed), &alice, None, due).unwrap();
    assert_eq!(actions(&ts), [Action::TimedOut, Action::Requested]);

    // A withdrawn request did not time out; one without a time to live waits.
    let withdrawn = last(rules.cancel(Some(&pending), &alice, NOW).unwrap());
    assert!(!withdrawn.timed_out());
    assert_eq!(Rules::default().deadline(&pending), None);
    assert!(
        Rules::default()
            .expire(Some(&pending), NOW + Duration::days(365))
            .is_empty()
    );
}

#[test]
fn deadlines_of_active_and_final_requests() {
    let rules = Rules {
        pending_ttl: Some(mins(30)),
        ..Rules::default()
    };
    let admin = email("admin@x.test");
    let active = active_for(&rules, &[&admin]);
    assert_eq!(rules.deadline(&active), Some(NOW + Duration::HOUR));
    let expired = last(rules.expire(Some(&active), NOW + Duration::days(1)));
    assert_eq!(expired.state.status(), Status::Expired);
    assert_eq!(rules.deadline(&expired), None);
}

#[test]
fn a_lapsed_grant_with_an_asked_extension_expires_cleanly() {
    let rules = Rules {
        max_extensions: 1,
        ..needing(2)
    };
    let (alice, b, c) = (email("alice@x.test"), email("b@x.test"), email("c@x.test"));
    let active = active_for(&rules, &[&b, &c]);
    let asked = last(
        rules
            .extend(Some(&active), &alice, mins(30), None, NOW)
            .unwrap(),
    );
    let reviewed = last(
        rules
            .approve_extension(Some(&asked), &alice, &b, NOW)
            .unwrap(),
    );
    let lapsed = NOW + Duration::hours(2);
    // Too late to approve: the grant already ended.
    assert_eq!(
        rules.approve_extension(Some(&reviewed), &alice, &c, lapsed),
        Err(DomainError::NoOpenRequest {
            email: alice.clone()
        })
    );
    let ts = rules.expire(Some(&reviewed), lapsed);
    assert_eq!(actions(&ts), [Action::Expired]);
    assert_eq!(ts[0].event.at, NOW + Duration::HOUR);
    let expired = last(ts);
    assert_eq!(expired.state.status(), Status::Expired);
    assert_eq!(expired.extension, None);
    assert!(expired.approvals.is_empty());
    assert_eq!(expires(&expired), NOW + Duration::HOUR);
    assert!(desired_entries([&expired], lapsed).is_empty());
}

fn operator() -> Actor {
    Actor::Cli(crate::Operator::parse("oncall").unwrap())
}

#[test]
fn break_glass_grants_at_once_without_approvals_and_says_so() {
    let rules = needing(2);
    let alice = email("alice@x.test");
    let ask = Ask {
        reason: reason("INC-9: db down"),
        ..Ask::default()
    };
    let ts = rules
        .break_glass(None, &alice, operator(), ask.clone(), mins(30), NOW)
        .unwrap();
    assert_eq!(actions(&ts), [Action::Requested, Action::Approved]);
    assert!(ts.iter().all(|t| t.event.actor == operator()));
    assert_eq!(ts[0].event.details["on_behalf_of"], "alice@x.test");
    let granted = &ts[1].event.details;
    assert_eq!(granted["break_glass"], true);
    assert_eq!(granted["reason"], "INC-9: db down");
    let active = last(ts);
    assert_eq!(active.state.grant().unwrap().approved_by, operator());
    assert_eq!(expires(&active), NOW + Duration::minutes(30));

    // A pending request is approved as it is; active access is refused.
    let pending = last(rules.request(None, &alice, None, NOW).unwrap());
    let ts = rules
        .break_glass(
            Some(&pending),
            &alice,
            operator(),
            ask.clone(),
            mins(30),
            NOW,
        )
        .unwrap();
    assert_eq!(actions(&ts), [Action::Approved]);
    assert_eq!(ts[0].request.id, pending.id);
    assert!(matches!(
        rules.break_glass(Some(&active), &alice, operator(), ask, mins(30), NOW),
        Err(DomainError::AlreadyActive { .. })
    ));
}

#[test]
fn break_glass_needs_a_reason_and_keeps_the_resources_limits() {
    let rules = Rules::default();
    let alice = email("alice@x.test");
    let with = |reason: Option<Reason>, d: GrantDuration| {
        rules.break_glass(
            None,
            &alice,
            operator(),
            Ask {
                reason,
                ..Ask::default()
            },
            d,
            NOW,
        )
    };
    assert!(matches!(with(None, mins(30)), Err(DomainError::Reason(_))));
    assert!(matches!(
        with(reason("outage"), mins(25 * 60)),
        Err(DomainError::Duration(_))
    ));
    let ticketed = Ask {
        reason: reason("outage"),
        ticket: Ticket::parse("CHG1").unwrap(),
        ..Ask::default()
    };
    assert!(matches!(
        rules.break_glass(None, &alice, operator(), ticketed, mins(30), NOW),
        Err(DomainError::Ticket(_))
    ));
}

#[test]
fn an_operator_revokes_under_their_own_name() {
    let rules = Rules::default();
    let alice = email("alice@x.test");
    let active = active_for(&rules, &[&email("admin@x.test")]);
    let ts = rules
        .revoke_as(Some(&active), &alice, operator(), reason("left"), NOW)
        .unwrap();
    assert_eq!(ts[0].event.actor, operator());
    assert_eq!(ts[0].event.action, Action::Revoked);
    assert_eq!(ts[0].event.details["comment"], "left");
}
