//! Requests per resource: one open request per person and resource, every
//! field of the richer requests kept by the store and by the audit replay,
//! and databases written before resources existed carried over intact.

use std::num::NonZeroU8;

use jit_domain::{Ask, AuditEvent, Durations, Ticket, TicketRule};

use super::*;

on_both_backends!(
    one_open_request_per_resource_and_email,
    asks_approvals_extensions_and_comments_round_trip,
    databases_from_before_resources_keep_every_request_and_the_chain,
);

fn resource(name: &str) -> ResourceName {
    ResourceName::parse(name).unwrap()
}

/// Rules on `name` with every new knob turned: two approvals, two
/// extensions, a requested duration, start and ticket.
fn strict(name: &str) -> Rules {
    let defaults = Rules::default();
    Rules {
        resource: resource(name),
        durations: Durations {
            requester_chooses: true,
            ..defaults.durations.clone()
        },
        ticket: Some(TicketRule {
            label: "Ticket".into(),
            required: false,
            pattern: None,
        }),
        approvals_needed: NonZeroU8::new(2).unwrap(),
        max_extensions: 2,
        ..defaults
    }
}

fn on(name: &str) -> Rules {
    Rules {
        resource: resource(name),
        ..Rules::default()
    }
}

fn text(s: &str) -> Option<Reason> {
    Reason::parse(s).unwrap()
}

/// Decides `f` on `rules.resource` for `who`; panics if it is refused.
async fn decided<F>(store: &Store, rules: &Rules, who: &Email, f: F) -> Request
where
    F: FnOnce(Option<&Request>) -> Result<Vec<Transition>, DomainError> + Send,
{
    let committed = store
        .decide(&rules.resource, who, f)
        .await
        .unwrap()
        .expect("the move is allowed");
    let last = committed.transitions.last().unwrap().request.clone();
    // What the write returned is exactly what both reads yield.
    assert_eq!(
        store.request_for(&rules.resource, who).await.unwrap(),
        Some(last.clone())
    );
    assert_eq!(store.request(last.id).await.unwrap(), Some(last.clone()));
    last
}

async fn one_open_request_per_resource_and_email(db: TestDb) {
    let store = db.store().await;
    let (db_rules, ssh_rules) = (on("db"), on("ssh"));
    let alice = email("alice@x.test");

    let on_db = decided(&store, &db_rules, &alice, |open| {
        db_rules.request(open, &alice, text("query"), T0)
    })
    .await;
    let on_ssh = decided(&store, &ssh_rules, &alice, |open| {
        ssh_rules.request(open, &alice, text("login"), T0 + minutes(1))
    })
    .await;
    assert_eq!(
        (on_db.resource.as_str(), on_ssh.resource.as_str()),
        ("db", "ssh")
    );
    assert_ne!(on_db.id, on_ssh.id);
    let again = store
        .decide(&db_rules.resource, &alice, |open| {
            db_rules.request(open, &alice, None, T0 + minutes(2))
        })
        .await
        .unwrap();
    assert!(
        matches!(again, Err(DomainError::AlreadyPending { .. })),
        "{again:?}"
    );
    assert_eq!(
        store.open_requests().await.unwrap(),
        vec![on_db.clone(), on_ssh.clone()]
    );
    assert_eq!(
        store.open_requests_on(&db_rules.resource).await.unwrap(),
        vec![on_db.clone()]
    );
    assert_eq!(
        store.open_requests_on(&here()).await.unwrap(),
        Vec::<Request>::new()
    );
    assert_eq!(
        store.open_resources().await.unwrap(),
        vec![("db".to_owned(), 1), ("ssh".to_owned(), 1)]
    );

    // A decision on one resource leaves the other alone.
    let rejected = decided(&store, &ssh_rules, &alice, |open| {
        ssh_rules.revoke(open, &alice, &admin(), text("not today"), T0 + minutes(3))
    })
    .await;
    assert_eq!(rejected.state.status(), Status::Rejected);
    assert_eq!(
        store.request_for(&db_rules.resource, &alice).await.unwrap(),
        Some(on_db.clone())
    );
    // A sweep of one resource sees only its own requests.
    store
        .decide_all(&ssh_rules.resource, |open| {
            assert!(open.is_empty(), "{open:?}");
            Vec::new()
        })
        .await
        .unwrap();
    store
        .decide_all(&db_rules.resource, |open| {
            assert_eq!(open, std::slice::from_ref(&on_db));
            Vec::new()
        })
        .await
        .unwrap();

    // A move of a request on another resource than the one decided on is
    // refused by the write.
    let stray = ssh_rules
        .request(None, &alice, None, T0 + minutes(4))
        .unwrap();
    let err = store
        .decide(&db_rules.resource, &alice, |_| Ok::<_, DomainError>(stray))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidTransition { .. }), "{err}");

    // The database itself refuses a second open request on one resource,
    // whatever the code does, and allows one on another.
    let insert = |resource: &str, status: &str| {
        format!(
            "INSERT INTO requests (id, email, requested_at, requested_by, status, resource) \
             VALUES ('{}', 'alice@x.test', 0, 'zero', '{status}', '{resource}')",
            RequestId::new()
        )
    };
    let err = raw(&store, &insert("db", "pending")).await.unwrap_err();
    assert!(matches!(err, StoreError::Refused { .. }), "{err}");
    raw(&store, &insert("ssh", "pending")).await.unwrap();
    let err = raw(&store, &insert("ssh", "pending")).await.unwrap_err();
    assert!(matches!(err, StoreError::Refused { .. }), "{err}");
    // A row written without a resource belongs to `default`.
    raw(
        &store,
        &format!(
            "INSERT INTO requests (id, email, requested_at, requested_by, status) \
             VALUES ('{}', 'alice@x.test', 0, 'zero', 'pending')",
            RequestId::new()
        ),
    )
    .await
    .unwrap();
    assert_eq!(store.open_requests_on(&here()).await.unwrap().len(), 1);
    assert_eq!(store.open_requests().await.unwrap().len(), 3);
    // An extension can only be asked of active access.
    let err = raw(
        &store,
        &format!(
            "UPDATE requests SET extension = '{{}}' WHERE id = '{}'",
            on_db.id
        ),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StoreError::Refused { .. }), "{err}");
}

