use std::time::Duration;

use time::OffsetDateTime;

use crate::packed;
use crate::rows::{from_millis, millis};
use crate::{Backend, Store, StoreError};

/// How long an intent whose write was never answered is still taken as
/// the app's own: a write cut off by a timeout, a dropped connection or a
/// paused replica can land in Zero long after it was sent. Settled intents
/// are pruned once they are older than this.
pub const INTENT_RETENTION: Duration = Duration::from_secs(15 * 60);

/// At most this many unsettled intents are kept per policy.
const MAX_INTENTS: i64 = 64;

/// Proof of holding a lease: its name, holder and epoch (fencing token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    lease: String,
    holder: String,
    epoch: i64,
}

impl Fence {
    /// The fencing token: grows by one each time the lease changes hands.
    pub fn epoch(&self) -> u64 {
        self.epoch.unsigned_abs()
    }
}

/// What a successful sync records as the base.
#[derive(Debug, Clone, Copy)]
pub enum Applied<'a> {
    /// This text (Zero was found holding it: the base already, or the same
    /// document stored in another form).
    Text(&'a str),
    /// The text of this recorded intent, which the success settles.
    Intent(IntentId),
}

/// Identifies one recorded intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntentId(i64);

/// PPL the reconciler recorded before writing it to Zero.
#[derive(Debug, Clone, PartialEq)]
pub struct Intent {
    pub id: IntentId,
    /// The PPL as JSON text.
    pub ppl: String,
    /// The store generation the PPL was rendered from.
    pub generation: u64,
    /// The fencing token of the writer that recorded it.
    pub epoch: u64,
    pub created_at: OffsetDateTime,
}

/// The SHA-256 of a text, in hex: how a sync learns that Zero holds
/// exactly the base without reading the base itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextDigest(pub(crate) String);

impl TextDigest {
    pub fn of(text: &str) -> Self {
        Self(crate::audit::hex(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes()).as_ref(),
        ))
    }

    /// A digest as stored: 64 lowercase hex digits.
    fn parse(text: String) -> Result<Self, String> {
        if text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Self(text))
        } else {
            Err(text)
        }
    }
}

/// What the reconciler remembers about one Pomerium Zero policy.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SyncState {
    pub policy_name: String,
    /// The policy's id in Zero, once found or created. The PPL last
    /// applied is not part of this (a megabyte at thousands of grants, and
    /// only a sync needs it): [`Store::sync_base`].
    pub policy_id: Option<String>,
    /// The digest of the PPL last applied; `None` before the first success,
    /// and for a base recorded before digests were.
    pub base_digest: Option<TextDigest>,
    /// The highest store generation known to be in the policy.
    pub applied_generation: u64,
    pub last_attempt_at: Option<OffsetDateTime>,
    pub last_success_at: Option<OffsetDateTime>,
    /// Why the last attempt failed; cleared by a success.
    pub last_error: Option<String>,
}

#[derive(Debug, sqlx::FromRow)]
struct SyncRow {
    policy_name: String,
    policy_id: Option<String>,
    base_digest: Option<String>,
    applied_generation: i64,
    last_attempt_at: Option<i64>,
    last_success_at: Option<i64>,
    last_error: Option<String>,
}

impl SyncRow {
    fn into_state(self) -> Result<SyncState, StoreError> {
        let key = self.policy_name.clone();
        let bad = |column: &'static str, value: String, problem: String| StoreError::Corrupt {
            table: "sync_state",
            key: key.clone(),
            column,
            value: value.chars().take(200).collect(),
            problem,
        };
        let when = |column: &'static str, v: Option<i64>| {
            v.map(|ms| {
                from_millis(ms).ok_or_else(|| {
                    bad(column, ms.to_string(), "is not a representable time".into())
                })
            })
            .transpose()
        };
        Ok(SyncState {
            applied_generation: u64::try_from(self.applied_generation).map_err(|_| {
                bad(
                    "applied_generation",
                    self.applied_generation.to_string(),
                    "is negative".into(),
                )
            })?,
            base_digest: self
                .base_digest
                .map(|d| {
                    TextDigest::parse(d)
                        .map_err(|d| bad("base_digest", d, "is not a SHA-256 in hex".into()))
                })
                .transpose()?,
            last_attempt_at: when("last_attempt_at", self.last_attempt_at)?,
            last_success_at: when("last_success_at", self.last_success_at)?,
            policy_name: self.policy_name,
            policy_id: self.policy_id,
            last_error: self.last_error,
        })
    }
}

