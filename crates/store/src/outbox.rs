//! The notification outbox: what to tell people, written in the same
//! transaction as the change it is about, so a committed decision is never
//! left untold and an aborted one never told.
//!
//! Every commit adds one `outbox` row per audit event (`audit:{seq}`); the
//! notifier adds one per coming expiry of a grant. The notifier, holding a
//! lease, *expands* each row once into `deliveries` (one rendered message per
//! channel and recipient, keyed by an idempotency key), then *claims* due
//! deliveries and sends them. Claiming pushes a delivery's next attempt past
//! a hold time in its own committed transaction, so two replicas never send
//! it at once, and one claimed by a process that died is sent again after the
//! hold (receivers drop the repeat by its key).

use std::time::Duration;

use jit_domain::{AuditEvent, Request, RequestId};
use time::OffsetDateTime;

use crate::audit::AuditRow;
use crate::rows::{RequestRow, from_millis, millis};
use crate::sync::Fence;
use crate::{Backend, Store, StoreError};

/// Identifies one outbox row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OutboxId(i64);

/// What an outbox row is about.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// A committed move, as the audit trail recorded it.
    Event { seq: u64, event: AuditEvent },
    /// The grant ending at `expires_at` ends soon.
    ExpirySoon { expires_at: OffsetDateTime },
}

/// One row to expand into deliveries.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    pub id: OutboxId,
    /// Unique per notice; the stem of its deliveries' idempotency keys.
    pub key: String,
    pub notice: Notice,
    /// The request as the event left it; for an expiry notice, as it is now.
    /// `None` if an expiry notice's request is gone.
    pub request: Option<Request>,
}

/// A message to send, as the notifier rendered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// The idempotency key: unique per notice, channel and recipient.
    pub key: String,
    pub channel: String,
    /// An email address, or empty for a channel with one destination.
    pub recipient: String,
    pub body: String,
}

/// A claimed delivery, to send now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub key: String,
    pub channel: String,
    pub recipient: String,
    pub body: String,
    /// Attempts so far, this one included.
    pub attempts: u32,
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Delivered,
    /// Failed; tried again at `retry_at`.
    Retry {
        error: String,
        retry_at: OffsetDateTime,
    },
    /// Failed for good (out of attempts, or refused as malformed).
    Dead {
        error: String,
    },
}

/// What the admin page shows of one channel.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChannelStatus {
    pub channel: String,
    /// Deliveries waiting to be sent (or retried).
    pub pending: u64,
    /// Deliveries given up on.
    pub dead: u64,
    pub last_success_at: Option<OffsetDateTime>,
    pub last_error: Option<(String, OffsetDateTime)>,
}

/// The prefix of an expiry notice's key; the rest is the request id and the
/// expiry in unix milliseconds, so each expiry of a grant (an extension
/// moves it) is warned about once.
const EXPIRY_KEY: &str = "expiry:";

/// Per channel: name, pending, dead, last delivery, last error's time.
type ChannelRow = (String, i64, i64, Option<i64>, Option<i64>);

#[derive(sqlx::FromRow)]
struct ItemRow {
    id: i64,
    key: String,
    kind: String,
    request_id: String,
    seq: Option<i64>,
    at: Option<i64>,
    actor: Option<String>,
    action: Option<String>,
    subject: Option<String>,
    event_request_id: Option<String>,
    details: Option<String>,
    hash: Option<String>,
    format: Option<i64>,
    state: Option<String>,
}

/// Adds one outbox row per audit event after `after` up to `last`, all on
/// `resource`: called by the commit that appended them, in its transaction.
pub(crate) async fn enqueue_events(
    tx: &mut sqlx::AnyConnection,
    resource: &str,
    after: i64,
    last: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO outbox (key, kind, audit_seq, request_id, resource, created_at) \
         SELECT 'audit:' || CAST(seq AS TEXT), 'audit', seq, request_id, $1, at \
         FROM audit_events WHERE seq > $2 AND seq <= $3",
    )
    .bind(resource)
    .bind(after)
    .bind(last)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

impl Backend {
    /// Claims up to `$3` due deliveries, pushing each one's next attempt to
    /// `$1` (the hold). PostgreSQL skips rows another transaction is
    /// claiming; SQLite's write lock serializes claims.
    fn claim_deliveries(self) -> &'static str {
        match self {
            Backend::Sqlite => {
                "UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = $1 \
                 WHERE key IN (SELECT key FROM deliveries WHERE status = 'pending' \
                 AND next_attempt_at <= $2 ORDER BY next_attempt_at, key LIMIT $3) \
                 RETURNING key, channel, recipient, body, attempts"
            }
            Backend::Postgres => {
                "UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = $1 \
                 WHERE key IN (SELECT key FROM deliveries WHERE status = 'pending' \
                 AND next_attempt_at <= $2 ORDER BY next_attempt_at, key LIMIT $3 \
                 FOR UPDATE SKIP LOCKED) \
                 RETURNING key, channel, recipient, body, attempts"
            }
        }
    }
}

