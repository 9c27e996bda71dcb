//! History for people: filters by person, action and time, keyset pages in
//! both directions, and the grants in force within a window.

use jit_domain::{Ask, ResourceName};

use super::*;

on_both_backends!(
    history_filters_by_person_action_and_time,
    history_pages_both_ways_under_a_filter,
    grants_between_are_those_in_force_in_the_window,
    requests_filter_and_page_newest_first,
);

fn seqs(page: &HistoryPage) -> Vec<u64> {
    page.entries.iter().map(|e| e.record.seq).collect()
}

fn on(resource: &str) -> Rules {
    Rules {
        resource: ResourceName::parse(resource).unwrap(),
        ..Rules::default()
    }
}

async fn ask(store: &Store, resource: &str, who: &Email, now: OffsetDateTime) {
    let rules = on(resource);
    store
        .decide(&rules.resource, who, |open| {
            rules.request(open, who, Ask::default(), now)
        })
        .await
        .expect("store works")
        .expect("request allowed");
}

async fn grant(store: &Store, resource: &str, who: &Email, minutes: u32, now: OffsetDateTime) {
    let rules = on(resource);
    let d = GrantDuration::from_minutes(minutes).unwrap();
    store
        .decide(&rules.resource, who, |open| {
            rules.approve(open, who, &admin(), Some(d), now)
        })
        .await
        .expect("store works")
        .expect("approval allowed");
}

async fn revoke(store: &Store, resource: &str, who: &Email, now: OffsetDateTime) {
    let rules = on(resource);
    store
        .decide(&rules.resource, who, |open| {
            rules.revoke(open, who, &admin(), None, now)
        })
        .await
        .expect("store works")
        .expect("revoke allowed");
}

/// 1 alice requests `default` (T0), 2 bob requests `prod-db` (+1), 3 alice
/// approved (+2), 4 bob approved (+3), 5 alice revoked (+4); both grants
/// are for 30 min.
async fn five_events(store: &Store) -> (Email, Email) {
    let (alice, bob) = (email("alice@x.test"), email("bob@x.test"));
    ask(store, "default", &alice, T0).await;
    ask(store, "prod-db", &bob, T0 + minutes(1)).await;
    grant(store, "default", &alice, 30, T0 + minutes(2)).await;
    grant(store, "prod-db", &bob, 30, T0 + minutes(3)).await;
    revoke(store, "default", &alice, T0 + minutes(4)).await;
    (alice, bob)
}

async fn history_filters_by_person_action_and_time(db: TestDb) {
    let store = db.store().await;
    let (alice, _) = five_events(&store).await;
    let page = |filter: HistoryFilter| {
        let store = store.clone();
        async move {
            store
                .history(&filter, HistoryCursor::Newest, 50)
                .await
                .unwrap()
        }
    };

    let all = page(HistoryFilter::default()).await;
    assert_eq!(seqs(&all), [5, 4, 3, 2, 1]);
    assert_eq!((all.older, all.newer), (None, None));
    let resources: Vec<&str> = all.entries.iter().map(|e| e.resource.as_str()).collect();
    assert_eq!(
        resources,
        ["default", "prod-db", "default", "prod-db", "default"]
    );

    let within = |names: &[&str]| HistoryFilter {
        resources: Some(
            names
                .iter()
                .map(|n| ResourceName::parse(n).unwrap())
                .collect(),
        ),
        ..Default::default()
    };
    assert_eq!(seqs(&page(within(&["prod-db"])).await), [4, 2]);
    assert_eq!(seqs(&page(within(&["default"])).await), [5, 3, 1]);
    assert_eq!(
        seqs(&page(within(&["prod-db", "default"])).await),
        [5, 4, 3, 2, 1]
    );
    // Names match whole: no prefix, suffix or pattern.
    for near in ["prod", "db", "prod-d_", "prod-db-2", "nothing-here"] {
        assert!(page(within(&[near])).await.entries.is_empty(), "{near}");
    }
    assert!(
        page(within(&[])).await.entries.is_empty(),
        "an empty set selects nothing"
    );

    let about_alice = page(HistoryFilter {
        person: Some(alice.clone()),
        ..Default::default()
    })
    .await;
    assert_eq!(seqs(&about_alice), [5, 3, 1]);

    let approvals = page(HistoryFilter {
        action: Some(Action::Approved),
        ..Default::default()
    })
    .await;
    assert_eq!(seqs(&approvals), [4, 3]);

    // `from` is inclusive and `to` exclusive, to the millisecond.
    let window = page(HistoryFilter {
        from: Some(T0 + minutes(2)),
        to: Some(T0 + minutes(4)),
        ..Default::default()
    })
    .await;
    assert_eq!(seqs(&window), [4, 3]);

    let combined = page(HistoryFilter {
        person: Some(alice),
        action: Some(Action::Revoked),
        from: Some(T0 + minutes(4)),
        ..Default::default()
    })
    .await;
    assert_eq!(seqs(&combined), [5]);

    let nothing = page(HistoryFilter {
        action: Some(Action::Expired),
        ..Default::default()
    })
    .await;
    assert!(nothing.entries.is_empty());
    assert_eq!((nothing.older, nothing.newer), (None, None));
}

