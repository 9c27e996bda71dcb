//! The faults named in the hardening issue, each ending with the store's
//! decision in Zero and nothing the app wrote adopted as a console edit.

use jit_domain::RemoteEntry;
use serde_json::json;

use crate::mem_zero::{Call, Fault, Gate, MemZero};
use crate::rig::{POLICY, Rig, TTL, email};

/// Alice requests and is approved while both writes land but their answers
/// are lost; then the admin revokes. Before intents, the next run read
/// Alice's grant in Zero as a console edit, adopted it, and she kept access.
#[tokio::test]
async fn lost_answers_then_revoke_keeps_the_revoke() {
    let rig = Rig::sqlite().await;
    let rc = rig.reconciler("a");
    rig.request("alice@x.test").await;
    rig.zero.inject(Call::Create, Fault::LoseAnswer);
    assert!(rc.sync_now().await.is_err());
    rig.approve("alice@x.test", 60).await;
    rig.zero.inject(Call::Update, Fault::LoseAnswer);
    assert!(rc.sync_now().await.is_err());
    assert!(
        matches!(
            rig.remote().get(&email("alice@x.test")),
            Some(RemoteEntry::Grant { .. })
        ),
        "the write landed"
    );

    rig.revoke("alice@x.test").await;
    rc.sync_now().await.expect("sync");
    assert!(rig.remote().is_empty(), "the revoke is in Zero");
    assert_eq!(rig.remote(), rig.desired().await);
    assert_eq!(rig.adoptions().await, Vec::<String>::new());
}

#[tokio::test]
async fn lost_answers_then_cancel_keeps_the_cancel() {
    let rig = Rig::sqlite().await;
    let rc = rig.reconciler("a");
    rc.sync_now().await.expect("create the policy");
    rig.request("alice@x.test").await;
    rig.zero.inject(Call::Update, Fault::LoseAnswer);
    assert!(rc.sync_now().await.is_err());
    assert_eq!(rig.remote().len(), 1, "the write landed");

    rig.cancel("alice@x.test").await;
    rc.sync_now().await.expect("sync");
    assert!(rig.remote().is_empty());
    assert_eq!(rig.adoptions().await, Vec::<String>::new());
}

/// The process dies after a write whose answer never came; the next one
/// finds its write in Zero, takes it as applied, and adopts nothing.
#[tokio::test]
async fn lost_answer_then_restart_is_taken_as_applied() {
    let rig = Rig::sqlite().await;
    rig.reconciler("a").sync_now().await.expect("create");
    rig.request("alice@x.test").await;
    rig.approve("alice@x.test", 60).await;
    let generation = rig.store.generation().await.unwrap();
    rig.zero.inject(Call::Update, Fault::LoseAnswer);
    assert!(rig.reconciler("a").sync_now().await.is_err());

    rig.clock.advance(TTL * 2);
    let restarted = rig.reconciler("b");
    let report = restarted.sync_now().await.expect("sync");
    assert!(report.recovered, "{report:?}");
    assert!(!report.wrote, "nothing left to write");
    assert_eq!(
        rig.store
            .sync_state(POLICY)
            .await
            .unwrap()
            .applied_generation,
        generation
    );
    assert_eq!(rig.remote(), rig.desired().await);
    assert_eq!(rig.adoptions().await, Vec::<String>::new());
}

/// A Zero that keeps the document in its own form (indented, keys
/// reordered, as a JSON column would) holds the same policy: it is neither
/// an edit to adopt nor a reason to write again.
#[tokio::test]
async fn a_policy_kept_in_another_form_is_not_written_again() {
    let rig = Rig::sqlite().await;
    let rc = rig.reconciler("a");
    rig.zero.reformat_what_is_written();
    let foreign =
        json!({"allow": {"or": [{"email": {"is": "ops@x.test"}}], "and": [{"accept": true}]}});
    rig.zero.console_create(POLICY, json!([foreign]));
    rig.request("alice@x.test").await;
    rig.approve("alice@x.test", 60).await;
    rc.sync_now().await.expect("sync");
    assert_eq!(rig.zero.writes(), 1);
    let kept = rig.zero.ppl(POLICY).unwrap();
    assert_eq!(kept[0], foreign, "the console's rule is kept");
    for _ in 0..3 {
        let report = rc.sync_now().await.expect("sync");
        assert!(!report.wrote, "{report:?}");
    }
    assert_eq!(rig.zero.writes(), 1);
    assert_eq!(rig.remote(), rig.desired().await);
    assert_eq!(rig.adoptions().await, Vec::<String>::new());
}