impl Store {
    /// Adds an expiry notice for every active grant ending within `lead` of
    /// `now` that was granted for longer than `lead` (a shorter one would be
    /// warned about as it starts), once per grant and expiry, if `fence`
    /// still holds its lease. Returns how many were added.
    pub async fn enqueue_expiry_notices(
        &self,
        fence: &Fence,
        lead: Duration,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let lead = i64::try_from(lead.as_millis()).unwrap_or(i64::MAX);
        let now = millis(now);
        let mut tx = self.fenced(fence).await?;
        let added = sqlx::query(
            "INSERT INTO outbox (key, kind, audit_seq, request_id, resource, created_at) \
             SELECT 'expiry:' || id || ':' || CAST(expires_at AS TEXT), 'expiry', NULL, id, \
             resource, $1 FROM requests \
             WHERE status = 'active' AND expires_at > $1 AND expires_at <= $2 \
             AND expires_at - approved_at > $3 \
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(now)
        .bind(now.saturating_add(lead))
        .bind(lead)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(added.rows_affected())
    }

    /// Up to `limit` outbox rows not yet expanded, oldest first.
    pub async fn unexpanded(&self, limit: usize) -> Result<Vec<OutboxItem>, StoreError> {
        let rows: Vec<ItemRow> = sqlx::query_as(
            "SELECT o.id, o.key, o.kind, o.request_id, a.seq, a.at, a.actor, a.action, \
             a.subject, a.request_id AS event_request_id, a.details, a.hash, a.format, a.state \
             FROM outbox o LEFT JOIN audit_events a ON a.seq = o.audit_seq \
             WHERE o.expanded_at IS NULL ORDER BY o.id LIMIT $1",
        )
        .bind(crate::requests::limit_i64(limit))
        .fetch_all(&self.inner.pool)
        .await?;
        let mut items = Vec::with_capacity(rows.len());
        for row in rows {
            items.push(self.outbox_item(row).await?);
        }
        Ok(items)
    }

    async fn outbox_item(&self, row: ItemRow) -> Result<OutboxItem, StoreError> {
        let bad = |column: &'static str, value: &str, problem: &str| StoreError::Corrupt {
            table: "outbox",
            key: row.key.clone(),
            column,
            value: value.chars().take(200).collect(),
            problem: problem.into(),
        };
        let (notice, request) = match row.kind.as_str() {
            "audit" => {
                let (Some(seq), Some(at), Some(actor), Some(action), Some(subject)) =
                    (row.seq, row.at, &row.actor, &row.action, &row.subject)
                else {
                    return Err(bad("audit_seq", &row.key, "names no audit event"));
                };
                let audit = AuditRow {
                    seq,
                    at,
                    actor: actor.clone(),
                    action: action.clone(),
                    subject: subject.clone(),
                    request_id: row.event_request_id.clone().unwrap_or_default(),
                    details: row.details.clone().unwrap_or_default(),
                    hash: row.hash.clone().unwrap_or_default(),
                    format: row.format.unwrap_or_default(),
                    state: row.state.clone(),
                };
                let record = audit.into_record()?;
                // Events from before states were recorded carry none: such
                // an event is never in the outbox, which came later.
                let state = row
                    .state
                    .as_deref()
                    .ok_or_else(|| bad("audit_seq", &row.key, "names an event without state"))?;
                let state: RequestRow = serde_json::from_str(state)
                    .map_err(|_| bad("audit_seq", &row.key, "names an unreadable state"))?;
                (
                    Notice::Event {
                        seq: record.seq,
                        event: record.event,
                    },
                    Some(state.into_request()?),
                )
            }
            "expiry" => {
                let expires_at = row
                    .key
                    .strip_prefix(EXPIRY_KEY)
                    .and_then(|rest| rest.rsplit_once(':'))
                    .and_then(|(_, ms)| ms.parse().ok())
                    .and_then(from_millis)
                    .ok_or_else(|| bad("key", &row.key, "is not expiry:{id}:{millis}"))?;
                let id: RequestId = row
                    .request_id
                    .parse()
                    .map_err(|_| bad("request_id", &row.request_id, "is not a request id"))?;
                (Notice::ExpirySoon { expires_at }, self.request(id).await?)
            }
            other => return Err(bad("kind", other, "is not audit or expiry")),
        };
        Ok(OutboxItem {
            id: OutboxId(row.id),
            key: row.key,
            notice,
            request,
        })
    }

