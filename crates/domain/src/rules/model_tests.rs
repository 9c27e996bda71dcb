//! The approval and lifecycle rules against a small reference model: random
//! rules, random command sequences for a few people on one resource, and
//! after every command the rules must agree with the model (accepted or the
//! same refusal, the same moves, status, window, approvals and extensions)
//! and keep the invariants the rest of the app relies on.

use std::collections::BTreeSet;

use proptest::prelude::*;
use time::{Duration, OffsetDateTime, macros::datetime};

use super::*;
use crate::{Status, desired_entries};

const START: OffsetDateTime = datetime!(2026-11-28 12:00 UTC);
/// People 0..REQUESTERS ask for access; everyone (them included) may approve.
const REQUESTERS: usize = 2;
const PEOPLE: usize = 4;
const DEFAULT_MINUTES: u32 = 60;
const MAX_MINUTES: u32 = 240;

fn person(i: usize) -> Email {
    Email::parse(&format!("p{i}@x.test")).unwrap()
}

fn minutes(m: u32) -> Duration {
    Duration::minutes(i64::from(m))
}

#[derive(Debug, Clone)]
struct Config {
    needed: u8,
    allow_self_approval: bool,
    max_extensions: u32,
    self_extension: bool,
    pending_ttl: Option<u32>,
    requester_chooses: bool,
}

impl Config {
    fn rules(&self) -> Rules {
        let d = |m| GrantDuration::from_minutes(m).unwrap();
        Rules {
            durations: Durations {
                default: d(DEFAULT_MINUTES),
                max: d(MAX_MINUTES),
                presets: vec![d(DEFAULT_MINUTES)],
                requester_chooses: self.requester_chooses,
            },
            approvals_needed: NonZeroU8::new(self.needed).unwrap(),
            allow_self_approval: self.allow_self_approval,
            pending_ttl: self.pending_ttl.map(d),
            max_extensions: self.max_extensions,
            self_extension: self.self_extension,
            ..Rules::default()
        }
    }
}

fn config() -> impl Strategy<Value = Config> {
    (
        1u8..=3,
        any::<bool>(),
        0u32..=2,
        any::<bool>(),
        proptest::option::of(1u32..120),
        any::<bool>(),
    )
        .prop_map(
            |(needed, allow_self_approval, max_extensions, self_extension, pending_ttl, rc)| {
                Config {
                    needed,
                    allow_self_approval,
                    max_extensions,
                    self_extension,
                    pending_ttl,
                    requester_chooses: rc,
                }
            },
        )
}

#[derive(Debug, Clone)]
enum Cmd {
    /// `auto`: an auto-approve rule fires right after, as the service does.
    Request {
        who: usize,
        duration: Option<u32>,
        start_in: Option<u32>,
        auto: bool,
    },
    Grant {
        who: usize,
        by: usize,
        duration: Option<u32>,
    },
    Approve {
        who: usize,
        by: usize,
        duration: Option<u32>,
    },
    Revoke {
        who: usize,
        by: usize,
        comment: bool,
    },
    Cancel {
        who: usize,
    },
    Extend {
        who: usize,
        duration: u32,
    },
    ApproveExtension {
        who: usize,
        by: usize,
    },
    RejectExtension {
        who: usize,
        by: usize,
    },
    Expire {
        who: usize,
    },
    Tick(u32),
}