async fn history_pages_both_ways_under_a_filter(db: TestDb) {
    let store = db.store().await;
    five_events(&store).await;
    let carol = email("carol@x.test");
    ask(&store, "default", &carol, T0 + minutes(5)).await; // 6
    grant(&store, "default", &carol, 30, T0 + minutes(6)).await; // 7
    let all = HistoryFilter::default();
    let page = |cursor| {
        let (store, all) = (store.clone(), all.clone());
        async move { store.history(&all, cursor, 3).await.unwrap() }
    };
    use HistoryCursor::{After, Before, Newest};

    let first = page(Newest).await;
    assert_eq!(seqs(&first), [7, 6, 5]);
    assert_eq!((first.older, first.newer), (Some(Before(5)), None));
    let second = page(Before(5)).await;
    assert_eq!(seqs(&second), [4, 3, 2]);
    assert_eq!(
        (second.older, second.newer),
        (Some(Before(2)), Some(After(4)))
    );
    let last = page(Before(2)).await;
    assert_eq!(seqs(&last), [1]);
    assert_eq!((last.older, last.newer), (None, Some(After(1))));

    // Back again: the same pages.
    let back = page(After(1)).await;
    assert_eq!(seqs(&back), [4, 3, 2]);
    assert_eq!((back.older, back.newer), (Some(Before(2)), Some(After(4))));
    let top = page(After(4)).await;
    assert_eq!(seqs(&top), [7, 6, 5]);
    assert_eq!((top.older, top.newer), (Some(Before(5)), None));

    // Past either end: empty, pointing back at what exists.
    let beyond = page(Before(1)).await;
    assert!(beyond.entries.is_empty());
    assert_eq!((beyond.older, beyond.newer), (None, Some(After(0))));
    let ahead = page(After(7)).await;
    assert!(ahead.entries.is_empty());
    assert_eq!((ahead.older, ahead.newer), (Some(Before(8)), None));

    // Under a filter, pages skip what it leaves out.
    let approvals = HistoryFilter {
        action: Some(Action::Approved),
        ..Default::default()
    };
    let p = store.history(&approvals, Newest, 2).await.unwrap();
    assert_eq!(seqs(&p), [7, 4]);
    assert_eq!((p.older, p.newer), (Some(Before(4)), None));
    let p = store.history(&approvals, Before(4), 2).await.unwrap();
    assert_eq!(seqs(&p), [3]);
    assert_eq!((p.older, p.newer), (None, Some(After(3))));
    let p = store.history(&approvals, After(3), 2).await.unwrap();
    assert_eq!(seqs(&p), [7, 4]);
    assert_eq!((p.older, p.newer), (Some(Before(4)), None));
}

