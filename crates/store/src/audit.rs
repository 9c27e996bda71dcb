//! The tamper-evident audit trail.
//!
//! Event `n` is stored with `hash_n = hex(SHA-256(hash_{n-1} ‖ canonical_n))`,
//! where `hash_0` is 64 zeros, `hash_{n-1}` enters as its 64 lowercase hex
//! characters, and `canonical_n` is the compact JSON array
//! `["jit-audit/1", seq, at_ms, actor, action, subject, request_id, details]`
//! built from the stored column values (`details` as its stored JSON text,
//! inside a JSON string). Anyone can recompute the chain from a database dump.
//! It detects edits and deletions; an attacker who can rewrite the whole table
//! can also recompute it, so the head should be copied elsewhere now and then.

use std::fmt;
use std::str::FromStr;

use jit_domain::{Action, Actor, AuditEvent, Email, RequestId};
use sha2::{Digest, Sha256};

use crate::requests::limit_i64;
use crate::rows::{from_millis, millis};
use crate::{Store, StoreError};

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

/// The outcome of walking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Events that were checked and found intact.
    pub verified: u64,
    /// The chain's end as recorded in the head row.
    pub head_seq: u64,
    pub head_hash: String,
    /// The first place the chain is broken, if it is.
    pub first_break: Option<ChainBreak>,
}

impl ChainReport {
    pub fn is_intact(&self) -> bool {
        self.first_break.is_none()
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
}

impl AuditRow {
    /// The row for `event` as number `seq`, chained to `prev_hash`.
    pub fn new(seq: i64, event: &AuditEvent, prev_hash: &str) -> Self {
        let mut row = AuditRow {
            seq,
            at: millis(event.at),
            actor: event.actor.to_string(),
            action: event.action.as_str().to_owned(),
            subject: event.subject.to_string(),
            request_id: event.request_id.to_string(),
            details: event.details.to_string(),
            hash: String::new(),
        };
        row.hash = row.chained_hash(prev_hash);
        row
    }

    /// The hash this row must carry if it follows `prev_hash`.
    pub fn chained_hash(&self, prev_hash: &str) -> String {
        let canonical = serde_json::json!([
            "jit-audit/1",
            self.seq,
            self.at,
            self.actor,
            self.action,
            self.subject,
            self.request_id,
            self.details,
        ]);
        let mut h = Sha256::new();
        h.update(prev_hash.as_bytes());
        h.update(canonical.to_string().as_bytes());
        hex(&h.finalize())
    }

    pub fn into_record(self) -> Result<AuditRecord, StoreError> {
        let key = self.seq.to_string();
        let bad = |column: &'static str, value: &str, problem: String| StoreError::Corrupt {
            table: "audit_events",
            key: key.clone(),
            column,
            value: value.chars().take(200).collect(),
            problem,
        };
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

fn hex(bytes: &[u8]) -> String {
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
        if row.chained_hash(&self.prev_hash) != row.hash {
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
            "SELECT seq, at, actor, action, subject, request_id, details, hash FROM audit_events ",
            $tail
        )
    };
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

    /// Walks the whole audit chain from the first event to the head and
    /// names the first event that is missing or altered. Events appended
    /// while it runs are left for the next walk.
    pub async fn verify_audit_chain(&self) -> Result<ChainReport, StoreError> {
        const PAGE: i64 = 1000;
        let head = self.head(&self.inner.pool).await?;
        let mut walker = ChainWalker::new();
        let mut first_break = None;
        'pages: loop {
            let rows: Vec<AuditRow> = sqlx::query_as(select_audit!(
                "WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3"
            ))
            .bind(walker.last_seq())
            .bind(head.audit_seq)
            .bind(PAGE)
            .fetch_all(&self.inner.pool)
            .await?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                if let Err(b) = walker.check(row) {
                    first_break = Some(b);
                    break 'pages;
                }
            }
        }
        let first_break =
            first_break.or_else(|| walker.finish(head.audit_seq, &head.audit_hash).err());
        Ok(ChainReport {
            verified: walker.last_seq().unsigned_abs(),
            head_seq: head.audit_seq.unsigned_abs(),
            head_hash: head.audit_hash,
            first_break,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
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

    #[test]
    fn hash_is_sha256_over_previous_hash_and_canonical_json() {
        let e = event();
        let row = AuditRow::new(1, &e, GENESIS);
        let canonical = format!(
            r#"["jit-audit/1",1,{},"user:admin@x.test","approved","alice@x.test","{}","{{\"expires_at\":\"2026-11-28T13:00:00Z\",\"duration\":\"1h\"}}"]"#,
            millis(e.at),
            e.request_id
        );
        let expected = hex(&Sha256::digest(format!("{GENESIS}{canonical}").as_bytes()));
        assert_eq!(row.hash, expected);
        assert_eq!(row.hash.len(), 64);
        assert_eq!(row.clone().into_record().unwrap().event, e);
    }

    #[test]
    fn every_field_and_the_predecessor_change_the_hash() {
        let e = event();
        let base = AuditRow::new(2, &e, GENESIS);
        let mut variants = vec![
            AuditRow::new(3, &e, GENESIS),
            AuditRow::new(2, &e, &"1".repeat(64)),
        ];
        for edit in [
            |r: &mut AuditRow| r.at += 1,
            |r: &mut AuditRow| r.actor.push('x'),
            |r: &mut AuditRow| r.action = "revoked".into(),
            |r: &mut AuditRow| r.subject = "bob@x.test".into(),
            |r: &mut AuditRow| r.request_id = RequestId::new().to_string(),
            |r: &mut AuditRow| r.details = "{}".into(),
        ] {
            let mut r = base.clone();
            edit(&mut r);
            r.hash = r.chained_hash(GENESIS);
            variants.push(r);
        }
        for v in variants {
            assert_ne!(v.hash, base.hash);
        }
    }

    #[test]
    fn walker_names_the_first_break() {
        let e = event();
        let r1 = AuditRow::new(1, &e, GENESIS);
        let r2 = AuditRow::new(2, &e, &r1.hash);
        let r3 = AuditRow::new(3, &e, &r2.hash);

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
