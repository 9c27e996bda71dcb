//! The audit trail protects what grants access: events commit to the state
//! they produce, verification replays them against `requests`, anchors show
//! a rewritten tail, older databases are sealed on upgrade, and read-only
//! opening never creates or migrates.

use super::*;

on_both_backends!(
    state_tampering_is_named_by_request_and_column,
    a_rewritten_tail_fails_against_an_old_anchor,
    databases_from_before_state_commitments_verify_and_are_sealed,
    read_only_open_refuses_what_is_missing_and_never_writes,
);

/// Turns off what stops a tamperer: the append-only triggers and the
/// foreign key from events to requests.
async fn disarm(store: &Store, backend: Backend) {
    let drops: &[&str] = match backend {
        Backend::Sqlite => &[
            "DROP TRIGGER audit_events_no_update",
            "DROP TRIGGER audit_events_no_delete",
        ],
        Backend::Postgres => &[
            "DROP TRIGGER audit_events_no_update_or_delete ON audit_events",
            "ALTER TABLE audit_events DROP CONSTRAINT audit_events_request_id_fkey",
        ],
    };
    for sql in drops {
        raw(store, sql).await.unwrap();
    }
}

/// Runs `sql` on one connection with SQLite's foreign keys off.
async fn raw_without_foreign_keys(store: &Store, sql: &str) {
    let mut conn = store.inner.pool.acquire().await.unwrap();
    if store.backend() == Backend::Sqlite {
        sqlx::query("PRAGMA foreign_keys = OFF")
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    sqlx::query(AssertSqlSafe(sql.to_owned()))
        .execute(&mut *conn)
        .await
        .unwrap();
    if store.backend() == Backend::Sqlite {
        sqlx::query("PRAGMA foreign_keys = ON")
            .execute(&mut *conn)
            .await
            .unwrap();
    }
}

fn mismatch(report: &ChainReport) -> StateMismatch {
    assert!(report.first_break.is_none(), "{report:?}");
    assert!(!report.is_intact());
    report.first_mismatch.clone().expect("a mismatch")
}

async fn state_tampering_is_named_by_request_and_column(db: TestDb) {
    let store = db.store().await;
    let (alice, bob) = (email("alice@x.test"), email("bob@x.test"));
    request(&store, &alice, T0).await.unwrap();
    let granted = approve(&store, &alice, 60, T0).await;
    let alice_id = granted.transitions[0].request.id.to_string();
    let bob_id = request(&store, &bob, T0).await.unwrap().transitions[0]
        .request
        .id
        .to_string();
    let report = store.verify_audit_chain().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!((report.verified, report.requests_checked), (3, 2));

    // A grant extended by a day behind the app's back.
    raw(
        &store,
        &format!("UPDATE requests SET expires_at = expires_at + 86400000 WHERE id = '{alice_id}'"),
    )
    .await
    .unwrap();
    let m = mismatch(&store.verify_audit_chain().await.unwrap());
    assert_eq!(m.request_id, alice_id);
    match &m.problem {
        MismatchProblem::Column {
            column,
            expected,
            found,
            seq,
        } => {
            assert_eq!((*column, *seq), ("expires_at", 2));
            assert_eq!(expected, "2026-11-28T13:00:00Z");
            assert_eq!(found, "2026-11-29T13:00:00Z");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        m.to_string(),
        format!(
            "table requests, request {alice_id}: column expires_at is 2026-11-29T13:00:00Z, but \
             audit event 2 says 2026-11-28T13:00:00Z"
        )
    );
    raw(
        &store,
        &format!("UPDATE requests SET expires_at = expires_at - 86400000 WHERE id = '{alice_id}'"),
    )
    .await
    .unwrap();
    assert!(store.verify_audit_chain().await.unwrap().is_intact());

    // A row deleted.
    disarm(&store, db.backend).await;
    raw_without_foreign_keys(
        &store,
        &format!("DELETE FROM requests WHERE id = '{bob_id}'"),
    )
    .await;
    let m = mismatch(&store.verify_audit_chain().await.unwrap());
    assert_eq!(
        (m.request_id.as_str(), &m.problem),
        (bob_id.as_str(), &MismatchProblem::Deleted { seq: 3 })
    );

    // A grant inserted with no event behind it.
    let forged = RequestId::new();
    raw(
        &store,
        &format!(
            "INSERT INTO requests (id, email, requested_at, requested_by, status, approved_by, \
             approved_at, expires_at) VALUES ('{forged}', 'mallory@x.test', 0, 'system', 'active', \
             'system', 0, 99999999999999)"
        ),
    )
    .await
    .unwrap();
    raw_without_foreign_keys(
        &store,
        &format!(
            "INSERT INTO requests (id, email, requested_at, requested_by, status) \
             VALUES ('{bob_id}', 'bob@x.test', {}, 'user:bob@x.test', 'pending')",
            rows::millis(T0)
        ),
    )
    .await;
    let m = mismatch(&store.verify_audit_chain().await.unwrap());
    assert_eq!(
        (m.request_id, m.problem),
        (forged.to_string(), MismatchProblem::Unrecorded)
    );
}

async fn a_rewritten_tail_fails_against_an_old_anchor(db: TestDb) {
    let store = db.store().await;
    for who in ["alice@x.test", "bob@x.test", "carol@x.test"] {
        request(&store, &email(who), T0).await.unwrap();
    }
    let anchor = store.verify_audit_chain().await.unwrap().head_hash;
    assert_eq!(store.find_audit_hash(&anchor).await.unwrap(), Some(3));
    let second = all_audit(&store).await[1].clone();
    assert_eq!(second.seq, 2);

    // Drop the newest event and its request, and point the head before it.
    disarm(&store, db.backend).await;
    let carol = store
        .request_for(&here(), &email("carol@x.test"))
        .await
        .unwrap();
    raw(&store, "DELETE FROM audit_events WHERE seq = 3")
        .await
        .unwrap();
    raw(
        &store,
        &format!("DELETE FROM requests WHERE id = '{}'", carol.unwrap().id),
    )
    .await
    .unwrap();
    raw(
        &store,
        &format!(
            "UPDATE store_head SET audit_seq = 2, audit_hash = '{}' WHERE id = 1",
            second.hash
        ),
    )
    .await
    .unwrap();

    // Undetectable from inside the database...
    let report = store.verify_audit_chain().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    // ...but the anchor kept elsewhere is gone from the chain.
    assert_eq!(store.find_audit_hash(&anchor).await.unwrap(), None);
    assert_eq!(store.find_audit_hash(&second.hash).await.unwrap(), Some(2));
}

/// A database as the version before state commitments left it: the first
/// migration only, and format-1 events.
async fn legacy_database(db: &TestDb) {
    // The first migration: the same version on both backends.
    let first = SQLITE_MIGRATIONS.iter().next().unwrap().version;
    let (pool, _) = migrated_to(db, first).await;

    let rules = Rules::default();
    let alice = email("alice@x.test");
    let mut ts = rules.request(None, &alice, None, T0).unwrap();
    let pending = ts[0].request.clone();
    ts.extend(
        rules
            .approve(Some(&pending), &alice, &admin(), None, T0)
            .unwrap(),
    );
    let row = rows::RequestRow::from(&ts[1].request);
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO requests (id, email, requested_at, requested_by, status, approved_by, \
         approved_at, expires_at) VALUES ('{}', '{}', {}, '{}', 'active', '{}', {}, {})",
        row.id,
        row.email,
        row.requested_at,
        row.requested_by,
        row.approved_by.unwrap(),
        row.approved_at.unwrap(),
        row.expires_at.unwrap()
    )))
    .execute(&pool)
    .await
    .unwrap();
    let mut hash = audit::GENESIS.to_owned();
    for (seq, t) in (1..).zip(&ts) {
        let e = &t.event;
        let mut v1 = audit::AuditRow {
            seq,
            at: rows::millis(e.at),
            actor: e.actor.to_string(),
            action: e.action.as_str().to_owned(),
            subject: e.subject.to_string(),
            request_id: e.request_id.to_string(),
            details: e.details.to_string(),
            hash: String::new(),
            format: 1,
            state: None,
        };
        v1.hash = v1.chained_hash(&hash).unwrap();
        sqlx::query(
            "INSERT INTO audit_events (seq, at, actor, action, subject, request_id, details, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(v1.seq)
        .bind(v1.at)
        .bind(v1.actor)
        .bind(v1.action)
        .bind(v1.subject)
        .bind(v1.request_id)
        .bind(v1.details)
        .bind(&v1.hash)
        .execute(&pool)
        .await
        .unwrap();
        hash = v1.hash;
    }
    sqlx::query(
        "UPDATE store_head SET audit_seq = 2, audit_hash = $1, generation = 1 WHERE id = 1",
    )
    .bind(&hash)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
}