impl Store {
    /// What the reconciler last recorded for `policy_name`; a fresh state
    /// (nothing applied, generation 0) if it never has.
    pub async fn sync_state(&self, policy_name: &str) -> Result<SyncState, StoreError> {
        let row: Option<SyncRow> = sqlx::query_as(
            "SELECT policy_name, policy_id, base_digest, applied_generation, last_attempt_at, \
             last_success_at, last_error FROM sync_state WHERE policy_name = $1",
        )
        .bind(policy_name)
        .fetch_optional(&self.inner.pool)
        .await?;
        match row {
            Some(row) => row.into_state(),
            None => Ok(SyncState {
                policy_name: policy_name.to_owned(),
                ..SyncState::default()
            }),
        }
    }

    /// The PPL last applied to `policy_name` as JSON text: the base of the
    /// three-way merge, against which console edits are recognised. Read
    /// apart from [`Store::sync_state`], which is polled while changes
    /// wait to be applied and by `/readyz`: at thousands of grants this is
    /// a megabyte.
    pub async fn sync_base(&self, policy_name: &str) -> Result<Option<String>, StoreError> {
        let row: Option<(Option<String>, Option<Vec<u8>>)> =
            sqlx::query_as("SELECT base_ppl, base_packed FROM sync_state WHERE policy_name = $1")
                .bind(policy_name)
                .fetch_optional(&self.inner.pool)
                .await?;
        let Some((text, packed)) = row else {
            return Ok(None);
        };
        stored_ppl(text, packed, ["base_ppl", "base_packed"]).map_err(|bad| StoreError::Corrupt {
            table: "sync_state",
            key: policy_name.to_owned(),
            column: bad.column,
            value: bad.value,
            problem: bad.problem,
        })
    }

