//! History as people read it: audit events filtered by person, resource,
//! action and time, a page at a time, and the grants that were in force in
//! a window.
//!
//! Pages are cut by keyset on `seq` (never `OFFSET`), so a page stays put
//! while events are appended and each costs the same however deep it is.

use std::str::FromStr;

use jit_domain::{Action, Email, Request, ResourceName};
use time::OffsetDateTime;

use crate::audit::{AuditRecord, AuditRow};
use crate::requests::limit_i64;
use crate::rows::{RequestRow, into_requests, millis, select_requests};
use crate::{Store, StoreError};

/// Which events a history shows. Every field narrows it; the default
/// selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryFilter {
    /// Only events about this person's access (the event's subject).
    pub person: Option<Email>,
    /// Only events about requests for one of these resources (none of
    /// them if empty).
    pub resources: Option<Vec<ResourceName>>,
    pub action: Option<Action>,
    /// Only events at or after this instant.
    pub from: Option<OffsetDateTime>,
    /// Only events before this instant.
    pub to: Option<OffsetDateTime>,
}

/// Where a page of history starts. Pages run newest first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HistoryCursor {
    /// The newest events.
    #[default]
    Newest,
    /// The events just older than event `seq`.
    Before(u64),
    /// The events just newer than event `seq`.
    After(u64),
}

/// An audit event with the resource its request is for.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    pub record: AuditRecord,
    pub resource: ResourceName,
}

/// One page of history, newest first, with the cursors of its neighbours.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPage {
    pub entries: Vec<HistoryEntry>,
    /// The cursor of the next older page, if any event is older.
    pub older: Option<HistoryCursor>,
    /// The cursor of the next newer page, if any event is newer.
    pub newer: Option<HistoryCursor>,
}

/// Every [`AuditRow`] column and the request's resource, under the
/// filter's conditions (binding `$1`..`$5`), then `$tail`.
macro_rules! filtered {
    ($tail:literal) => {
        concat!(
            "SELECT e.seq, e.at, e.actor, e.action, e.subject, e.request_id, e.details, e.hash, \
             e.format, e.state, r.resource \
             FROM audit_events e JOIN requests r ON r.id = e.request_id \
             WHERE ($1 IS NULL OR e.subject = $1) AND ($2 IS NULL OR \
             length(replace($2, ',' || r.resource || ',', '')) < length($2)) \
             AND ($3 IS NULL OR e.action = $3) \
             AND ($4 IS NULL OR e.at >= $4) AND ($5 IS NULL OR e.at < $5) ",
            $tail
        )
    };
}

/// `resources` as one text to bind, `,a,b,`, which holds `,name,` exactly
/// for the names in it (names have no commas). The SQL asks whether
/// removing `,resource,` shortens it: plain text, no pattern, the same on
/// both backends, and one bind however many names.
pub(crate) fn resource_set(resources: Option<&[ResourceName]>) -> Option<String> {
    resources.map(|names| {
        let mut set = String::from(",");
        for n in names {
            set.push_str(n.as_str());
            set.push(',');
        }
        set
    })
}

/// An [`AuditRow`] and the resource of its request.
#[derive(Debug, sqlx::FromRow)]
struct EntryRow {
    #[sqlx(flatten)]
    event: AuditRow,
    resource: String,
}

impl EntryRow {
    fn into_entry(self) -> Result<HistoryEntry, StoreError> {
        let resource = ResourceName::from_str(&self.resource).map_err(|e| StoreError::Corrupt {
            table: "requests",
            key: self.event.request_id.clone(),
            column: "resource",
            value: self.resource.chars().take(200).collect(),
            problem: e.to_string(),
        })?;
        Ok(HistoryEntry {
            record: self.event.into_record()?,
            resource,
        })
    }
}