async fn grants_between_are_those_in_force_in_the_window(db: TestDb) {
    let store = db.store().await;
    let (alice, bob) = five_events(&store).await;
    let (alice, bob) = (alice.as_str(), bob.as_str());
    ask(&store, "default", &email("carol@x.test"), T0).await; // pending: no grant
    let emails = |rs: Vec<Request>| {
        rs.into_iter()
            .map(|r| r.email.to_string())
            .collect::<Vec<_>>()
    };
    let between = |person: Option<Email>, from, to| {
        let store = store.clone();
        let filter = HistoryFilter {
            person,
            from,
            to,
            ..Default::default()
        };
        async move { emails(store.grants_between(&filter, 100).await.unwrap()) }
    };
    // Alice held access over [+2, +4) (revoked), bob over [+3, +33).
    assert_eq!(between(None, None, None).await, [alice, bob]);
    assert_eq!(between(None, Some(T0 + minutes(4)), None).await, [bob]);
    assert_eq!(
        between(None, Some(T0 + minutes(3)), Some(T0 + minutes(4))).await,
        [alice, bob]
    );
    assert!(between(None, None, Some(T0 + minutes(2))).await.is_empty());
    assert_eq!(
        between(
            None,
            None,
            Some(T0 + minutes(2) + time::Duration::milliseconds(1))
        )
        .await,
        [alice]
    );
    assert_eq!(between(Some(email(bob)), None, None).await, [bob]);
    let on_prod = HistoryFilter {
        resources: Some(vec![ResourceName::parse("prod-db").unwrap()]),
        ..Default::default()
    };
    assert_eq!(
        emails(store.grants_between(&on_prod, 100).await.unwrap()),
        [bob]
    );
    let limited = store
        .grants_between(&HistoryFilter::default(), 1)
        .await
        .unwrap();
    assert_eq!(emails(limited), [alice]);
}

async fn requests_filter_and_page_newest_first(db: TestDb) {
    let store = db.store().await;
    let (alice, bob) = five_events(&store).await;
    let carol = email("carol@x.test");
    // Asked in the same millisecond as bob: ties are cut by id.
    ask(&store, "prod-db", &carol, T0 + minutes(1)).await;
    ask(&store, "default", &alice, T0 + minutes(5)).await;
    let list = |filter: RequestFilter, after, limit| {
        let store = store.clone();
        async move { store.requests(&filter, after, limit).await.unwrap() }
    };
    let who = |page: &RequestPage| -> Vec<(String, Status)> {
        page.requests
            .iter()
            .map(|r| (r.email.to_string(), r.state.status()))
            .collect()
    };

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = list(RequestFilter::default(), after, 2).await;
        assert!(page.requests.len() <= 2);
        seen.extend(page.requests.iter().map(|r| r.id));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let all = list(RequestFilter::default(), None, 50).await;
    assert_eq!(all.next, None);
    assert_eq!(seen, all.requests.iter().map(|r| r.id).collect::<Vec<_>>());
    assert_eq!(all.requests.len(), 4, "every request once, across pages");
    assert_eq!(all.requests[0].email, alice, "newest first");

    let active = list(
        RequestFilter {
            status: Some(Status::Active),
            ..Default::default()
        },
        None,
        50,
    )
    .await;
    assert_eq!(who(&active), [(bob.to_string(), Status::Active)]);
    let alices = list(
        RequestFilter {
            person: Some(alice.clone()),
            resources: Some(vec![ResourceName::parse("default").unwrap()]),
            ..Default::default()
        },
        None,
        50,
    )
    .await;
    assert_eq!(
        who(&alices),
        [
            (alice.to_string(), Status::Pending),
            (alice.to_string(), Status::Revoked)
        ]
    );
    let window = list(
        RequestFilter {
            from: Some(T0 + minutes(1)),
            to: Some(T0 + minutes(5)),
            ..Default::default()
        },
        None,
        50,
    )
    .await;
    assert_eq!(window.requests.len(), 2, "bob and carol, not alice's two");
    let nothing = list(
        RequestFilter {
            resources: Some(vec![]),
            ..Default::default()
        },
        None,
        50,
    )
    .await;
    assert!(nothing.requests.is_empty() && nothing.next.is_none());
}
