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
        .revoke(Some(&active), &alice, &admin, None, NOW + Duration::minutes(5))
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
    let ts = rules.revoke(Some(&pending), &alice, &admin, None, NOW).unwrap();
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
    let revoked = rules.revoke(Some(&active), &alice, &admin, None, NOW).unwrap();
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