#[tokio::test]
async fn a_lost_create_makes_no_second_policy() {
    let rig = Rig::sqlite().await;
    let rc = rig.reconciler("a");
    rig.request("alice@x.test").await;
    rig.zero.inject(Call::Create, Fault::LoseAnswer);
    assert!(rc.sync_now().await.is_err());
    rc.sync_now().await.expect("sync");
    assert_eq!(rig.zero.count(POLICY), 1);
    assert_eq!(rig.zero.writes(), 1);
    assert_eq!(rig.adoptions().await, Vec::<String>::new());
}

/// A console edit on top of a write whose answer was lost is still an edit.
#[tokio::test]
async fn a_console_edit_after_a_lost_answer_is_still_adopted() {
    let rig = Rig::sqlite().await;
    let rc = rig.reconciler("a");
    rc.sync_now().await.expect("create");
    rig.request("alice@x.test").await;
    rig.zero.inject(Call::Update, Fault::LoseAnswer);
    assert!(rc.sync_now().await.is_err());
    // Someone adds Bob by hand, keeping Alice's pending entry.
    let mut ppl = rig.zero.ppl(POLICY).unwrap();
    ppl.as_array_mut().unwrap().push(json!({
        "allow": { "and": [{ "email": { "is": "bob@x.test" } }, { "date": { "before": "2026-11-30T14:00:00Z" } }] }
    }));
    rig.zero.console_set(POLICY, ppl);
    let report = rc.sync_now().await.expect("sync");
    assert!(report.adopted > 0);
    assert_eq!(
        rig.adoptions().await,
        ["approved bob@x.test", "requested bob@x.test"]
    );
    assert_eq!(rig.remote(), rig.desired().await);
}

/// Issue item 1b: a grant extended in the console, seen only after its old
/// expiry, is extended, not swept.
#[tokio::test]
async fn a_console_extension_survives_the_old_expiry() {
    let rig = Rig::sqlite().await;
    let rc = rig.reconciler("a");
    rig.request("alice@x.test").await;
    rig.approve("alice@x.test", 1).await;
    rc.sync_now().await.expect("sync");

    let extended = rig
        .zero
        .ppl(POLICY)
        .unwrap()
        .to_string()
        .replace("2026-11-30T12:01:00Z", "2026-11-30T13:00:00Z");
    assert!(extended.contains("13:00:00"), "{extended}");
    rig.zero
        .console_set(POLICY, serde_json::from_str(&extended).unwrap());
    rig.clock.advance(std::time::Duration::from_secs(120));

    let report = rc.sync_now().await.expect("sync");
    assert_eq!(report.expired, 0, "{report:?}");
    let alice = rig.remote()[&email("alice@x.test")];
    assert!(
        matches!(alice, RemoteEntry::Grant { expires_at, .. } if expires_at == time::macros::datetime!(2026-11-30 13:00 UTC)),
        "{alice:?}"
    );
    assert_eq!(rig.remote(), rig.desired().await);
    assert_eq!(rig.adoptions().await, ["modified alice@x.test"]);
}

/// Issue item 2, on PostgreSQL: replica A stalls on its read past the lease
/// TTL; B takes over and applies a revoke; A resumes. The revoke stands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_paused_on_its_read_cannot_undo_a_revoke() {
    let db = crate::pg::TestDb::new().await;
    let rig = Rig::new(db.store().await).await;
    let (za, zb) = (rig.zero.replica(), rig.zero.replica());
    let (a, b) = (
        rig.reconciler_via("a", za.clone()),
        rig.reconciler_via("b", zb),
    );
    rig.request("alice@x.test").await;
    rig.approve("alice@x.test", 60).await;
    b.sync_now().await.expect("sync");

    let gate = Gate::new();
    za.inject(Call::Get, Fault::Stall(gate.clone()));
    let paused = tokio::spawn(async move { a.sync_now().await });
    gate.arrived().await;
    rig.clock.advance(TTL * 2);
    rig.revoke("alice@x.test").await;
    b.sync_now().await.expect("B takes over");
    assert!(rig.remote().is_empty());

    gate.release();
    let _ = paused.await.unwrap();
    assert!(rig.remote().is_empty(), "the revoke stands");
    b.sync_now().await.expect("sync");
    assert!(rig.remote().is_empty());
    assert_eq!(rig.adoptions().await, Vec::<String>::new());
    db.drop().await;
}

