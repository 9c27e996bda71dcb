//! The tamper-evident audit trail.
//!
//! Event `n` is stored with `hash_n = hex(SHA-256(hash_{n-1} ‖ canonical_n))`,
//! where `hash_0` is 64 zeros, `hash_{n-1}` enters as its 64 lowercase hex
//! characters, and `canonical_n` is a compact JSON array of the stored
//! column values, by the event's `format`:
//!
//! - 2 (every event written since events commit to state):
//!   `["jit-audit/2", seq, at_ms, actor, action, subject, request_id, details, state]`,
//!   where `state` is the `requests` row the event left behind, as JSON;
//! - 1 (events written before): `["jit-audit/1", seq, at_ms, actor, action,
//!   subject, request_id, details]`.
//!
//! `details` and `state` enter as their stored JSON text, inside JSON
//! strings. Anyone can recompute the chain from a database dump.
//!
//! Verifying walks the chain and then replays it: each request's row must
//! equal the state its last format-2 event committed to, and every row needs
//! one, so a grant edited, inserted or deleted in `requests` is named. The
//! first start after the upgrade appends a [`Action::Sealed`] event per older
//! request, committing to its row as found. What this cannot catch: someone
//! who can write the database may recompute the whole chain, or append
//! forged events (visible in the trail); removing the newest events and
//! rewriting the head shows only against a head hash kept elsewhere, which
//! the store logs as `audit head` now and then (`audit verify --anchor`).

mod replay;

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};

use jit_domain::{Action, Actor, AuditEvent, Email, RequestId};
use serde_json::json;
use sqlx::AnyConnection;
use time::OffsetDateTime;

pub use replay::{MismatchProblem, StateMismatch};

use crate::location::Backend;
use crate::requests::limit_i64;
use crate::rows::{RequestRow, from_millis, millis, select_requests};
use crate::{Head, Store, StoreError, next_count};
use replay::Replay;

/// The hash before the first event.
pub(crate) const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One stored event with its place in the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub seq: u64,
    pub event: AuditEvent,
    /// Hex SHA-256 chaining this event to all before it.
    pub hash: String,
}

/// Which events [`Store::audit`](crate::Store::audit) returns: newest first,
/// at most `limit`, optionally only about one person and only older than a
/// sequence number (for paging back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    pub subject: Option<Email>,
    pub before: Option<u64>,
    pub limit: usize,
}

impl AuditQuery {
    /// The newest `limit` events about anyone.
    pub fn latest(limit: usize) -> Self {
        Self {
            subject: None,
            before: None,
            limit,
        }
    }
}

/// The outcome of walking the whole chain and replaying it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Events that were checked and found intact.
    pub verified: u64,
    /// The chain's end as recorded in the head row.
    pub head_seq: u64,
    pub head_hash: String,
    /// The first place the chain is broken, if it is.
    pub first_break: Option<ChainBreak>,
    /// Rows of `requests` compared with the trail (none if the chain is broken).
    pub requests_checked: u64,
    /// The first row that differs from what the trail says, if one does.
    pub first_mismatch: Option<StateMismatch>,
}

impl ChainReport {
    pub fn is_intact(&self) -> bool {
        self.first_break.is_none() && self.first_mismatch.is_none()
    }

    /// What is wrong, in one sentence, if anything is.
    pub fn problem(&self) -> Option<String> {
        self.first_break
            .map(|b| b.to_string())
            .or_else(|| self.first_mismatch.as_ref().map(ToString::to_string))
    }
}

/// Where and how the chain is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainBreak {
    pub seq: u64,
    pub problem: ChainProblem,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainProblem {
    /// The event's stored hash does not match its contents and predecessor:
    /// it (or its hash) was edited, or an event before it was replaced.
    Altered,
    /// The event is missing: deleted, or the table was truncated.
    Missing,
    /// The chain's last hash differs from the one in the head row.
    HeadMismatch,
}

