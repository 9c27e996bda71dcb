//! Two resources on one store and one Zero, each with its own reconciler
//! and policy: entries, console edits and time limits stay on their own
//! resource.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use jit_domain::{
    Action, Actor, Ask, Email, GrantDuration, Reason, RemoteEntry, ResourceName, Rules, State,
};
use jit_ppl::jit::DecodeOptions;
use jit_reconcile::{Clock, Observed, Reconciler, render};
use serde_json::Value;
use time::OffsetDateTime;
use time::macros::datetime;
use tokio_util::sync::CancellationToken;

use crate::rig::{Rig, T0, email};

const DB: &str = "jit-db";
const SSH: &str = "jit-ssh";

fn rules(resource: &str, pending_ttl: Option<u32>) -> Rules {
    Rules {
        resource: ResourceName::parse(resource).unwrap(),
        pending_ttl: pending_ttl.map(|m| GrantDuration::from_minutes(m).unwrap()),
        ..Rules::default()
    }
}

/// One store, one Zero; `db` (policy `jit-db`) and `ssh` (policy `jit-ssh`).
struct TwoResources {
    rig: Rig,
    db: Rules,
    ssh: Rules,
}

impl TwoResources {
    async fn new(db: Rules, ssh: Rules) -> Self {
        Self {
            rig: Rig::sqlite().await,
            db,
            ssh,
        }
    }

    /// The reconciler of `rules`'s resource, on the rig's clock.
    fn reconciler(&self, rules: &Rules) -> Reconciler {
        let clock = self.rig.clock.clone();
        self.rig.reconciler_on(
            rules.resource.as_str(),
            self.rig.zero.clone(),
            Clock::new(move || clock.now()),
            policy_of(rules),
            rules.clone(),
        )
    }

    async fn request(&self, rules: &Rules, who: &Email, ask: Ask, now: OffsetDateTime) {
        self.rig
            .store
            .decide(&rules.resource, who, |open| {
                rules.request(open, who, ask, now)
            })
            .await
            .unwrap()
            .expect("request");
    }

    async fn approve(&self, rules: &Rules, who: &Email, minutes: u32, now: OffsetDateTime) {
        let d = GrantDuration::from_minutes(minutes).unwrap();
        self.rig
            .store
            .decide(&rules.resource, who, |open| {
                rules.approve(open, who, &email("admin@x.test"), Some(d), now)
            })
            .await
            .unwrap()
            .expect("approve");
    }

    async fn state(&self, rules: &Rules, who: &Email) -> Option<State> {
        self.rig
            .store
            .request_for(&rules.resource, who)
            .await
            .unwrap()
            .map(|r| r.state)
    }
}

fn policy_of(rules: &Rules) -> &'static str {
    match rules.resource.as_str() {
        "db" => DB,
        _ => SSH,
    }
}

fn entries(pairs: &[(&Email, RemoteEntry)]) -> BTreeMap<Email, RemoteEntry> {
    pairs.iter().map(|(e, x)| ((*e).clone(), *x)).collect()
}

/// Every `date` matcher in `ppl`.
fn dates(ppl: &Value) -> Vec<Value> {
    match ppl {
        Value::Object(map) => map
            .iter()
            .flat_map(|(k, v)| {
                if k == "date" {
                    vec![v.clone()]
                } else {
                    dates(v)
                }
            })
            .collect(),
        Value::Array(items) => items.iter().flat_map(dates).collect(),
        _ => Vec::new(),
    }
}

#[tokio::test]
async fn each_policy_holds_its_resource_and_adopts_its_own_console_edits() {
    let two = TwoResources::new(rules("db", None), rules("ssh", None)).await;
    let (db, ssh) = (&two.db, &two.ssh);
    let (alice, bob, carol) = (
        email("alice@x.test"),
        email("bob@x.test"),
        email("carol@x.test"),
    );
    // Alice asks for both at once; Bob for ssh only.
    two.request(db, &alice, Ask::default(), T0).await;
    two.request(ssh, &alice, Ask::default(), T0).await;
    two.request(ssh, &bob, Ask::default(), T0).await;
    two.approve(ssh, &alice, 60, T0).await;
    let alice_on_ssh = RemoteEntry::Grant {
        starts_at: None,
        expires_at: datetime!(2026-11-30 13:00 UTC),
    };

    let (rc_db, rc_ssh) = (two.reconciler(db), two.reconciler(ssh));
    rc_db.sync_now().await.expect("db sync");
    rc_ssh.sync_now().await.expect("ssh sync");
    assert_eq!(
        two.rig.remote_of(DB),
        entries(&[(&alice, RemoteEntry::Pending)])
    );
    assert_eq!(
        two.rig.remote_of(SSH),
        entries(&[(&alice, alice_on_ssh), (&bob, RemoteEntry::Pending)])
    );

    // Carol is granted db in the console.
    let ppl = two.rig.zero.ppl(DB).unwrap();
    let mut seen = Observed::scan(&ppl.to_string(), &DecodeOptions::default()).unwrap();
    let carol_on_db = RemoteEntry::Grant {
        starts_at: None,
        expires_at: datetime!(2026-11-30 12:45 UTC),
    };
    seen.entries.insert(carol.clone(), carol_on_db);
    let edited: Vec<_> = seen.entries.into_iter().collect();
    two.rig
        .zero
        .console_set(DB, render(&seen.foreign, &edited).to_value());

    // The ssh reconciler does not read another resource's policy...
    let ssh_before = two.rig.zero.ppl(SSH);
    assert_eq!(rc_ssh.sync_now().await.expect("ssh sync").adopted, 0);
    assert_eq!(two.rig.zero.ppl(SSH), ssh_before);
    assert_eq!(two.state(ssh, &carol).await, None);
    // ...and the db reconciler adopts the edit onto db only.
    assert_eq!(rc_db.sync_now().await.expect("db sync").adopted, 2);
    let adopted = two
        .rig
        .store
        .request_for(&db.resource, &carol)
        .await
        .unwrap()
        .expect("carol's grant on db");
    assert_eq!(adopted.resource, db.resource);
    assert_eq!(adopted.requested_by, Actor::Zero);
    assert_eq!(
        adopted.state.grant().unwrap().expires_at,
        datetime!(2026-11-30 12:45 UTC)
    );
    assert_eq!(two.state(ssh, &carol).await, None);
    assert_eq!(
        two.rig.adoptions().await,
        ["approved carol@x.test", "requested carol@x.test"]
    );
    assert_eq!(
        two.rig.remote_of(DB),
        entries(&[(&alice, RemoteEntry::Pending), (&carol, carol_on_db)])
    );
    rc_ssh.sync_now().await.expect("ssh sync");
    assert_eq!(
        two.rig.remote_of(SSH),
        entries(&[(&alice, alice_on_ssh), (&bob, RemoteEntry::Pending)])
    );
    let chain = two.rig.store.verify_audit_chain().await.unwrap();
    assert!(chain.is_intact(), "{chain:?}");
}

