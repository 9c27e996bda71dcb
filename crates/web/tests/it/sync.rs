//! The approvers' page never waits on Pomerium Zero: it renders the store,
//! refreshes a stale sync in the background (one run per window, whatever
//! the page rate), and "Sync now" is the one thing that waits.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use jit_fakes::pomerium::TestUser;

use crate::harness::{App, Options};

/// Reads of policies the app made in Zero so far.
fn policy_reads(app: &App) -> usize {
    app.zero
        .requests()
        .iter()
        .filter(|r| r.method == Method::GET && r.path.contains("/policies"))
        .count()
}

async fn settle(app: &App) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while app.get("/readyz", None).await.status != StatusCode::OK {
        assert!(tokio::time::Instant::now() < deadline, "never synced");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn burst(app: &App, loads: usize) {
    let admin = TestUser::admin();
    let pages = (0..loads).map(|_| app.get("/admin", Some(&admin)));
    for page in futures_util::future::join_all(pages).await {
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    }
}

#[tokio::test]
async fn a_burst_of_page_loads_reads_zero_at_most_once_per_window() {
    let window = Duration::from_millis(1500);
    let app = App::with(Options {
        // No periodic runs during the test: only page loads cause reads.
        sync_interval: Duration::from_secs(3600),
        sync_max_age: window,
        ..Options::default()
    })
    .await;
    settle(&app).await;
    // What one run reads, measured through the button that runs one.
    let before = policy_reads(&app);
    let synced = app.post("/admin/sync-now", &TestUser::admin(), &[]).await;
    assert_eq!(synced.status, StatusCode::SEE_OTHER, "{}", synced.body);
    let per_run = policy_reads(&app) - before;
    assert!(per_run >= 1, "a run reads the policy");

    // Within the window: the pages read the store only.
    let before = policy_reads(&app);
    burst(&app, 50).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(policy_reads(&app) - before, 0, "a fresh sync is not redone");

    // Past it: fifty loads make one background run.
    tokio::time::sleep(window).await;
    let before = policy_reads(&app);
    burst(&app, 50).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while policy_reads(&app) - before < per_run {
        assert!(tokio::time::Instant::now() < deadline, "no background sync");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(policy_reads(&app) - before, per_run, "exactly one run");
}

#[tokio::test]
async fn the_page_answers_while_zero_stalls_and_sync_now_says_so() {
    let app = App::with(Options {
        sync_interval: Duration::from_secs(3600),
        sync_max_age: Duration::ZERO,
        apply_wait: Duration::from_secs(1),
        ..Options::default()
    })
    .await;
    settle(&app).await;
    let alice = TestUser::alice();
    app.zero.set_latency(Duration::from_secs(30));
    // The request is saved at once; applying it waits on Zero (503 after the wait).
    let asked = app.post("/request-access", &alice, &[]).await;
    assert_eq!(
        asked.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        asked.body
    );
    let page = tokio::time::timeout(
        Duration::from_secs(3),
        app.get("/admin", Some(&TestUser::admin())),
    )
    .await
    .expect("the page does not wait on a stalled Zero");
    assert!(
        page.body.contains("alice@"),
        "the store's view: {}",
        page.body
    );
    let synced = app.post("/admin/sync-now", &TestUser::admin(), &[]).await;
    assert_eq!(
        synced.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        synced.body
    );
    assert!(synced.body.contains("zero_unavailable"), "{}", synced.body);
}