impl fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seq = self.seq;
        match self.problem {
            ChainProblem::Altered => write!(
                f,
                "audit event {seq} was altered: its hash does not match its contents"
            ),
            ChainProblem::Missing => write!(f, "audit event {seq} is missing"),
            ChainProblem::HeadMismatch => write!(
                f,
                "the audit chain ends at event {seq} with a hash other than the recorded head"
            ),
        }
    }
}

/// One row of `audit_events`, as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct AuditRow {
    pub seq: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub request_id: String,
    pub details: String,
    pub hash: String,
    pub format: i64,
    /// The request row this event left behind, as JSON (format 2).
    pub state: Option<String>,
}

impl AuditRow {
    /// The row for `event` as number `seq`, committing to `state` (the
    /// request row it leaves behind), chained to `prev_hash`.
    pub fn new(seq: i64, event: &AuditEvent, state: &RequestRow, prev_hash: &str) -> Self {
        let state = serde_json::to_string(state).expect("strings and integers serialize");
        let mut row = AuditRow {
            seq,
            at: millis(event.at),
            actor: event.actor.to_string(),
            action: event.action.as_str().to_owned(),
            subject: event.subject.to_string(),
            request_id: event.request_id.to_string(),
            details: event.details.to_string(),
            hash: String::new(),
            format: 2,
            state: Some(state),
        };
        row.hash = row
            .chained_hash(prev_hash)
            .expect("format 2 with a state has a hash");
        row
    }

    /// The hash this row must carry if it follows `prev_hash`; `None` if
    /// its format is unknown or does not match its columns.
    pub fn chained_hash(&self, prev_hash: &str) -> Option<String> {
        let (seq, at) = (self.seq, self.at);
        let (actor, action, subject) = (&self.actor, &self.action, &self.subject);
        let (request_id, details) = (&self.request_id, &self.details);
        let canonical = match (self.format, &self.state) {
            (1, None) => {
                json!([
                    "jit-audit/1",
                    seq,
                    at,
                    actor,
                    action,
                    subject,
                    request_id,
                    details
                ])
            }
            (2, Some(state)) => json!([
                "jit-audit/2",
                seq,
                at,
                actor,
                action,
                subject,
                request_id,
                details,
                state
            ]),
            _ => return None,
        };
        let mut h = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        h.update(prev_hash.as_bytes());
        h.update(canonical.to_string().as_bytes());
        Some(hex(h.finish().as_ref()))
    }

    fn corrupt(&self, column: &'static str, value: &str, problem: String) -> StoreError {
        StoreError::Corrupt {
            table: "audit_events",
            key: self.seq.to_string(),
            column,
            value: value.chars().take(200).collect(),
            problem,
        }
    }

    pub fn into_record(self) -> Result<AuditRecord, StoreError> {
        let bad = |column, value: &str, problem| self.corrupt(column, value, problem);
        let event = AuditEvent {
            at: from_millis(self.at).ok_or_else(|| {
                bad(
                    "at",
                    &self.at.to_string(),
                    "is not a representable time".into(),
                )
            })?,
            actor: Actor::from_str(&self.actor).map_err(|e| bad("actor", &self.actor, e))?,
            action: Action::from_str(&self.action).map_err(|e| bad("action", &self.action, e))?,
            subject: Email::parse(&self.subject)
                .map_err(|e| bad("subject", &self.subject, e.to_string()))?,
            request_id: RequestId::from_str(&self.request_id)
                .map_err(|e| bad("request_id", &self.request_id, e.to_string()))?,
            details: serde_json::from_str(&self.details)
                .map_err(|e| bad("details", &self.details, format!("is not JSON ({e})")))?,
        };
        let seq = u64::try_from(self.seq)
            .map_err(|_| bad("seq", &self.seq.to_string(), "is negative".into()))?;
        Ok(AuditRecord {
            seq,
            event,
            hash: self.hash,
        })
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0xf)]])
        .map(char::from)
        .collect()
}

/// Walks rows in `seq` order and finds the first break.
#[derive(Debug)]
pub(crate) struct ChainWalker {
    /// The last sequence number found intact (0 before the first).
    last_seq: i64,
    prev_hash: String,
}