fn cmd() -> impl Strategy<Value = Cmd> {
    let who = || 0..REQUESTERS;
    let by = || 0..PEOPLE;
    // Mostly within the maximum of 240 minutes, sometimes beyond.
    let duration = || 1u32..260;
    prop_oneof![
        6 => (who(), proptest::option::of(duration()), proptest::option::of(0u32..120), proptest::bool::weighted(0.1))
            .prop_map(|(who, duration, start_in, auto)| Cmd::Request { who, duration, start_in, auto }),
        1 => (who(), by(), proptest::option::of(duration()))
            .prop_map(|(who, by, duration)| Cmd::Grant { who, by, duration }),
        8 => (who(), by(), proptest::option::of(duration()))
            .prop_map(|(who, by, duration)| Cmd::Approve { who, by, duration }),
        1 => (who(), by(), any::<bool>()).prop_map(|(who, by, comment)| Cmd::Revoke { who, by, comment }),
        1 => who().prop_map(|who| Cmd::Cancel { who }),
        4 => (who(), duration()).prop_map(|(who, duration)| Cmd::Extend { who, duration }),
        6 => (who(), by()).prop_map(|(who, by)| Cmd::ApproveExtension { who, by }),
        1 => (who(), by()).prop_map(|(who, by)| Cmd::RejectExtension { who, by }),
        1 => who().prop_map(|who| Cmd::Expire { who }),
        // Mostly short waits, so grants live through a few moves.
        3 => prop_oneof![4 => 1u32..20, 1 => 20u32..200].prop_map(Cmd::Tick),
    ]
}

/// One person's open request on the resource, as the model sees it.
#[derive(Debug, Clone, PartialEq)]
enum Model {
    None,
    Pending {
        at: OffsetDateTime,
        duration: Option<u32>,
        start: Option<OffsetDateTime>,
        approvers: BTreeSet<usize>,
    },
    Active {
        starts: Option<OffsetDateTime>,
        expires: OffsetDateTime,
        /// An asked extension: its minutes and who approved it so far.
        ext: Option<(u32, BTreeSet<usize>)>,
        used: u32,
    },
}

type Expected = Result<(Model, Vec<Action>), DomainError>;

impl Config {
    /// Closes what lapsed by `now`, as every move does first.
    fn settle(&self, m: &Model, now: OffsetDateTime) -> (Model, Vec<Action>) {
        match m {
            Model::Pending { at, .. }
                if self.pending_ttl.is_some_and(|t| *at + minutes(t) <= now) =>
            {
                (Model::None, vec![Action::TimedOut])
            }
            Model::Active { expires, .. } if *expires <= now => {
                (Model::None, vec![Action::Expired])
            }
            _ => (m.clone(), Vec::new()),
        }
    }

    fn too_long(&self, d: Option<u32>) -> Result<(), DomainError> {
        if d.is_some_and(|d| d > MAX_MINUTES) {
            return Err(DomainError::Duration(DurationError::TooLong {
                max: GrantDuration::from_minutes(MAX_MINUTES).unwrap(),
            }));
        }
        Ok(())
    }

    fn refuse_open(&self, m: &Model, email: &Email) -> Result<(), DomainError> {
        match m {
            Model::None => Ok(()),
            Model::Pending { at, .. } => Err(DomainError::AlreadyPending {
                email: email.clone(),
                since: *at,
            }),
            Model::Active { expires, .. } => Err(DomainError::AlreadyActive {
                email: email.clone(),
                until: *expires,
            }),
        }
    }

    fn check_approver(
        &self,
        approvers: &BTreeSet<usize>,
        who: usize,
        by: usize,
    ) -> Result<(), DomainError> {
        if approvers.contains(&by) {
            return Err(DomainError::AlreadyApproved {
                needed: self.needed,
            });
        }
        if who == by && !self.allow_self_approval {
            return Err(DomainError::SelfApproval);
        }
        Ok(())
    }

    fn enough(&self, approvers: &BTreeSet<usize>) -> bool {
        approvers.len() >= usize::from(self.needed)
    }

    fn activate(start: Option<OffsetDateTime>, d: u32, now: OffsetDateTime) -> Model {
        let starts = start.filter(|s| *s > now);
        Model::Active {
            starts,
            expires: starts.unwrap_or(now) + minutes(d),
            ext: None,
            used: 0,
        }
    }