/// A keyset bound for SQL: `seq` values are positive `i64`s.
fn seq_i64(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

impl Store {
    /// A page of at most `limit` events that `filter` selects, newest
    /// first, starting at `cursor`.
    pub async fn history(
        &self,
        filter: &HistoryFilter,
        cursor: HistoryCursor,
        limit: usize,
    ) -> Result<HistoryPage, StoreError> {
        let fetch = limit.saturating_add(1);
        let (records, older, newer) = match cursor {
            HistoryCursor::Newest | HistoryCursor::Before(_) => {
                let bound = match cursor {
                    HistoryCursor::Before(seq) => seq_i64(seq),
                    _ => i64::MAX,
                };
                let mut records = self.older_than(filter, bound, fetch).await?;
                let more = records.len() > limit;
                records.truncate(limit);
                let older = records.last().filter(|_| more).map(|r| r.record.seq);
                // What is newer than this page: after its first event, or,
                // on an empty page, from the cursor on.
                let newest = records
                    .first()
                    .map_or((bound - 1).max(0), |r| seq_i64(r.record.seq));
                let newer = match cursor {
                    HistoryCursor::Newest => None,
                    _ => self
                        .newer_than(filter, newest, 1)
                        .await?
                        .first()
                        .map(|_| newest),
                };
                (records, older, newer)
            }
            HistoryCursor::After(seq) => {
                let bound = seq_i64(seq);
                let mut records = self.newer_than(filter, bound, fetch).await?;
                let more = records.len() > limit;
                records.truncate(limit);
                records.reverse();
                let newer = records
                    .first()
                    .filter(|_| more)
                    .map(|r| seq_i64(r.record.seq));
                let oldest = records
                    .last()
                    .map_or(bound.saturating_add(1), |r| seq_i64(r.record.seq));
                let older = self
                    .older_than(filter, oldest, 1)
                    .await?
                    .first()
                    .map(|_| oldest.unsigned_abs());
                (records, older, newer)
            }
        };
        Ok(HistoryPage {
            entries: records,
            older: older.map(HistoryCursor::Before),
            newer: newer.map(|s| HistoryCursor::After(s.unsigned_abs())),
        })
    }

    /// Events that `filter` selects with `seq < bound`, newest first.
    async fn older_than(
        &self,
        filter: &HistoryFilter,
        bound: i64,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        let sql = filtered!("AND e.seq < $6 ORDER BY e.seq DESC LIMIT $7");
        self.entries(sql, filter, bound, limit).await
    }

    /// Events that `filter` selects with `seq > bound`, oldest first.
    async fn newer_than(
        &self,
        filter: &HistoryFilter,
        bound: i64,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        let sql = filtered!("AND e.seq > $6 ORDER BY e.seq ASC LIMIT $7");
        self.entries(sql, filter, bound, limit).await
    }

    /// Runs one of the two page queries above with its binds.
    async fn entries(
        &self,
        sql: &'static str,
        filter: &HistoryFilter,
        bound: i64,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        let rows: Vec<EntryRow> = sqlx::query_as(sql)
            .bind(filter.person.as_ref().map(Email::as_str))
            .bind(resource_set(filter.resources.as_deref()))
            .bind(filter.action.map(Action::as_str))
            .bind(filter.from.map(millis))
            .bind(filter.to.map(millis))
            .bind(bound)
            .bind(limit_i64(limit))
            .fetch_all(&self.inner.pool)
            .await?;
        rows.into_iter().map(EntryRow::into_entry).collect()
    }

    /// Requests whose grant was in force at some moment of
    /// `[filter.from, filter.to)` (either end open when `None`), for the
    /// filter's person and resources if given (its action is not about
    /// grants): at most `limit`, by the start of their access. A grant
    /// revoked before its scheduled start was never in force and is left out.
    pub async fn grants_between(
        &self,
        filter: &HistoryFilter,
        limit: usize,
    ) -> Result<Vec<Request>, StoreError> {
        // A grant holds from its start (or approval) until it ended: the
        // revocation, or else the expiry (`ended_at` of an expired grant).
        let rows: Vec<RequestRow> = sqlx::query_as(select_requests!(
            "WHERE status IN ('active', 'expired', 'revoked') "
            "AND ($1 IS NULL OR email = $1) "
            "AND ($2 IS NULL OR length(replace($2, ',' || resource || ',', '')) < length($2)) "
            "AND COALESCE(ended_at, expires_at) > COALESCE(starts_at, approved_at) "
            "AND ($3 IS NULL OR COALESCE(ended_at, expires_at) > $3) "
            "AND ($4 IS NULL OR COALESCE(starts_at, approved_at) < $4) "
            "ORDER BY COALESCE(starts_at, approved_at), id LIMIT $5"
        ))
        .bind(filter.person.as_ref().map(Email::as_str))
        .bind(resource_set(filter.resources.as_deref()))
        .bind(filter.from.map(millis))
        .bind(filter.to.map(millis))
        .bind(limit_i64(limit))
        .fetch_all(&self.inner.pool)
        .await?;
        into_requests(rows).collect()
    }
}