impl ChainWalker {
    pub fn new() -> Self {
        Self {
            last_seq: 0,
            prev_hash: GENESIS.to_owned(),
        }
    }

    pub fn last_seq(&self) -> i64 {
        self.last_seq
    }

    fn broken(&self, seq: i64, problem: ChainProblem) -> ChainBreak {
        ChainBreak {
            seq: seq.unsigned_abs(),
            problem,
        }
    }

    /// Checks the next row; `Err` names the first break.
    pub fn check(&mut self, row: &AuditRow) -> Result<(), ChainBreak> {
        let expected = self.last_seq + 1;
        if row.seq != expected {
            return Err(self.broken(expected, ChainProblem::Missing));
        }
        if row.chained_hash(&self.prev_hash).as_ref() != Some(&row.hash) {
            return Err(self.broken(expected, ChainProblem::Altered));
        }
        self.last_seq = expected;
        self.prev_hash.clone_from(&row.hash);
        Ok(())
    }

    /// Checks that the walk ended where the head row says the chain ends.
    pub fn finish(&self, head_seq: i64, head_hash: &str) -> Result<(), ChainBreak> {
        if self.last_seq < head_seq {
            return Err(self.broken(self.last_seq + 1, ChainProblem::Missing));
        }
        if self.prev_hash != head_hash {
            return Err(self.broken(self.last_seq, ChainProblem::HeadMismatch));
        }
        Ok(())
    }
}

/// `SELECT` of every [`AuditRow`] column, then `$tail`.
macro_rules! select_audit {
    ($tail:literal) => {
        concat!(
            "SELECT seq, at, actor, action, subject, request_id, details, hash, format, state \
             FROM audit_events ",
            $tail
        )
    };
}

/// Appends one event per `(event, the request row it leaves behind)` after
/// the chain's end `seq`/`hash`, inside the caller's write transaction;
/// returns the new end. The caller updates the head row.
pub(crate) async fn append_events(
    conn: &mut AnyConnection,
    mut seq: i64,
    mut hash: String,
    events: Vec<(&AuditEvent, RequestRow)>,
) -> Result<(i64, String), StoreError> {
    for (event, state) in events {
        seq = next_count("audit_seq", seq)?;
        let row = AuditRow::new(seq, event, &state, &hash);
        sqlx::query(
            "INSERT INTO audit_events \
             (seq, at, actor, action, subject, request_id, details, hash, format, state) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(row.seq)
        .bind(row.at)
        .bind(row.actor)
        .bind(row.action)
        .bind(row.subject)
        .bind(row.request_id)
        .bind(row.details)
        .bind(&row.hash)
        .bind(row.format)
        .bind(row.state)
        .execute(&mut *conn)
        .await?;
        hash = row.hash;
    }
    Ok((seq, hash))
}

/// Events between two `audit head` log lines, at most.
const ANNOUNCE_EVERY: i64 = 100;
/// Seconds after which the next commit logs the head again.
const ANNOUNCE_AFTER_SECS: i64 = 60;

/// Logs the committed head as an anchor when the chain has grown past a
/// multiple of [`ANNOUNCE_EVERY`] or a minute has passed since the last line:
/// a copy outside the database, cheap at any commit rate.
pub(crate) fn announce_head(before: i64, seq: i64, hash: &str) {
    static LAST: AtomicI64 = AtomicI64::new(i64::MIN);
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let crossed = before / ANNOUNCE_EVERY != seq / ANNOUNCE_EVERY;
    let last = LAST.load(Ordering::Relaxed);
    if crossed || now.saturating_sub(last) >= ANNOUNCE_AFTER_SECS {
        LAST.store(now, Ordering::Relaxed);
        log_head(seq, hash);
    }
}

pub(crate) fn log_head(seq: i64, hash: &str) {
    tracing::info!(
        audit_seq = seq,
        audit_hash = hash,
        "audit head (keep it: `pomerium-jit audit verify --anchor HASH` shows whether later events were removed)"
    );
}

impl Backend {
    /// Starts a read-only transaction that sees one snapshot throughout, so
    /// a walk and a replay agree with each other while writers go on.
    fn begin_snapshot(self) -> &'static str {
        match self {
            // A deferred transaction's first read fixes its WAL snapshot.
            Backend::Sqlite => "BEGIN",
            Backend::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        }
    }
}