    /// What the rules should answer to `cmd` on a person in state `m`.
    fn expect(&self, m: &Model, cmd: &Cmd, now: OffsetDateTime) -> Expected {
        let no_open = |who: usize| DomainError::NoOpenRequest { email: person(who) };
        match *cmd {
            Cmd::Tick(_) => unreachable!("not a move"),
            Cmd::Request {
                who,
                duration,
                start_in,
                auto,
            } => {
                let (m, mut out) = self.settle(m, now);
                self.refuse_open(&m, &person(who))?;
                if duration.is_some() && !self.requester_chooses {
                    return Err(DomainError::DurationNotChoosable);
                }
                self.too_long(duration)?;
                out.push(Action::Requested);
                let start = start_in.map(|s| now + minutes(s));
                if auto {
                    out.push(Action::Approved);
                    let d = duration.unwrap_or(DEFAULT_MINUTES);
                    return Ok((Self::activate(start, d, now), out));
                }
                let approvers = BTreeSet::new();
                Ok((
                    Model::Pending {
                        at: now,
                        duration,
                        start,
                        approvers,
                    },
                    out,
                ))
            }
            Cmd::Grant { who, by, duration } => {
                let (m, mut out) = self.settle(m, now);
                self.refuse_open(&m, &person(who))?;
                self.too_long(duration)?;
                self.check_approver(&BTreeSet::new(), who, by)?;
                let approvers = BTreeSet::from([by]);
                if self.enough(&approvers) {
                    out.extend([Action::Requested, Action::Approved]);
                    let d = duration.unwrap_or(DEFAULT_MINUTES);
                    return Ok((Self::activate(None, d, now), out));
                }
                out.extend([Action::Requested, Action::Reviewed]);
                Ok((
                    Model::Pending {
                        at: now,
                        duration,
                        start: None,
                        approvers,
                    },
                    out,
                ))
            }
            Cmd::Approve { who, by, duration } => {
                self.too_long(duration)?;
                let (m, mut out) = self.settle(m, now);
                let Model::Pending {
                    at,
                    duration: asked,
                    start,
                    mut approvers,
                } = m
                else {
                    self.refuse_open(&m, &person(who))?;
                    return Err(no_open(who));
                };
                self.check_approver(&approvers, who, by)?;
                approvers.insert(by);
                if self.enough(&approvers) {
                    out.push(Action::Approved);
                    let d = duration.or(asked).unwrap_or(DEFAULT_MINUTES);
                    return Ok((Self::activate(start, d, now), out));
                }
                out.push(Action::Reviewed);
                Ok((
                    Model::Pending {
                        at,
                        duration: asked,
                        start,
                        approvers,
                    },
                    out,
                ))
            }
            Cmd::Revoke { who, .. } | Cmd::Cancel { who } => {
                let (m, mut out) = self.settle(m, now);
                let by_approver = matches!(cmd, Cmd::Revoke { .. });
                out.push(match (m, by_approver) {
                    (Model::None, _) => return Err(no_open(who)),
                    (Model::Pending { .. }, true) => Action::Rejected,
                    (Model::Pending { .. }, false) => Action::Cancelled,
                    (Model::Active { .. }, true) => Action::Revoked,
                    (Model::Active { .. }, false) => Action::GaveBack,
                });
                Ok((Model::None, out))
            }
            Cmd::Extend { who, duration } => {
                self.too_long(Some(duration))?;
                let (m, mut out) = self.settle(m, now);
                let Model::Active {
                    starts,
                    expires,
                    ext,
                    used,
                } = m
                else {
                    return Err(no_open(who));
                };
                if ext.is_some() {
                    return Err(DomainError::ExtensionPending { email: person(who) });
                }
                if used >= self.max_extensions {
                    return Err(DomainError::TooManyExtensions {
                        email: person(who),
                        max: self.max_extensions,
                    });
                }
                if self.self_extension {
                    out.push(Action::Extended);
                    let m = Model::Active {
                        starts,
                        expires: expires + minutes(duration),
                        ext: None,
                        used: used + 1,
                    };
                    return Ok((m, out));
                }
                out.push(Action::ExtensionRequested);
                let m = Model::Active {
                    starts,
                    expires,
                    ext: Some((duration, BTreeSet::new())),
                    used,
                };
                Ok((m, out))
            }
            Cmd::ApproveExtension { who, by } | Cmd::RejectExtension { who, by } => {
                let (m, mut out) = self.settle(m, now);
                let Model::Active {
                    starts,
                    expires,
                    ext,
                    used,
                } = m
                else {
                    return Err(no_open(who));
                };
                let Some((d, mut approvers)) = ext else {
                    return Err(DomainError::NoExtensionAsked { email: person(who) });
                };
                let rejected = Model::Active {
                    starts,
                    expires,
                    ext: None,
                    used,
                };
                if matches!(cmd, Cmd::RejectExtension { .. }) {
                    out.push(Action::ExtensionRejected);
                    return Ok((rejected, out));
                }
                self.check_approver(&approvers, who, by)?;
                approvers.insert(by);
                if self.enough(&approvers) {
                    out.push(Action::Extended);
                    let m = Model::Active {
                        starts,
                        expires: expires + minutes(d),
                        ext: None,
                        used: used + 1,
                    };
                    return Ok((m, out));
                }
                out.push(Action::Reviewed);
                let m = Model::Active {
                    starts,
                    expires,
                    ext: Some((d, approvers)),
                    used,
                };
                Ok((m, out))
            }
            Cmd::Expire { .. } => {
                let (m, out) = self.settle(m, now);
                Ok((m, out))
            }
        }
    }
}

