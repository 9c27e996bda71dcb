//! The notification outbox: rows written with the commit they tell about,
//! expanded once, deliveries claimed by one holder at a time, retried after
//! a hold when a claim was never finished, expiry notices once per expiry.

use super::*;

on_both_backends!(
    each_commit_adds_one_notice_per_event_and_a_refused_one_none,
    deliveries_are_claimed_once_and_retried_after_the_hold,
    concurrent_claims_never_share_a_delivery,
    expiry_notices_come_once_per_grant_expiry,
    status_counts_per_channel_and_old_deliveries_are_pruned,
);

const LEASE: &str = "notify";

async fn fence(store: &Store, holder: &str, now: OffsetDateTime) -> Fence {
    store
        .try_lease(LEASE, holder, Duration::from_secs(30), now)
        .await
        .unwrap()
        .expect("lease free")
}

fn delivery(key: &str, channel: &str) -> NewDelivery {
    NewDelivery {
        key: key.into(),
        channel: channel.into(),
        recipient: String::new(),
        body: format!("body of {key}"),
    }
}

async fn each_commit_adds_one_notice_per_event_and_a_refused_one_none(db: TestDb) {
    let store = db.store().await;
    let alice = email("alice@x.test");
    request(&store, &alice, T0).await.unwrap();
    // Refused (already pending): no event, no notice.
    assert!(request(&store, &alice, T0).await.is_err());
    approve(&store, &alice, 60, T0 + minutes(1)).await;

    let items = store.unexpanded(10).await.unwrap();
    let keys: Vec<&str> = items.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(keys, ["audit:1", "audit:2"]);
    let audit = all_audit(&store).await;
    for (item, record) in items.iter().zip(audit.iter().rev()) {
        assert_eq!(
            item.notice,
            Notice::Event {
                seq: record.seq,
                event: record.event.clone()
            }
        );
    }
    let states: Vec<Status> = items
        .iter()
        .map(|i| i.request.as_ref().unwrap().state.status())
        .collect();
    assert_eq!(
        states,
        [Status::Pending, Status::Active],
        "each notice carries the request as its event left it"
    );

    // Expanded rows are not handed out again; a stale fence expands nothing.
    let f = fence(&store, "a", T0).await;
    store
        .expand(&f, items[0].id, &[delivery("audit:1:hook", "hook")], T0)
        .await
        .unwrap();
    let left: Vec<String> = store
        .unexpanded(10)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.key)
        .collect();
    assert_eq!(left, ["audit:2"]);
    store.release_lease(&f).await.unwrap();
    let _b = fence(&store, "b", T0).await;
    let refused = store.expand(&f, items[1].id, &[], T0).await;
    assert!(
        matches!(refused, Err(StoreError::Fenced { .. })),
        "{refused:?}"
    );
    assert_eq!(store.unexpanded(10).await.unwrap().len(), 1);

    // The audit chain is what it was.
    assert!(store.verify_audit_chain().await.unwrap().is_intact());
}

async fn deliveries_are_claimed_once_and_retried_after_the_hold(db: TestDb) {
    let store = db.store().await;
    let alice = email("alice@x.test");
    request(&store, &alice, T0).await.unwrap();
    let f = fence(&store, "a", T0).await;
    let item = store.unexpanded(1).await.unwrap().remove(0);
    let ds = [delivery("k1", "hook"), delivery("k2", "hook")];
    store.expand(&f, item.id, &ds, T0).await.unwrap();
    // Expanding twice (a replica that died before marking it) keeps one of each.
    store.expand(&f, item.id, &ds, T0).await.unwrap();

    let hold = Duration::from_secs(60);
    let at = |s: i64| T0 + time::Duration::seconds(s);
    let first = store.claim_deliveries(&f, 10, hold, at(1)).await.unwrap();
    assert_eq!(
        first
            .iter()
            .map(|d| (d.key.as_str(), d.attempts, d.body.as_str()))
            .collect::<Vec<_>>(),
        [("k1", 1, "body of k1"), ("k2", 1, "body of k2")]
    );
    assert!(
        store
            .claim_deliveries(&f, 10, hold, at(2))
            .await
            .unwrap()
            .is_empty(),
        "claimed ones are held"
    );
    store
        .finish_delivery("k1", &Attempt::Delivered, at(3))
        .await
        .unwrap();
    // k2's claim was never finished (the process died): due again after the hold.
    let again = store.claim_deliveries(&f, 10, hold, at(62)).await.unwrap();
    assert_eq!(
        again
            .iter()
            .map(|d| (d.key.as_str(), d.attempts))
            .collect::<Vec<_>>(),
        [("k2", 2)]
    );
    store
        .finish_delivery(
            "k2",
            &Attempt::Retry {
                error: "503".into(),
                retry_at: at(100),
            },
            at(63),
        )
        .await
        .unwrap();
    assert!(
        store
            .claim_deliveries(&f, 10, hold, at(99))
            .await
            .unwrap()
            .is_empty()
    );
    let third = store.claim_deliveries(&f, 10, hold, at(100)).await.unwrap();
    assert_eq!(third.len(), 1);
    store
        .finish_delivery(
            "k2",
            &Attempt::Dead {
                error: "gone".into(),
            },
            at(101),
        )
        .await
        .unwrap();
    // A late success of an earlier attempt does not revive a finished one.
    store
        .finish_delivery("k2", &Attempt::Delivered, at(102))
        .await
        .unwrap();
    assert!(
        store
            .claim_deliveries(&f, 10, hold, at(1000))
            .await
            .unwrap()
            .is_empty()
    );
    let (status, unexpanded) = store.notification_status().await.unwrap();
    assert_eq!(unexpanded, 0);
    assert_eq!(
        status,
        [ChannelStatus {
            channel: "hook".into(),
            pending: 0,
            dead: 1,
            last_success_at: Some(at(3)),
            last_error: Some(("gone".into(), at(101))),
        }]
    );

    // Only the lease holder claims.
    store.release_lease(&f).await.unwrap();
    let _b = fence(&store, "b", at(1000)).await;
    let refused = store.claim_deliveries(&f, 10, hold, at(1000)).await;
    assert!(
        matches!(refused, Err(StoreError::Fenced { .. })),
        "{refused:?}"
    );
}