impl Store {
    /// Audit events, newest first, as `query` selects them.
    pub async fn audit(&self, query: AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let before = query
            .before
            .map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX));
        let rows: Vec<AuditRow> = sqlx::query_as(select_audit!(
            "WHERE ($1 IS NULL OR subject = $1) AND seq < $2 ORDER BY seq DESC LIMIT $3"
        ))
        .bind(query.subject.as_ref().map(Email::as_str))
        .bind(before)
        .bind(limit_i64(query.limit))
        .fetch_all(&self.inner.pool)
        .await?;
        rows.into_iter().map(AuditRow::into_record).collect()
    }

    /// The end of the chain as the head row records it: sequence number and hash.
    pub async fn audit_head(&self) -> Result<(u64, String), StoreError> {
        let head = self.head(&self.inner.pool).await?;
        Ok((head.audit_seq.unsigned_abs(), head.audit_hash))
    }

    /// The sequence number of the event carrying `hash`, if one does: with
    /// an intact chain, proof that no event up to it was removed.
    pub async fn find_audit_hash(&self, hash: &str) -> Result<Option<u64>, StoreError> {
        let seq: Option<(i64,)> = sqlx::query_as("SELECT seq FROM audit_events WHERE hash = $1")
            .bind(hash.trim().to_ascii_lowercase())
            .fetch_optional(&self.inner.pool)
            .await?;
        Ok(seq.map(|(s,)| s.unsigned_abs()))
    }

    /// Walks the whole audit chain from the first event to the head and
    /// names the first event that is missing or altered; if it is intact,
    /// replays it and names the first row of `requests` that differs from
    /// what the trail says. Reads one snapshot: events appended meanwhile
    /// are left for the next walk.
    pub async fn verify_audit_chain(&self) -> Result<ChainReport, StoreError> {
        const PAGE: i64 = 1000;
        let mut tx = self
            .inner
            .pool
            .begin_with(self.inner.backend.begin_snapshot())
            .await?;
        let head = self.head(&mut *tx).await?;
        let mut walker = ChainWalker::new();
        let mut replay = Replay::default();
        let mut first_break = None;
        'pages: loop {
            let rows: Vec<AuditRow> = sqlx::query_as(select_audit!(
                "WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3"
            ))
            .bind(walker.last_seq())
            .bind(head.audit_seq)
            .bind(PAGE)
            .fetch_all(&mut *tx)
            .await?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                if let Err(b) = walker.check(row) {
                    first_break = Some(b);
                    break 'pages;
                }
                replay.record(row)?;
            }
        }
        let first_break =
            first_break.or_else(|| walker.finish(head.audit_seq, &head.audit_hash).err());
        let (requests_checked, first_mismatch) = match first_break {
            Some(_) => (0, None),
            None => compare_requests(&mut tx, replay).await?,
        };
        tx.rollback().await?;
        Ok(ChainReport {
            verified: walker.last_seq().unsigned_abs(),
            head_seq: head.audit_seq.unsigned_abs(),
            head_hash: head.audit_hash,
            first_break,
            requests_checked,
            first_mismatch,
        })
    }

    /// Once, on the first start after the upgrade: appends a
    /// [`Action::Sealed`] event for every request, committing to its row as
    /// found, since older events did not record state. Logs the head.
    pub(crate) async fn seal_unrecorded_states(&self) -> Result<(), StoreError> {
        let backend = self.inner.backend;
        let _writer = self.inner.writer.lock().await;
        let mut tx = self.inner.pool.begin_with(backend.begin_write()).await?;
        let head = Head::read(&mut *tx, backend.lock_head()).await?;
        let (sealed,): (i64,) = sqlx::query_as("SELECT states_sealed FROM store_head WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        if sealed != 0 {
            tx.rollback().await?;
            log_head(head.audit_seq, &head.audit_hash);
            return Ok(());
        }
        let rows: Vec<RequestRow> = sqlx::query_as(select_requests!("ORDER BY requested_at, id"))
            .fetch_all(&mut *tx)
            .await?;
        let now = OffsetDateTime::now_utc();
        let mut events = Vec::with_capacity(rows.len());
        for row in rows {
            let request = row.clone().into_request()?;
            let event = AuditEvent {
                at: now,
                actor: Actor::System,
                action: Action::Sealed,
                subject: request.email,
                request_id: request.id,
                details: json!({}),
            };
            events.push((event, row));
        }
        let (seq, hash) = append_events(
            &mut tx,
            head.audit_seq,
            head.audit_hash,
            events.iter().map(|(e, row)| (e, row.clone())).collect(),
        )
        .await?;
        sqlx::query(
            "UPDATE store_head SET audit_seq = $1, audit_hash = $2, states_sealed = 1 WHERE id = 1",
        )
        .bind(seq)
        .bind(&hash)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if !events.is_empty() {
            tracing::info!(
                requests = events.len(),
                "recorded the state of every request written before audit events committed to state"
            );
        }
        log_head(seq, &hash);
        Ok(())
    }
}