async fn asks_approvals_extensions_and_comments_round_trip(db: TestDb) {
    let store = db.store().await;
    let rules = strict("prod-db");
    let (alice, bob) = (email("alice@x.test"), email("bob@x.test"));
    let (first, second) = (email("first@x.test"), email("second@x.test"));
    let at = |m: i64| T0 + minutes(m);

    let ask = Ask {
        reason: text("migrate the \"orders\" table"),
        duration: Some(GrantDuration::from_minutes(90).unwrap()),
        starts_at: Some(at(120)),
        ticket: Ticket::parse("OPS-7").unwrap(),
    };
    let pending = decided(&store, &rules, &alice, |open| {
        rules.request(open, &alice, ask.clone(), at(0))
    })
    .await;
    assert_eq!(pending.ask, ask);

    let reviewed = decided(&store, &rules, &alice, |open| {
        rules.approve(open, &alice, &first, None, at(1))
    })
    .await;
    assert_eq!(reviewed.state, State::Pending);
    assert_eq!(
        reviewed.approvals,
        [jit_domain::Approval {
            by: first.clone(),
            at: at(1)
        }]
    );
    let twice = store
        .decide(&rules.resource, &alice, |open| {
            rules.approve(open, &alice, &first, None, at(2))
        })
        .await
        .unwrap();
    assert_eq!(twice, Err(DomainError::AlreadyApproved { needed: 2 }));

    let active = decided(&store, &rules, &alice, |open| {
        rules.approve(open, &alice, &second, None, at(2))
    })
    .await;
    let grant = active.state.grant().unwrap().clone();
    assert_eq!(grant.starts_at, Some(datetime!(2026-11-28 14:00:00 UTC)));
    assert_eq!(grant.expires_at, datetime!(2026-11-28 15:30:00 UTC));

    let thirty = GrantDuration::from_minutes(30).unwrap();
    let asked = decided(&store, &rules, &alice, |open| {
        rules.extend(open, &alice, thirty, text("the copy is slow"), at(150))
    })
    .await;
    let extension = asked.extension.clone().unwrap();
    assert_eq!(
        (extension.duration, extension.reason, extension.asked_at),
        (thirty, text("the copy is slow"), at(150))
    );
    assert!(asked.approvals.is_empty());
    decided(&store, &rules, &alice, |open| {
        rules.approve_extension(open, &alice, &first, at(151))
    })
    .await;
    let extended = decided(&store, &rules, &alice, |open| {
        rules.approve_extension(open, &alice, &second, at(152))
    })
    .await;
    assert_eq!((extended.extensions, extended.extension.clone()), (1, None));
    assert_eq!(
        extended.state.grant().unwrap().expires_at,
        datetime!(2026-11-28 16:00:00 UTC)
    );

    decided(&store, &rules, &alice, |open| {
        rules.extend(open, &alice, thirty, None, at(153))
    })
    .await;
    let declined = decided(&store, &rules, &alice, |open| {
        rules.reject_extension(open, &alice, &first, text("finish tomorrow"), at(154))
    })
    .await;
    assert_eq!(
        (declined.extension.clone(), declined.comment.clone()),
        (None, text("finish tomorrow"))
    );
    assert_eq!(declined.extensions, 1);

    decided(&store, &rules, &bob, |open| {
        rules.request(open, &bob, text("curious"), at(155))
    })
    .await;
    let rejected = decided(&store, &rules, &bob, |open| {
        rules.revoke(open, &bob, &first, text("no need to know"), at(156))
    })
    .await;
    assert_eq!(rejected.comment, text("no need to know"));
    assert_eq!(rejected.state.status(), Status::Rejected);

    let actions: Vec<Action> = all_audit(&store)
        .await
        .iter()
        .rev()
        .map(|r| r.event.action)
        .collect();
    assert_eq!(
        actions,
        [
            Action::Requested,
            Action::Reviewed,
            Action::Approved,
            Action::ExtensionRequested,
            Action::Reviewed,
            Action::Extended,
            Action::ExtensionRequested,
            Action::ExtensionRejected,
            Action::Requested,
            Action::Rejected,
        ]
    );
    let report = store.verify_audit_chain().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!((report.verified, report.requests_checked), (10, 2));

    // The replay covers the new columns: each edited behind the app's back
    // is named, and undoing the edit makes the chain whole again.
    let alice_id = declined.id;
    assert!(
        declined.approvals.is_empty(),
        "a declined extension clears them"
    );
    for (column, edit, undo) in [
        ("extensions", "extensions = 2", "extensions = 1"),
        (
            "approvals",
            r#"approvals = '[{"by":"mallory@x.test","at":0}]'"#,
            "approvals = '[]'",
        ),
        ("comment", "comment = NULL", "comment = 'finish tomorrow'"),
        ("ticket", "ticket = 'OPS-8'", "ticket = 'OPS-7'"),
        ("resource", "resource = 'default'", "resource = 'prod-db'"),
    ] {
        raw(
            &store,
            &format!("UPDATE requests SET {edit} WHERE id = '{alice_id}'"),
        )
        .await
        .unwrap();
        let report = store.verify_audit_chain().await.unwrap();
        match report.first_mismatch.map(|m| m.problem) {
            Some(MismatchProblem::Column { column: c, seq, .. }) => {
                assert_eq!((c, seq), (column, 8));
            }
            other => panic!("{column}: {other:?}"),
        }
        raw(
            &store,
            &format!("UPDATE requests SET {undo} WHERE id = '{alice_id}'"),
        )
        .await
        .unwrap();
        let report = store.verify_audit_chain().await.unwrap();
        assert!(report.is_intact(), "{column}: {report:?}");
    }
}