async fn databases_from_before_state_commitments_verify_and_are_sealed(db: TestDb) {
    legacy_database(&db).await;
    assert!(matches!(
        Store::open_read_only(&db.url).await,
        Err(StoreError::Unmigrated { .. })
    ));
    let store = db.store().await;
    let events = all_audit(&store).await;
    assert_eq!(events.len(), 3);
    assert_eq!(
        (events[0].event.action, events[0].event.actor.clone()),
        (Action::Sealed, Actor::System)
    );
    let report = store.verify_audit_chain().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!((report.verified, report.requests_checked), (3, 1));

    // Sealing happens once: a second start adds nothing.
    drop(store);
    let store = db.store().await;
    assert_eq!(all_audit(&store).await.len(), 3);

    // The sealed state protects the grant like any later event.
    raw(
        &store,
        "UPDATE requests SET status = 'expired', ended_at = 1",
    )
    .await
    .unwrap();
    let m = mismatch(&store.verify_audit_chain().await.unwrap());
    assert!(
        matches!(
            m.problem,
            MismatchProblem::Column {
                column: "status",
                seq: 3,
                ..
            }
        ),
        "{m:?}"
    );
    // New decisions keep the chain whole across formats.
    raw(
        &store,
        "UPDATE requests SET status = 'active', ended_at = NULL",
    )
    .await
    .unwrap();
    store
        .decide(&here(), &email("alice@x.test"), |open| {
            Rules::default().revoke(open, &email("alice@x.test"), &admin(), None, T0)
        })
        .await
        .unwrap()
        .unwrap();
    assert!(store.verify_audit_chain().await.unwrap().is_intact());
}

async fn read_only_open_refuses_what_is_missing_and_never_writes(db: TestDb) {
    match Store::open_read_only(&db.url).await {
        Err(e @ StoreError::Missing { .. }) => {
            assert_eq!(db.backend, Backend::Sqlite);
            assert!(e.to_string().contains("DATABASE_URL"), "{e}");
            let file = db.url.trim_start_matches("sqlite://");
            assert!(!Path::new(file).exists(), "{file} was created");
        }
        Err(e @ StoreError::Unmigrated { .. }) => {
            assert_eq!(db.backend, Backend::Postgres);
            assert!(e.to_string().contains("no pomerium-jit schema"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    let store = db.store().await;
    request(&store, &email("alice@x.test"), T0).await.unwrap();
    store.close().await;

    let reader = Store::open_read_only(&db.url).await.unwrap();
    let report = reader.verify_audit_chain().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.verified, 1);
    assert_eq!(all_audit(&reader).await.len(), 1);
    let bob = email("bob@x.test");
    let refused = reader
        .decide(&here(), &bob, |open| {
            Rules::default().request(open, &bob, None, T0)
        })
        .await;
    assert!(refused.is_err(), "a read-only store wrote: {refused:?}");
}