/// Reads `requests` a page at a time and compares each row with what the
/// trail says; returns how many rows were read and the first mismatch.
async fn compare_requests(
    conn: &mut AnyConnection,
    mut replay: Replay,
) -> Result<(u64, Option<StateMismatch>), StoreError> {
    const PAGE: i64 = 1000;
    let mut after = String::new();
    let mut checked = 0u64;
    loop {
        let rows: Vec<RequestRow> =
            sqlx::query_as(select_requests!("WHERE id > $1 ORDER BY id LIMIT $2"))
                .bind(&after)
                .bind(PAGE)
                .fetch_all(&mut *conn)
                .await?;
        let Some(last) = rows.last() else { break };
        after.clone_from(&last.id);
        for row in &rows {
            checked += 1;
            if let Some(m) = replay.compare(row) {
                return Ok((checked, Some(m)));
            }
        }
    }
    Ok((checked, replay.first_deleted()))
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use jit_domain::{Ask, Grant, Request, ResourceName, State};
    use time::macros::datetime;

    use super::*;

    fn event() -> AuditEvent {
        AuditEvent {
            at: datetime!(2026-11-28 12:00:00.5 UTC),
            actor: Actor::User(Email::parse("admin@x.test").unwrap()),
            action: Action::Approved,
            subject: Email::parse("alice@x.test").unwrap(),
            request_id: RequestId::new(),
            details: json!({ "expires_at": "2026-11-28T13:00:00Z", "duration": "1h" }),
        }
    }

    /// The request row `event()` leaves behind.
    fn state(e: &AuditEvent) -> RequestRow {
        RequestRow::from(&Request {
            id: e.request_id,
            resource: ResourceName::default(),
            email: e.subject.clone(),
            ask: Ask::default(),
            requested_at: datetime!(2026-11-28 11:00 UTC),
            requested_by: Actor::User(e.subject.clone()),
            state: State::Active(Grant {
                approved_by: e.actor.clone(),
                approved_at: e.at,
                starts_at: None,
                expires_at: datetime!(2026-11-28 13:00 UTC),
            }),
            approvals: Vec::new(),
            extension: None,
            extensions: 0,
            comment: None,
        })
    }

    fn row(seq: i64, e: &AuditEvent, prev: &str) -> AuditRow {
        AuditRow::new(seq, e, &state(e), prev)
    }

    #[test]
    fn hash_is_sha256_over_previous_hash_and_canonical_json() {
        let e = event();
        let row = row(1, &e, GENESIS);
        let state = row.state.clone().unwrap();
        assert!(state.starts_with(&format!(
            r#"{{"id":"{}","email":"alice@x.test","#,
            e.request_id
        )));
        assert!(state.contains(r#""status":"active""#), "{state}");
        let canonical = format!(
            r#"["jit-audit/2",1,{},"user:admin@x.test","approved","alice@x.test","{}","{{\"expires_at\":\"2026-11-28T13:00:00Z\",\"duration\":\"1h\"}}",{}]"#,
            millis(e.at),
            e.request_id,
            serde_json::Value::String(state),
        );
        let expected = hex(&Sha256::digest(format!("{GENESIS}{canonical}").as_bytes()));
        assert_eq!(row.hash, expected);
        assert_eq!(row.hash.len(), 64);
        assert_eq!(row.clone().into_record().unwrap().event, e);
    }

    #[test]
    fn format_1_rows_hash_as_before_and_formats_cannot_be_swapped() {
        let e = event();
        let mut v1 = row(1, &e, GENESIS);
        (v1.format, v1.state) = (1, None);
        let canonical = format!(
            r#"["jit-audit/1",1,{},"user:admin@x.test","approved","alice@x.test","{}","{{\"expires_at\":\"2026-11-28T13:00:00Z\",\"duration\":\"1h\"}}"]"#,
            millis(e.at),
            e.request_id
        );
        let expected = hex(&Sha256::digest(format!("{GENESIS}{canonical}").as_bytes()));
        assert_eq!(v1.chained_hash(GENESIS), Some(expected));
        // A format-2 row stripped of its state, or a format-1 row given one,
        // has no valid hash at all.
        let mut stripped = row(1, &e, GENESIS);
        stripped.state = None;
        assert_eq!(stripped.chained_hash(GENESIS), None);
        v1.state = Some("{}".into());
        assert_eq!(v1.chained_hash(GENESIS), None);
    }

    #[test]
    fn every_field_and_the_predecessor_change_the_hash() {
        let e = event();
        let base = row(2, &e, GENESIS);
        let mut variants = vec![row(3, &e, GENESIS), row(2, &e, &"1".repeat(64))];
        for edit in [
            |r: &mut AuditRow| r.at += 1,
            |r: &mut AuditRow| r.actor.push('x'),
            |r: &mut AuditRow| r.action = "revoked".into(),
            |r: &mut AuditRow| r.subject = "bob@x.test".into(),
            |r: &mut AuditRow| r.request_id = RequestId::new().to_string(),
            |r: &mut AuditRow| r.details = "{}".into(),
            |r: &mut AuditRow| {
                r.state = r.state.as_ref().map(|s| s.replace("active", "expired"));
            },
        ] {
            let mut r = base.clone();
            edit(&mut r);
            r.hash = r.chained_hash(GENESIS).unwrap();
            variants.push(r);
        }
        for v in variants {
            assert_ne!(v.hash, base.hash);
        }
    }

    #[test]
    fn walker_names_the_first_break() {
        let e = event();
        let r1 = row(1, &e, GENESIS);
        let r2 = row(2, &e, &r1.hash);
        let r3 = row(3, &e, &r2.hash);

        let mut w = ChainWalker::new();
        for r in [&r1, &r2, &r3] {
            w.check(r).unwrap();
        }
        w.finish(3, &r3.hash).unwrap();
        assert_eq!(
            w.finish(4, &r3.hash).unwrap_err(),
            ChainBreak {
                seq: 4,
                problem: ChainProblem::Missing
            }
        );
        assert_eq!(
            w.finish(3, GENESIS).unwrap_err(),
            ChainBreak {
                seq: 3,
                problem: ChainProblem::HeadMismatch
            }
        );

        let mut w = ChainWalker::new();
        w.check(&r1).unwrap();
        assert_eq!(w.check(&r3).unwrap_err().problem, ChainProblem::Missing);

        let mut tampered = r2.clone();
        tampered.details = r#"{"expires_at":"2030-01-01T00:00:00Z"}"#.into();
        let mut w = ChainWalker::new();
        w.check(&r1).unwrap();
        assert_eq!(
            w.check(&tampered).unwrap_err(),
            ChainBreak {
                seq: 2,
                problem: ChainProblem::Altered
            }
        );
    }
}