    /// Records that `applied` (rendered from generation `applied_generation`)
    /// is now the policy `policy_id` in Zero, as the base of the next sync,
    /// if `fence` is still the current holder of its lease; else nothing is
    /// written and [`StoreError::Fenced`] is returned. The applied
    /// generation only moves forward, so a slow, stale run cannot make a
    /// newer change look unapplied. An intent this success settles (its
    /// write was answered, or Zero was found holding it) is dropped, and so
    /// is every intent older than [`INTENT_RETENTION`].
    pub async fn record_sync_success(
        &self,
        fence: &Fence,
        policy_name: &str,
        policy_id: &str,
        applied: Applied<'_>,
        applied_generation: u64,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        /// The upsert of a success, its base taken from `$source`.
        macro_rules! success_from {
            ($source:literal) => {
                concat!(
                    "INSERT INTO sync_state (policy_name, policy_id, applied_generation, \
                     last_attempt_at, last_success_at, last_error, base_ppl, base_packed, \
                     base_digest) ",
                    $source,
                    " ON CONFLICT (policy_name) DO UPDATE SET policy_id = excluded.policy_id, \
                     base_ppl = excluded.base_ppl, base_packed = excluded.base_packed, \
                     base_digest = excluded.base_digest, \
                     applied_generation = CASE WHEN excluded.applied_generation > \
                     sync_state.applied_generation THEN excluded.applied_generation \
                     ELSE sync_state.applied_generation END, \
                     last_attempt_at = excluded.last_attempt_at, \
                     last_success_at = excluded.last_success_at, last_error = NULL"
                )
            };
        }
        let generation = stored_generation(applied_generation)?;
        let mut tx = self.fenced(fence).await?;
        let query = |sql: &'static str| {
            sqlx::query(sql)
                .bind(policy_name)
                .bind(policy_id)
                .bind(generation)
                .bind(millis(at))
        };
        match applied {
            Applied::Text(text) => {
                query(success_from!(
                    "VALUES ($1, $2, $3, $4, $4, NULL, NULL, $5, $6)"
                ))
                .bind(packed::pack(text))
                .bind(TextDigest::of(text).0)
                .execute(&mut *tx)
                .await?;
            }
            Applied::Intent(IntentId(id)) => {
                // The intent's text is copied inside the database, in the
                // form it has there, instead of being sent again.
                let copied = query(success_from!(
                    "SELECT $1, $2, $3, $4, $4, NULL, ppl, packed, digest FROM sync_intents \
                     WHERE id = $5 AND policy_name = $1"
                ))
                .bind(id)
                .execute(&mut *tx)
                .await?;
                if copied.rows_affected() == 0 {
                    return Err(StoreError::IntentGone {
                        policy: policy_name.to_owned(),
                        intent: id,
                    });
                }
                sqlx::query("DELETE FROM sync_intents WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        prune_intents(&mut tx, policy_name, at).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records, before writing `ppl` (rendered from `generation`) to Zero,
    /// that the app is about to write it, if `fence` is still current.
    /// While the write's answer is unknown, finding any part of this PPL in
    /// Zero means the app wrote it: it is never adopted as a console edit.
    /// The same PPL intended twice is kept once.
    pub async fn record_intent(
        &self,
        fence: &Fence,
        policy_name: &str,
        ppl: &str,
        generation: u64,
        at: OffsetDateTime,
    ) -> Result<IntentId, StoreError> {
        let generation = stored_generation(generation)?;
        let mut tx = self.fenced(fence).await?;
        // Packed, and bound once, owned: each bind of a borrowed value is
        // copied by sqlx's `Any`, and the driver and the database copy it
        // again.
        let digest = TextDigest::of(ppl).0;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO sync_intents (policy_name, packed, digest, generation, epoch, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(policy_name)
        .bind(packed::pack(ppl))
        .bind(digest.clone())
        .bind(generation)
        .bind(fence.epoch)
        .bind(millis(at))
        .fetch_one(&mut *tx)
        .await?;
        // The same text intended before (the digest says so; rows from
        // before digests are left to the bound below).
        sqlx::query("DELETE FROM sync_intents WHERE policy_name = $1 AND id <> $2 AND digest = $3")
            .bind(policy_name)
            .bind(id)
            .bind(digest)
            .execute(&mut *tx)
            .await?;
        // Bounded even while Zero keeps failing: the oldest go first.
        sqlx::query(
            "DELETE FROM sync_intents WHERE policy_name = $1 AND id NOT IN \
             (SELECT id FROM sync_intents WHERE policy_name = $1 ORDER BY id DESC LIMIT $2)",
        )
        .bind(policy_name)
        .bind(MAX_INTENTS)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(IntentId(id))
    }

    /// The unsettled intents for `policy_name`, oldest first.
    pub async fn intents(&self, policy_name: &str) -> Result<Vec<Intent>, StoreError> {
        type Row = (i64, Option<String>, Option<Vec<u8>>, i64, i64, i64);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, ppl, packed, generation, epoch, created_at FROM sync_intents \
             WHERE policy_name = $1 ORDER BY id",
        )
        .bind(policy_name)
        .fetch_all(&self.inner.pool)
        .await?;
        rows.into_iter()
            .map(|(id, text, packed, generation, epoch, created_at)| {
                let bad =
                    |column: &'static str, value: String, problem: String| StoreError::Corrupt {
                        table: "sync_intents",
                        key: id.to_string(),
                        column,
                        value: value.chars().take(200).collect(),
                        problem,
                    };
                Ok(Intent {
                    id: IntentId(id),
                    generation: u64::try_from(generation).map_err(|_| {
                        bad("generation", generation.to_string(), "is negative".into())
                    })?,
                    epoch: u64::try_from(epoch)
                        .map_err(|_| bad("epoch", epoch.to_string(), "is negative".into()))?,
                    created_at: from_millis(created_at).ok_or_else(|| {
                        bad(
                            "created_at",
                            created_at.to_string(),
                            "is not a representable time".into(),
                        )
                    })?,
                    ppl: stored_ppl(text, packed, ["ppl", "packed"])
                        .map_err(|d| bad(d.column, d.value, d.problem))?
                        .ok_or_else(|| {
                            bad(
                                "ppl",
                                "NULL".into(),
                                "leaves the intent without a text (`packed` is NULL too)".into(),
                            )
                        })?,
                })
            })
            .collect()
    }

    /// Records a failed attempt; what was last applied stays as it was.
    pub async fn record_sync_failure(
        &self,
        policy_name: &str,
        error: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sync_state (policy_name, last_attempt_at, last_error) VALUES ($1, $2, $3) \
             ON CONFLICT (policy_name) DO UPDATE SET last_attempt_at = excluded.last_attempt_at, \
             last_error = excluded.last_error",
        )
        .bind(policy_name)
        .bind(millis(at))
        .bind(error)
        .execute(&self.inner.pool)
        .await?;
        Ok(())
    }

    /// Takes the lease `name` for `holder` until `now + ttl`, if it is free,
    /// expired or already `holder`'s (then it is renewed). Returns the
    /// fence `holder` now holds, or `None`; two holders never both hold
    /// one. The fence's epoch grows each time the lease changes hands, so
    /// [`Store::renew_lease`] and every fenced write refuse a holder that
    /// was paused while another took over. Replicas compare their own
    /// clocks with the stored expiry, so keep `ttl` well above their skew.
    pub async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        now: OffsetDateTime,
    ) -> Result<Option<Fence>, StoreError> {
        let now = millis(now);
        let taken: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO leases (name, holder, expires_at, epoch) VALUES ($1, $2, $3, 1) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
             expires_at = excluded.expires_at, \
             epoch = CASE WHEN leases.holder = excluded.holder THEN leases.epoch \
             ELSE leases.epoch + 1 END \
             WHERE leases.holder = excluded.holder OR leases.expires_at <= $4 \
             RETURNING epoch",
        )
        .bind(name)
        .bind(holder)
        .bind(now.saturating_add(ttl_millis(ttl)))
        .bind(now)
        .fetch_optional(&self.inner.pool)
        .await?;
        Ok(taken.map(|(epoch,)| Fence {
            lease: name.to_owned(),
            holder: holder.to_owned(),
            epoch,
        }))
    }

    /// Extends `fence`'s lease to `now + ttl` if it is still current (the
    /// same holder and epoch); returns whether it was.
    pub async fn renew_lease(
        &self,
        fence: &Fence,
        ttl: Duration,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let renewed = sqlx::query(
            "UPDATE leases SET expires_at = $1 WHERE name = $2 AND holder = $3 AND epoch = $4",
        )
        .bind(millis(now).saturating_add(ttl_millis(ttl)))
        .bind(&fence.lease)
        .bind(&fence.holder)
        .bind(fence.epoch)
        .execute(&self.inner.pool)
        .await?;
        Ok(renewed.rows_affected() == 1)
    }

    /// Gives the lease up early if `fence` is still current, so another
    /// replica need not wait for it to expire. The row (and its epoch) stays.
    pub async fn release_lease(&self, fence: &Fence) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE leases SET expires_at = 0 WHERE name = $1 AND holder = $2 AND epoch = $3",
        )
        .bind(&fence.lease)
        .bind(&fence.holder)
        .bind(fence.epoch)
        .execute(&self.inner.pool)
        .await?;
        Ok(())
    }

    /// Gives up lease `name` if `holder` holds it, whatever the epoch: for
    /// a holder that is stopping and may not know its fence (its request
    /// for the lease was cut short after the store granted it). Holders
    /// are unique per process and reconciler, so no one else's is touched.
    pub async fn release_lease_of(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE leases SET expires_at = 0 WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.inner.pool)
            .await?;
        Ok(())
    }

    /// A write transaction that has checked `fence` is current; the check
    /// holds until commit (SQLite's write lock; a share lock on PostgreSQL,
    /// which a takeover must wait for).
    pub(crate) async fn fenced(
        &self,
        fence: &Fence,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        let backend = self.inner.backend;
        let mut tx = self.inner.pool.begin_with(backend.begin_write()).await?;
        check_fence(&mut tx, backend, fence).await?;
        Ok(tx)
    }
}