/// Runs `cmd` through the rules.
fn run(
    rules: &Rules,
    open: Option<&Request>,
    cmd: &Cmd,
    now: OffsetDateTime,
) -> Result<Vec<Transition>, DomainError> {
    let d = |m: u32| GrantDuration::from_minutes(m).unwrap();
    let because = || Reason::parse("on call").unwrap();
    match *cmd {
        Cmd::Tick(_) => unreachable!("not a move"),
        Cmd::Request {
            who,
            duration,
            start_in,
            auto,
        } => {
            let ask = Ask {
                duration: duration.map(d),
                starts_at: start_in.map(|s| now + minutes(s)),
                ..Ask::default()
            };
            let mut ts = rules.request(open, &person(who), ask, now)?;
            if auto {
                let pending = ts.last().unwrap().request.clone();
                ts.push(rules.auto_approve(&pending, "on-call", now));
            }
            Ok(ts)
        }
        Cmd::Grant { who, by, duration } => {
            let ask = Ask {
                reason: because(),
                duration: duration.map(d),
                ..Ask::default()
            };
            rules.grant(open, &person(who), &person(by), ask, now)
        }
        Cmd::Approve { who, by, duration } => {
            rules.approve(open, &person(who), &person(by), duration.map(d), now)
        }
        Cmd::Revoke { who, by, comment } => {
            let comment = comment.then(because).flatten();
            rules.revoke(open, &person(who), &person(by), comment, now)
        }
        Cmd::Cancel { who } => rules.cancel(open, &person(who), now),
        Cmd::Extend { who, duration } => rules.extend(open, &person(who), d(duration), None, now),
        Cmd::ApproveExtension { who, by } => {
            rules.approve_extension(open, &person(who), &person(by), now)
        }
        Cmd::RejectExtension { who, by } => {
            rules.reject_extension(open, &person(who), &person(by), None, now)
        }
        Cmd::Expire { .. } => Ok(rules.expire(open, now)),
    }
}

fn who(cmd: &Cmd) -> usize {
    match *cmd {
        Cmd::Tick(_) => unreachable!("not a move"),
        Cmd::Request { who, .. }
        | Cmd::Grant { who, .. }
        | Cmd::Approve { who, .. }
        | Cmd::Revoke { who, .. }
        | Cmd::Cancel { who }
        | Cmd::Extend { who, .. }
        | Cmd::ApproveExtension { who, .. }
        | Cmd::RejectExtension { who, .. }
        | Cmd::Expire { who } => who,
    }
}

fn allowed(from: Option<Status>, to: Status) -> bool {
    use Status::*;
    match from {
        None => to == Pending,
        Some(Pending) => matches!(to, Pending | Active | Rejected | Cancelled),
        Some(Active) => matches!(to, Active | Expired | Revoked),
        Some(_) => false,
    }
}

