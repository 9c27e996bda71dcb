//! `/admin/audit`: the trail in words, and a check that is not redone on
//! every page load.

use axum::http::StatusCode;
use jit_fakes::pomerium::TestUser;

use crate::harness::App;

/// The "Did" cell of every event row, newest first.
fn words(body: &str) -> Vec<&str> {
    body.split(r#"<td data-label="Did"><span class="badge "#)
        .skip(1)
        .filter_map(|cell| cell.split_once('>')?.1.split_once("</span>"))
        .map(|(word, _)| word)
        .collect()
}

#[tokio::test]
async fn withdrawing_and_giving_back_are_named_as_such() {
    let app = App::start().await;
    let (alice, admin) = (TestUser::alice(), TestUser::admin());
    app.request(&alice).await;
    let a = app.post("/cancel-request", &alice, &[]).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    app.request(&alice).await;
    app.approve(&alice).await;
    let a = app.post("/cancel-request", &alice, &[]).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);

    let page = app.get("/admin/audit", Some(&admin)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        words(&page.body),
        [
            "Gave back",
            "Approved",
            "Requested",
            "Withdrew",
            "Requested"
        ],
        "{}",
        page.body
    );
    assert!(!page.body.contains(">Revoked<"), "{}", page.body);
}

#[tokio::test]
async fn the_check_is_shared_by_page_loads_until_it_is_stale() {
    let app = App::start().await;
    let (alice, bob, admin) = (TestUser::alice(), TestUser::bob(), TestUser::admin());
    app.request(&alice).await;
    let page = app.get("/admin/audit", Some(&admin)).await;
    assert!(
        page.body
            .contains("all 1 events matched their hashes, and all 1 requests"),
        "{}",
        page.body
    );

    // A new event shows at once, but the check is not walked again.
    app.request(&bob).await;
    let page = app.get("/admin/audit", Some(&admin)).await;
    assert_eq!(words(&page.body).len(), 2);
    assert!(page.body.contains("all 1 events matched"), "{}", page.body);
}