/// Fails with [`StoreError::Fenced`] unless `fence` holds its lease now.
pub(crate) async fn check_fence(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    backend: Backend,
    fence: &Fence,
) -> Result<(), StoreError> {
    let sql = match backend {
        Backend::Sqlite => {
            "SELECT epoch FROM leases WHERE name = $1 AND holder = $2 AND epoch = $3"
        }
        Backend::Postgres => {
            "SELECT epoch FROM leases WHERE name = $1 AND holder = $2 AND epoch = $3 FOR SHARE"
        }
    };
    let current: Option<(i64,)> = sqlx::query_as(sql)
        .bind(&fence.lease)
        .bind(&fence.holder)
        .bind(fence.epoch)
        .fetch_optional(&mut **tx)
        .await?;
    match current {
        Some(_) => Ok(()),
        None => Err(StoreError::Fenced {
            lease: fence.lease.clone(),
            epoch: fence.epoch.unsigned_abs(),
        }),
    }
}

/// Drops settled intents older than [`INTENT_RETENTION`].
async fn prune_intents(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    policy_name: &str,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let before = millis(now).saturating_sub(ttl_millis(INTENT_RETENTION));
    sqlx::query("DELETE FROM sync_intents WHERE policy_name = $1 AND created_at < $2")
        .bind(policy_name)
        .bind(before)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn ttl_millis(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
}

fn stored_generation(generation: u64) -> Result<i64, StoreError> {
    i64::try_from(generation).map_err(|_| StoreError::OutOfRange {
        what: "applied generation",
        value: generation.to_string(),
    })
}

/// Why stored PPL text is not JSON, if it is not (checked without building
/// a tree).
/// What is wrong with a stored policy text.
struct Damage {
    column: &'static str,
    /// The start of the value, for the message.
    value: String,
    problem: String,
}

/// A policy text as stored in one of two columns (`[text, packed]`): as
/// text, written before texts were packed, or packed. Either way it must
/// be JSON.
fn stored_ppl(
    text: Option<String>,
    packed: Option<Vec<u8>>,
    [text_column, packed_column]: [&'static str; 2],
) -> Result<Option<String>, Damage> {
    let (column, text) = match (text, packed) {
        (Some(text), None) => (text_column, text),
        (_, Some(packed)) => (
            packed_column,
            packed::unpack(&packed).map_err(|problem| Damage {
                column: packed_column,
                value: format!("{} bytes", packed.len()),
                problem,
            })?,
        ),
        (None, None) => return Ok(None),
    };
    match json_problem(&text) {
        None => Ok(Some(text)),
        Some(problem) => Err(Damage {
            column,
            value: text.chars().take(200).collect(),
            problem,
        }),
    }
}

fn json_problem(text: &str) -> Option<String> {
    serde_json::from_str::<serde::de::IgnoredAny>(text)
        .err()
        .map(|e| format!("is not JSON ({e})"))
}