/// Replica A stalls on its write (an old state, Alice still granted) past
/// the lease TTL; B applies the revoke; then A's write lands. Zero has no
/// compare-and-swap, so Alice is back in Zero for a moment; the next run
/// recognises A's write by its intent, restores the revoke and adopts
/// nothing, and A's late success is refused by the fence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_replicas_late_write_is_undone_not_adopted() {
    let db = crate::pg::TestDb::new().await;
    let rig = Rig::new(db.store().await).await;
    let (za, zb) = (rig.zero.replica(), rig.zero.replica());
    let (a, b) = (
        rig.reconciler_via("a", za.clone()),
        rig.reconciler_via("b", zb),
    );
    b.sync_now().await.expect("create");
    rig.request("alice@x.test").await;
    rig.approve("alice@x.test", 60).await;

    let gate = Gate::new();
    za.inject(Call::Update, Fault::Stall(gate.clone()));
    let paused = tokio::spawn(async move { a.sync_now().await });
    gate.arrived().await;
    rig.clock.advance(TTL * 2);
    rig.revoke("alice@x.test").await;
    b.sync_now().await.expect("B takes over");
    assert!(rig.remote().is_empty());

    gate.release();
    let late = paused.await.unwrap();
    assert!(late.is_err(), "A's success is fenced: {late:?}");
    assert_eq!(rig.remote().len(), 1, "A's stale write landed");
    let report = b.sync_now().await.expect("sync");
    assert!(report.wrote);
    assert!(rig.remote().is_empty(), "the revoke is restored");
    assert_eq!(rig.adoptions().await, Vec::<String>::new());
    db.drop().await;
}

#[tokio::test]
async fn a_failed_sync_says_why() {
    let rig = Rig::sqlite().await;
    let zero = MemZero::new();
    zero.inject(Call::List, Fault::Fail);
    let failure = rig.reconciler_via("a", zero).sync_now().await.unwrap_err();
    assert!(failure.message.contains("503"), "{}", failure.message);
}

/// A failure's message carries its causes: an unreachable Zero says
/// "Connection refused", not only "failed after N attempt(s)".
#[tokio::test]
async fn an_unreachable_zero_is_named_with_its_cause() {
    let rig = Rig::sqlite().await;
    // A port nothing listens on: bind one, then close it.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut config = jit_zero::ZeroConfig::new("token".to_owned().into(), "org-1");
    config.base_url = format!("http://{addr}").parse().unwrap();
    config.retry.base_delay = std::time::Duration::from_millis(1);
    let client = jit_zero::ZeroClient::new(config).unwrap();
    let mut rc = jit_reconcile::Config::new(POLICY, "cluster-1");
    rc.clock = jit_reconcile::Clock::new({
        let clock = rig.clock.clone();
        move || clock.now()
    });
    let reconciler =
        jit_reconcile::Reconciler::new(rc, rig.store.clone(), client, rig.rules.clone());
    let failure = reconciler.sync_now().await.unwrap_err();
    assert!(
        failure
            .message
            .to_lowercase()
            .contains("connection refused"),
        "{}",
        failure.message
    );
}

/// Another replica can take the lease at once, not only after the TTL.
async fn lease_is_free(rig: &Rig) {
    let other = rig
        .store
        .try_lease("reconcile:jit-example", "b", TTL, rig.clock.now())
        .await
        .unwrap();
    assert!(
        other.is_some(),
        "the lease is free without waiting for the TTL"
    );
}

/// Even a run that never read its fence hands the lease back at shutdown
/// (under load, a CLI run then found the lease taken for its whole TTL).
#[tokio::test]
async fn shutdown_after_the_lease_was_granted_but_not_read_hands_it_back() {
    let rig = Rig::sqlite().await;
    // What a run's lease request leaves when shutdown drops the run after
    // the store granted the lease and before the run read its fence.
    let granted = rig
        .store
        .try_lease("reconcile:jit-example", "a", TTL, rig.clock.now())
        .await
        .unwrap();
    assert!(granted.is_some());
    let shutdown = tokio_util::sync::CancellationToken::new();
    shutdown.cancel();
    rig.reconciler("a").run(shutdown).await;
    lease_is_free(&rig).await;
}

/// A run cut short by shutdown hands its lease back: another replica can
/// write at once, not only after the TTL.
#[tokio::test]
async fn shutdown_mid_run_hands_the_lease_back() {
    let rig = Rig::sqlite().await;
    let gate = Gate::new();
    rig.zero.inject(Call::List, Fault::Stall(gate.clone()));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(rig.reconciler("a").run(shutdown.clone()));
    gate.arrived().await;
    shutdown.cancel();
    running.await.unwrap();
    lease_is_free(&rig).await;
}