/// The background loop wakes at a pending request's time-to-live deadline,
/// not at its (hour-long) interval: the clock here follows real time from
/// five seconds before db's deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_request_times_out_on_its_resources_schedule() {
    let two = TwoResources::new(rules("db", Some(1)), rules("ssh", Some(60))).await;
    let (db, ssh) = (&two.db, &two.ssh);
    let alice = email("alice@x.test");
    two.request(db, &alice, Ask::default(), T0).await;
    two.request(ssh, &alice, Ask::default(), T0).await;

    let started = Instant::now();
    let clock = Clock::new(move || {
        T0 + time::Duration::seconds(55) + time::Duration::try_from(started.elapsed()).unwrap()
    });
    // Only a wake-up at the deadline can explain the run that times it out.
    let mut config = two
        .rig
        .reconciler_on("db", two.rig.zero.clone(), clock.clone(), DB, db.clone())
        .config()
        .clone();
    config.interval = Duration::from_secs(3600);
    let rc_db = Reconciler::new(
        config,
        two.rig.store.clone(),
        two.rig.zero.clone(),
        db.clone(),
    );
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(rc_db.clone().run(shutdown.clone()));

    let pending = entries(&[(&alice, RemoteEntry::Pending)]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while two.rig.remote_of(DB) != pending {
        assert!(Instant::now() < deadline, "the first run never wrote");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    while !two.rig.remote_of(DB).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the request past its time to live is still in the policy"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    running.await.unwrap();

    let timed_out = two
        .rig
        .store
        .request_for(&db.resource, &alice)
        .await
        .unwrap()
        .unwrap();
    assert!(timed_out.timed_out(), "{timed_out:?}");
    assert_eq!(
        timed_out.state,
        State::Cancelled {
            by: Actor::System,
            at: T0 + time::Duration::minutes(1)
        }
    );
    let events = two
        .rig
        .store
        .audit(jit_store::AuditQuery::latest(10))
        .await
        .unwrap();
    assert_eq!(
        (events[0].event.action, events[0].event.actor.clone()),
        (Action::TimedOut, Actor::System)
    );
    // The other resource's request, with its own longer time to live, waits on.
    assert_eq!(two.state(ssh, &alice).await, Some(State::Pending));
    let rc_ssh = two
        .rig
        .reconciler_on("ssh", two.rig.zero.clone(), clock, SSH, ssh.clone());
    rc_ssh.sync_now().await.expect("ssh sync");
    assert_eq!(two.rig.remote_of(SSH), pending);
    assert_eq!(two.state(ssh, &alice).await, Some(State::Pending));
}

#[tokio::test]
async fn a_scheduled_start_renders_date_after_and_before() {
    let two = TwoResources::new(rules("db", None), rules("ssh", None)).await;
    let db = &two.db;
    let alice = email("alice@x.test");
    let ask = Ask {
        reason: Reason::parse("the migration window").unwrap(),
        starts_at: Some(datetime!(2026-11-30 14:00 UTC)),
        ..Ask::default()
    };
    two.request(db, &alice, ask, T0).await;
    two.approve(db, &alice, 90, T0 + time::Duration::minutes(5))
        .await;
    let rc = two.reconciler(db);
    rc.sync_now().await.expect("sync");

    let window = RemoteEntry::Grant {
        starts_at: Some(datetime!(2026-11-30 14:00 UTC)),
        expires_at: datetime!(2026-11-30 15:30 UTC),
    };
    assert_eq!(two.rig.remote_of(DB), entries(&[(&alice, window)]));
    assert_eq!(
        dates(&two.rig.zero.ppl(DB).unwrap()),
        [serde_json::json!({
            "after": "2026-11-30T14:00:00Z",
            "before": "2026-11-30T15:30:00Z"
        })]
    );
    // Not in force yet, and nothing to adopt or write on the next run.
    let report = rc.sync_now().await.expect("sync");
    assert_eq!((report.adopted, report.wrote), (0, false));
    assert_eq!(two.rig.zero.ppl(SSH), None);
}