    /// Records `item`'s deliveries and marks it expanded, in one
    /// transaction, if `fence` still holds its lease. A delivery whose key
    /// exists already is kept as it is.
    pub async fn expand(
        &self,
        fence: &Fence,
        item: OutboxId,
        deliveries: &[NewDelivery],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let now = millis(now);
        let mut tx = self.fenced(fence).await?;
        for d in deliveries {
            sqlx::query(
                "INSERT INTO deliveries (key, outbox_id, channel, recipient, body, status, \
                 attempts, next_attempt_at) VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6) \
                 ON CONFLICT (key) DO NOTHING",
            )
            .bind(&d.key)
            .bind(item.0)
            .bind(&d.channel)
            .bind(&d.recipient)
            .bind(&d.body)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("UPDATE outbox SET expanded_at = $1 WHERE id = $2 AND expanded_at IS NULL")
            .bind(now)
            .bind(item.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Claims up to `limit` deliveries due at `now`, if `fence` still holds
    /// its lease: each is counted as an attempt and not due again before
    /// `now + hold`, unless [`Store::finish_delivery`] says otherwise.
    pub async fn claim_deliveries(
        &self,
        fence: &Fence,
        limit: usize,
        hold: Duration,
        now: OffsetDateTime,
    ) -> Result<Vec<Delivery>, StoreError> {
        let hold_until = now + hold;
        let mut tx = self.fenced(fence).await?;
        let rows: Vec<(String, String, String, String, i64)> =
            sqlx::query_as(self.inner.backend.claim_deliveries())
                .bind(millis(hold_until))
                .bind(millis(now))
                .bind(crate::requests::limit_i64(limit))
                .fetch_all(&mut *tx)
                .await?;
        tx.commit().await?;
        let mut claimed: Vec<Delivery> = rows
            .into_iter()
            .map(|(key, channel, recipient, body, attempts)| Delivery {
                key,
                channel,
                recipient,
                body,
                attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            })
            .collect();
        claimed.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(claimed)
    }

    /// Records how an attempt at the delivery `key` ended. A delivery
    /// already delivered stays delivered.
    pub async fn finish_delivery(
        &self,
        key: &str,
        attempt: &Attempt,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let now = millis(now);
        let query = match attempt {
            Attempt::Delivered => sqlx::query(
                "UPDATE deliveries SET status = 'delivered', delivered_at = $1 \
                 WHERE key = $2 AND status = 'pending'",
            )
            .bind(now),
            Attempt::Retry { error, retry_at } => sqlx::query(
                "UPDATE deliveries SET next_attempt_at = $1, last_error = $2, last_error_at = $3 \
                 WHERE key = $4 AND status = 'pending'",
            )
            .bind(millis(*retry_at))
            .bind(error.as_str())
            .bind(now),
            Attempt::Dead { error } => sqlx::query(
                "UPDATE deliveries SET status = 'dead', last_error = $1, last_error_at = $2 \
                 WHERE key = $3 AND status = 'pending'",
            )
            .bind(error.as_str())
            .bind(now),
        };
        query.bind(key).execute(&self.inner.pool).await?;
        Ok(())
    }

    /// Each channel that has deliveries, by name; and how many outbox rows
    /// wait to be expanded.
    pub async fn notification_status(&self) -> Result<(Vec<ChannelStatus>, u64), StoreError> {
        let rows: Vec<ChannelRow> = sqlx::query_as(
            "SELECT channel, SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), \
             SUM(CASE WHEN status = 'dead' THEN 1 ELSE 0 END), MAX(delivered_at), \
             MAX(last_error_at) FROM deliveries GROUP BY channel ORDER BY channel",
        )
        .fetch_all(&self.inner.pool)
        .await?;
        let mut channels = Vec::with_capacity(rows.len());
        for (channel, pending, dead, success, error_at) in rows {
            let last_error = match error_at.and_then(from_millis) {
                Some(at) => {
                    let error: Option<(String,)> = sqlx::query_as(
                        "SELECT last_error FROM deliveries WHERE channel = $1 \
                         AND last_error_at IS NOT NULL ORDER BY last_error_at DESC LIMIT 1",
                    )
                    .bind(&channel)
                    .fetch_optional(&self.inner.pool)
                    .await?;
                    error.map(|(e,)| (e, at))
                }
                None => None,
            };
            channels.push(ChannelStatus {
                channel,
                pending: pending.unsigned_abs(),
                dead: dead.unsigned_abs(),
                last_success_at: success.and_then(from_millis),
                last_error,
            });
        }
        let (unexpanded,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE expanded_at IS NULL")
                .fetch_one(&self.inner.pool)
                .await?;
        Ok((channels, unexpanded.unsigned_abs()))
    }

    /// Deletes deliveries that finished before `before` and expanded outbox
    /// rows older than it with no delivery left; returns how many rows went.
    pub async fn prune_notifications(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let before = millis(before);
        let deliveries = sqlx::query(
            "DELETE FROM deliveries WHERE status <> 'pending' \
             AND COALESCE(delivered_at, last_error_at, 0) < $1",
        )
        .bind(before)
        .execute(&self.inner.pool)
        .await?;
        let outbox = sqlx::query(
            "DELETE FROM outbox WHERE expanded_at IS NOT NULL AND expanded_at < $1 \
             AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.outbox_id = outbox.id)",
        )
        .bind(before)
        .execute(&self.inner.pool)
        .await?;
        Ok(deliveries.rows_affected() + outbox.rows_affected())
    }
}

/// Whether `request` still holds the grant an expiry notice about
/// `expires_at` was enqueued for: not ended, not extended meanwhile.
pub fn expiry_still_due(request: Option<&Request>, expires_at: OffsetDateTime) -> bool {
    request.is_some_and(|r| {
        matches!(&r.state, jit_domain::State::Active(g) if millis(g.expires_at) == millis(expires_at))
    })
}