async fn concurrent_claims_never_share_a_delivery(db: TestDb) {
    let store = db.store().await;
    let other = db.store().await;
    let alice = email("alice@x.test");
    request(&store, &alice, T0).await.unwrap();
    let f = fence(&store, "a", T0).await;
    let item = store.unexpanded(1).await.unwrap().remove(0);
    let ds: Vec<NewDelivery> = (0..40)
        .map(|i| delivery(&format!("k{i:02}"), "hook"))
        .collect();
    store.expand(&f, item.id, &ds, T0).await.unwrap();

    // Two processes claiming at once (both through the one fence: the
    // claim itself must keep them apart).
    let hold = Duration::from_secs(60);
    let claims = (0..8).map(|i| {
        let s = if i % 2 == 0 {
            store.clone()
        } else {
            other.clone()
        };
        let f = f.clone();
        tokio::spawn(async move { s.claim_deliveries(&f, 3, hold, T0).await.unwrap() })
    });
    let mut keys = Vec::new();
    for c in claims {
        keys.extend(c.await.unwrap().into_iter().map(|d| d.key));
    }
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n, "a delivery was claimed twice");
    assert_eq!(n, 24);
}

async fn expiry_notices_come_once_per_grant_expiry(db: TestDb) {
    let store = db.store().await;
    let (alice, bob) = (email("alice@x.test"), email("bob@x.test"));
    request(&store, &alice, T0).await.unwrap();
    approve(&store, &alice, 60, T0).await;
    // Bob's grant is shorter than the warning: he is not warned.
    request(&store, &bob, T0).await.unwrap();
    approve(&store, &bob, 5, T0).await;
    let f = fence(&store, "a", T0).await;
    let lead = Duration::from_secs(600);
    let expiry_items = |items: Vec<OutboxItem>| -> Vec<OutboxItem> {
        items
            .into_iter()
            .filter(|i| matches!(i.notice, Notice::ExpirySoon { .. }))
            .collect()
    };

    assert_eq!(
        store
            .enqueue_expiry_notices(&f, lead, T0 + minutes(40))
            .await
            .unwrap(),
        0,
        "not yet within the lead"
    );
    assert_eq!(
        store
            .enqueue_expiry_notices(&f, lead, T0 + minutes(51))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .enqueue_expiry_notices(&f, lead, T0 + minutes(52))
            .await
            .unwrap(),
        0,
        "once per expiry"
    );
    let items = expiry_items(store.unexpanded(100).await.unwrap());
    assert_eq!(items.len(), 1);
    let expires_at = whole_seconds_after(T0, 60);
    let item = &items[0];
    assert_eq!(item.notice, Notice::ExpirySoon { expires_at });
    assert_eq!(item.request.as_ref().unwrap().email, alice);
    assert!(expiry_still_due(item.request.as_ref(), expires_at));
    assert!(!expiry_still_due(
        item.request.as_ref(),
        expires_at + minutes(1)
    ));
    assert!(!expiry_still_due(None, expires_at));
}

/// When a grant approved at `t` for `m` minutes ends (whole seconds).
fn whole_seconds_after(t: OffsetDateTime, m: i64) -> OffsetDateTime {
    let end = t + minutes(m);
    end.replace_nanosecond(0).unwrap()
}

async fn status_counts_per_channel_and_old_deliveries_are_pruned(db: TestDb) {
    let store = db.store().await;
    let alice = email("alice@x.test");
    request(&store, &alice, T0).await.unwrap();
    let f = fence(&store, "a", T0).await;
    let item = store.unexpanded(1).await.unwrap().remove(0);
    let ds = [
        delivery("a1", "mail"),
        delivery("a2", "mail"),
        delivery("h1", "hook"),
    ];
    store.expand(&f, item.id, &ds, T0).await.unwrap();
    let (status, _) = store.notification_status().await.unwrap();
    let pending: Vec<(&str, u64)> = status
        .iter()
        .map(|s| (s.channel.as_str(), s.pending))
        .collect();
    assert_eq!(pending, [("hook", 1), ("mail", 2)]);

    for key in ["a1", "a2", "h1"] {
        store
            .finish_delivery(key, &Attempt::Delivered, T0 + minutes(1))
            .await
            .unwrap();
    }
    assert_eq!(store.prune_notifications(T0).await.unwrap(), 0, "too young");
    assert_eq!(
        store.prune_notifications(T0 + minutes(2)).await.unwrap(),
        4,
        "three deliveries and their outbox row"
    );
    assert!(store.notification_status().await.unwrap().0.is_empty());
}