/// Whether the real request is what the model says.
fn agrees(cfg: &Config, m: &Model, real: Option<&Request>) -> Result<(), TestCaseError> {
    let emails = |set: &BTreeSet<usize>| set.iter().map(|i| person(*i)).collect::<BTreeSet<_>>();
    let approvers = |r: &Request| {
        r.approvals
            .iter()
            .map(|a| a.by.clone())
            .collect::<BTreeSet<_>>()
    };
    let rules = cfg.rules();
    match (m, real) {
        (Model::None, None) => {}
        (
            Model::Pending {
                at,
                duration,
                start,
                approvers: want,
            },
            Some(r),
        ) => {
            prop_assert_eq!(&r.state, &State::Pending);
            prop_assert_eq!(r.requested_at, *at);
            prop_assert_eq!(
                r.ask.duration.map(|d| d.whole_minutes()),
                duration.map(i64::from)
            );
            prop_assert_eq!(r.ask.starts_at, *start);
            prop_assert_eq!(approvers(r), emails(want));
            prop_assert_eq!(r.approvals.len(), want.len(), "approvals are distinct");
            prop_assert_eq!(rules.deadline(r), cfg.pending_ttl.map(|t| *at + minutes(t)));
        }
        (
            Model::Active {
                starts,
                expires,
                ext,
                used,
            },
            Some(r),
        ) => {
            let Some(g) = r
                .state
                .grant()
                .filter(|_| r.state.status() == Status::Active)
            else {
                return Err(TestCaseError::fail(format!("not active: {r:?}")));
            };
            prop_assert_eq!(g.starts_at, *starts);
            prop_assert_eq!(g.expires_at, *expires);
            prop_assert_eq!(r.extensions, *used);
            prop_assert!(r.extensions <= cfg.max_extensions);
            prop_assert_eq!(rules.deadline(r), Some(*expires));
            match ext {
                None => prop_assert_eq!(&r.extension, &None),
                Some((d, want)) => {
                    let asked = r.extension.as_ref().map(|e| e.duration.whole_minutes());
                    prop_assert_eq!(asked, Some(i64::from(*d)));
                    prop_assert_eq!(approvers(r), emails(want));
                    prop_assert_eq!(r.approvals.len(), want.len(), "approvals are distinct");
                }
            }
        }
        (m, r) => {
            return Err(TestCaseError::fail(format!("model {m:?}, rules {r:?}")));
        }
    }
    Ok(())
}

/// Who approved, as the audit trail tells it, of what is open for one person:
/// the pending request, or the asked extension.
#[derive(Debug, Default)]
struct Witness {
    approvers: BTreeSet<Email>,
}