// ------------------------------------------------- migration from before resources

/// The last migration before requests had resources.
const BEFORE_RESOURCES: i64 = 20261201000002;

/// A `requests` row as the store wrote it before resources, field for
/// field: the JSON its format-2 audit events committed to.
#[derive(serde::Serialize)]
struct OldRow {
    id: String,
    email: String,
    reason: Option<String>,
    requested_at: i64,
    requested_by: String,
    status: String,
    approved_by: Option<String>,
    approved_at: Option<i64>,
    starts_at: Option<i64>,
    expires_at: Option<i64>,
    ended_by: Option<String>,
    ended_at: Option<i64>,
}

impl From<&Request> for OldRow {
    fn from(r: &Request) -> Self {
        let row = rows::RequestRow::from(r);
        OldRow {
            id: row.id,
            email: row.email,
            reason: row.reason,
            requested_at: row.requested_at,
            requested_by: row.requested_by,
            status: row.status,
            approved_by: row.approved_by,
            approved_at: row.approved_at,
            starts_at: row.starts_at,
            expires_at: row.expires_at,
            ended_by: row.ended_by,
            ended_at: row.ended_at,
        }
    }
}

/// `r` as the store before resources would have kept it: none of the new
/// fields but the reason, and no record of who approved beyond the grant.
fn as_before_resources(r: Request) -> Request {
    Request {
        resource: ResourceName::default(),
        ask: Ask {
            reason: r.ask.reason.clone(),
            ..Ask::default()
        },
        approvals: Vec::new(),
        extension: None,
        extensions: 0,
        comment: None,
        ..r
    }
}

