use std::time::Duration;

use time::OffsetDateTime;

use crate::rows::{from_millis, millis};
use crate::{Store, StoreError};

/// What the reconciler remembers about one Pomerium Zero policy.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SyncState {
    pub policy_name: String,
    /// The policy's id in Zero, once found or created.
    pub policy_id: Option<String>,
    /// The PPL we last applied: the "last-applied configuration" of the
    /// three-way merge, against which console edits are recognised.
    pub base_ppl: Option<serde_json::Value>,
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
    base_ppl: Option<String>,
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
            base_ppl: self
                .base_ppl
                .map(|text| {
                    serde_json::from_str(&text)
                        .map_err(|e| bad("base_ppl", text, format!("is not JSON ({e})")))
                })
                .transpose()?,
            applied_generation: u64::try_from(self.applied_generation).map_err(|_| {
                bad(
                    "applied_generation",
                    self.applied_generation.to_string(),
                    "is negative".into(),
                )
            })?,
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
            "SELECT policy_name, policy_id, base_ppl, applied_generation, last_attempt_at, \
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

    /// Records that `base_ppl` (rendered from generation
    /// `applied_generation`) is now the policy `policy_id` in Zero. The
    /// applied generation only moves forward, so a slow, stale run cannot
    /// make a newer change look unapplied.
    pub async fn record_sync_success(
        &self,
        policy_name: &str,
        policy_id: &str,
        base_ppl: &serde_json::Value,
        applied_generation: u64,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let generation = i64::try_from(applied_generation).map_err(|_| StoreError::OutOfRange {
            what: "applied generation",
            value: applied_generation.to_string(),
        })?;
        sqlx::query(
            "INSERT INTO sync_state (policy_name, policy_id, base_ppl, applied_generation, \
             last_attempt_at, last_success_at, last_error) VALUES ($1, $2, $3, $4, $5, $5, NULL) \
             ON CONFLICT (policy_name) DO UPDATE SET policy_id = excluded.policy_id, \
             base_ppl = excluded.base_ppl, \
             applied_generation = CASE WHEN excluded.applied_generation > sync_state.applied_generation \
             THEN excluded.applied_generation ELSE sync_state.applied_generation END, \
             last_attempt_at = excluded.last_attempt_at, \
             last_success_at = excluded.last_success_at, last_error = NULL",
        )
        .bind(policy_name)
        .bind(policy_id)
        .bind(base_ppl.to_string())
        .bind(generation)
        .bind(millis(at))
        .execute(&self.inner.pool)
        .await?;
        Ok(())
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
    /// expired or already `holder`'s (then it is renewed). Returns whether
    /// `holder` now has it; two holders never both do. Replicas compare
    /// their own clocks with the stored expiry, so keep `ttl` well above
    /// their clock skew.
    pub async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let now = millis(now);
        let ttl = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let taken = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE leases.holder = excluded.holder OR leases.expires_at <= $4",
        )
        .bind(name)
        .bind(holder)
        .bind(now.saturating_add(ttl))
        .bind(now)
        .execute(&self.inner.pool)
        .await?;
        Ok(taken.rows_affected() == 1)
    }

    /// Gives the lease up early if `holder` has it, so another replica need
    /// not wait for it to expire.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.inner.pool)
            .await?;
        Ok(())
    }
}