impl Witness {
    /// Checks one move's audit event against the trail so far.
    fn check(
        &mut self,
        cfg: &Config,
        who: usize,
        before: Option<&Request>,
        t: &Transition,
        now: OffsetDateTime,
    ) -> Result<(), TestCaseError> {
        let e = &t.event;
        prop_assert_eq!(e.request_id, t.request.id);
        prop_assert_eq!(&e.subject, &person(who));
        prop_assert_eq!(&t.request.email, &person(who));
        prop_assert!(e.at <= now, "an event from the future: {:?}", e);
        // One open request per person: a new id only once the last one ended.
        let from = before.filter(|b| b.id == t.request.id);
        if from.is_none() {
            prop_assert!(before.is_none_or(|b| !b.is_open()), "a second open request");
        }
        let (from_status, to) = (from.map(|b| b.state.status()), t.request.state.status());
        prop_assert!(allowed(from_status, to), "{:?} -> {:?}", from_status, to);
        prop_assert!(t.request.extensions <= cfg.max_extensions);
        if !t.request.is_open() {
            // Nothing is left waiting on an ended request.
            prop_assert_eq!(&t.request.extension, &None);
            prop_assert!(t.request.approvals.is_empty());
        }
        // Expiry never moves earlier, and an ended grant keeps its window.
        if let (Some(old), Some(new)) =
            (from.and_then(|b| b.state.grant()), t.request.state.grant())
        {
            if to == Status::Active {
                prop_assert!(new.expires_at >= old.expires_at, "expiry moved earlier");
            } else {
                prop_assert_eq!(old, new);
            }
        }
        let user = match &e.actor {
            Actor::User(u) => Some(u.clone()),
            _ => None,
        };
        match e.action {
            Action::Requested | Action::ExtensionRequested => self.approvers.clear(),
            Action::Reviewed => {
                self.approvers.insert(user.expect("a person reviews"));
                prop_assert!(self.approvers.len() < usize::from(cfg.needed));
            }
            Action::Approved if e.actor == Actor::System => {
                prop_assert_eq!(&e.details["rule"], "on-call");
            }
            Action::Approved => {
                self.approvers.insert(user.expect("a person approves"));
                prop_assert!(
                    self.approvers.len() >= usize::from(cfg.needed),
                    "approved by {:?} of {} needed",
                    self.approvers,
                    cfg.needed
                );
            }
            Action::Extended if e.details["self_extended"] == true => {
                prop_assert!(cfg.self_extension);
                prop_assert_eq!(&e.actor, &Actor::User(person(who)));
            }
            Action::Extended => {
                self.approvers.insert(user.expect("a person approves"));
                prop_assert!(self.approvers.len() >= usize::from(cfg.needed));
            }
            Action::TimedOut | Action::Expired => {
                prop_assert_eq!(&e.actor, &Actor::System);
                prop_assert_eq!(Some(e.at), from.and_then(|b| cfg.rules().deadline(b)));
            }
            _ => {}
        }
        // An approval by the requester is flagged, and only then.
        if matches!(e.action, Action::Reviewed | Action::Approved)
            || (e.action == Action::Extended && e.details["self_extended"] != true)
        {
            let own = e.actor == Actor::User(person(who));
            prop_assert_eq!(e.details.get("self_approved").is_some(), own, "{:?}", e);
            prop_assert!(!own || cfg.allow_self_approval);
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn rules_agree_with_the_model(cfg in config(), cmds in proptest::collection::vec(cmd(), 1..80)) {
        let rules = cfg.rules();
        let mut model: [Model; REQUESTERS] = std::array::from_fn(|_| Model::None);
        let mut open: [Option<Request>; REQUESTERS] = Default::default();
        let mut witness: [Witness; REQUESTERS] = Default::default();
        let mut now = START;
        for cmd in &cmds {
            if let Cmd::Tick(m) = cmd {
                now += minutes(*m);
            } else {
                let i = who(cmd);
                let want = cfg.expect(&model[i], cmd, now);
                let got = run(&rules, open[i].as_ref(), cmd, now);
                match (want, got) {
                    (Err(want), Err(got)) => prop_assert_eq!(want, got, "{:?}", cmd),
                    (Ok((m, want)), Ok(ts)) => {
                        let got: Vec<Action> = ts.iter().map(|t| t.event.action).collect();
                        prop_assert_eq!(want, got, "{:?}", cmd);
                        for t in &ts {
                            witness[i].check(&cfg, i, open[i].as_ref(), t, now)?;
                            open[i] = Some(t.request.clone());
                        }
                        if let (Cmd::Revoke { comment: true, .. }, Some(t)) = (cmd, ts.last()) {
                            prop_assert_eq!(&t.event.details["comment"], "on call");
                            prop_assert_eq!(t.request.comment.as_ref().map(Reason::as_str), Some("on call"));
                        }
                        open[i] = open[i].take().filter(Request::is_open);
                        model[i] = m;
                    }
                    (want, got) => {
                        return Err(TestCaseError::fail(format!(
                            "{cmd:?}: model {want:?}, rules {got:?}"
                        )));
                    }
                }
                agrees(&cfg, &model[i], open[i].as_ref())?;
            }
            for (e, entry) in desired_entries(open.iter().flatten(), now) {
                if let RemoteEntry::Grant { expires_at, .. } = entry {
                    prop_assert!(expires_at > now, "the lapsed grant of {} rendered", e);
                }
            }
        }
    }
}