/// Writes a database as the store left it before resources: the schema of
/// the migrations up to [`BEFORE_RESOURCES`] (recorded in
/// `_sqlx_migrations` by sqlx itself), request rows with only the old
/// columns, a format-1 event sealed on upgrade as the store did, then
/// format-2 events committing to old-format states, and the head. Returns
/// every request in its final state, as the new store should read it.
async fn database_before_resources(db: &TestDb) -> Vec<Request> {
    let (pool, next) = migrated_to(db, BEFORE_RESOURCES).await;
    assert_eq!(
        next,
        Some(20261202000001),
        "the next migration is the one adding resources"
    );

    let rules = Rules::default();
    let who = |n: &str| email(&format!("{n}@x.test"));
    let (alice, bob, carol, dave, erin) = (
        who("alice"),
        who("bob"),
        who("carol"),
        who("dave"),
        who("erin"),
    );
    let at = |m: i64| T0 + minutes(m);
    let d = |m| Some(GrantDuration::from_minutes(m).unwrap());
    // (format, transition): erin's request predates state commitments.
    let mut events: Vec<(i64, Transition)> = Vec::new();
    let mut push = |format, ts: Vec<Transition>| -> Request {
        let ts: Vec<_> = ts
            .into_iter()
            .map(|t| Transition {
                request: as_before_resources(t.request),
                ..t
            })
            .collect();
        let last = ts.last().unwrap().request.clone();
        events.extend(ts.into_iter().map(|t| (format, t)));
        last
    };
    let erin_pending = push(1, rules.request(None, &erin, text("old"), at(0)).unwrap());
    let alice_pending = push(
        2,
        rules.request(None, &alice, text("deploy"), at(1)).unwrap(),
    );
    let alice_active = push(
        2,
        rules
            .approve(Some(&alice_pending), &alice, &admin(), d(600), at(2))
            .unwrap(),
    );
    let bob_pending = push(2, rules.request(None, &bob, None, at(3)).unwrap());
    let carol_pending = push(2, rules.request(None, &carol, text("x"), at(4)).unwrap());
    let carol_rejected = push(
        2,
        rules
            .revoke(Some(&carol_pending), &carol, &admin(), None, at(5))
            .unwrap(),
    );
    let dave_pending = push(2, rules.request(None, &dave, None, at(6)).unwrap());
    let dave_active = push(
        2,
        rules
            .approve(Some(&dave_pending), &dave, &admin(), d(1), at(7))
            .unwrap(),
    );
    let dave_expired = push(2, rules.expire(Some(&dave_active), at(9)));
    let finals = vec![
        erin_pending.clone(),
        alice_active,
        bob_pending,
        carol_rejected,
        dave_expired,
    ];

    for r in &finals {
        let row = OldRow::from(r);
        sqlx::query(
            "INSERT INTO requests (id, email, reason, requested_at, requested_by, status, \
             approved_by, approved_at, starts_at, expires_at, ended_by, ended_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(row.id)
        .bind(row.email)
        .bind(row.reason)
        .bind(row.requested_at)
        .bind(row.requested_by)
        .bind(row.status)
        .bind(row.approved_by)
        .bind(row.approved_at)
        .bind(row.starts_at)
        .bind(row.expires_at)
        .bind(row.ended_by)
        .bind(row.ended_at)
        .execute(&pool)
        .await
        .unwrap();
    }

    // The old store sealed erin's request on its first start, before the
    // later decisions.
    let sealed = AuditEvent {
        at: at(0) + time::Duration::SECOND,
        actor: Actor::System,
        action: Action::Sealed,
        subject: erin.clone(),
        request_id: erin_pending.id,
        details: json!({}),
    };
    let mut rows_out = Vec::new();
    let mut hash = audit::GENESIS.to_owned();
    let mut seq = 0;
    let mut append = |format: i64, e: &AuditEvent, state: Option<&Request>| {
        seq += 1;
        let mut row = audit::AuditRow {
            seq,
            at: rows::millis(e.at),
            actor: e.actor.to_string(),
            action: e.action.as_str().to_owned(),
            subject: e.subject.to_string(),
            request_id: e.request_id.to_string(),
            details: e.details.to_string(),
            hash: String::new(),
            format,
            state: state.map(|r| serde_json::to_string(&OldRow::from(r)).unwrap()),
        };
        row.hash = row.chained_hash(&hash).unwrap();
        hash.clone_from(&row.hash);
        rows_out.push(row);
    };
    let (first, rest) = events.split_first().unwrap();
    append(first.0, &first.1.event, None);
    append(2, &sealed, Some(&erin_pending));
    for (format, t) in rest {
        append(*format, &t.event, Some(&t.request));
    }
    for row in &rows_out {
        // The old state JSON has none of the new fields.
        if let Some(state) = &row.state {
            assert!(!state.contains("resource"), "{state}");
        }
        sqlx::query(
            "INSERT INTO audit_events \
             (seq, at, actor, action, subject, request_id, details, hash, format, state) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(row.seq)
        .bind(row.at)
        .bind(&row.actor)
        .bind(&row.action)
        .bind(&row.subject)
        .bind(&row.request_id)
        .bind(&row.details)
        .bind(&row.hash)
        .bind(row.format)
        .bind(&row.state)
        .execute(&pool)
        .await
        .unwrap();
    }
    sqlx::query(
        "UPDATE store_head SET audit_seq = $1, audit_hash = $2, generation = $3, \
         states_sealed = 1 WHERE id = 1",
    )
    .bind(seq)
    .bind(&hash)
    .bind(seq - 1)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    finals
}

async fn databases_from_before_resources_keep_every_request_and_the_chain(db: TestDb) {
    let before = database_before_resources(&db).await;
    let store = db.store().await;

    // Every request is still there, unchanged, on the resource `default`.
    for r in &before {
        assert_eq!(store.request(r.id).await.unwrap().as_ref(), Some(r));
        assert_eq!(r.resource, here());
    }
    let (open_before, open_after): (Vec<_>, Vec<_>) = (
        before.iter().filter(|r| r.is_open()).cloned().collect(),
        store.open_requests_on(&here()).await.unwrap(),
    );
    assert_eq!(open_after, open_before);
    assert_eq!(
        store.open_resources().await.unwrap(),
        vec![("default".to_owned(), 3)]
    );

    // The chain and its replay are intact, and nothing was sealed again.
    let events = all_audit(&store).await.len() as u64;
    assert_eq!(events, 10);
    let report = store.verify_audit_chain().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(
        (report.verified, report.head_seq, report.requests_checked),
        (10, 10, 5)
    );
    assert_eq!(store.generation().await.unwrap(), 9);

    // New decisions work on the carried-over requests and on new resources.
    let rules = Rules::default();
    let (alice, bob, erin) = (
        email("alice@x.test"),
        email("bob@x.test"),
        email("erin@x.test"),
    );
    let approved = decided(&store, &rules, &bob, |open| {
        rules.approve(open, &bob, &admin(), None, T0 + minutes(20))
    })
    .await;
    assert_eq!(approved.id, before[2].id);
    assert_eq!(approved.state.status(), Status::Active);
    decided(&store, &rules, &alice, |open| {
        rules.revoke(open, &alice, &admin(), text("done"), T0 + minutes(21))
    })
    .await;
    decided(&store, &rules, &erin, |open| {
        rules.cancel(open, &erin, T0 + minutes(22))
    })
    .await;
    let ssh = on("ssh");
    decided(&store, &ssh, &bob, |open| {
        ssh.request(open, &bob, None, T0 + minutes(23))
    })
    .await;
    let report = store.verify_audit_chain().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!((report.verified, report.requests_checked), (14, 6));

    // A second start changes nothing.
    store.close().await;
    let again = db.store().await;
    assert_eq!(all_audit(&again).await.len(), 14);
    assert!(again.verify_audit_chain().await.unwrap().is_intact());
}
