//! When runs happen (the loop, backoff) and what wraps each one (the lease,
//! recording the outcome).

use std::future;
use std::time::Duration;

use futures_util::TryStreamExt;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::failure::SyncError;
use crate::{FailureKind, Reconciler, SyncReport};

impl Reconciler {
    /// The background loop: runs after nudges, periodically, and just after
    /// the next grant expires; backs off after failures. Returns on shutdown.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut failures: u32 = 0;
        loop {
            // A run cut short by shutdown is safe: its intent was recorded
            // before any write, and the next start converges. Its lease is
            // handed back so another replica need not wait for the TTL:
            // by holder, not by fence, since the run may have been dropped
            // after the store took the lease and before it read the fence.
            let result = tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    let (store, holder) = (&self.inner.store, &self.inner.config.holder);
                    if let Err(e) = store.release_lease_of(&self.lease_name(), holder).await {
                        tracing::warn!(error = %e, "could not release the reconciler lease; it will expire");
                    }
                    return;
                }
                r = self.sync_now() => r,
            };
            let delay = match result {
                Ok(_) => {
                    failures = 0;
                    self.until_next_due().await
                }
                Err(f) if f.kind == FailureKind::Busy => Duration::from_millis(500),
                Err(f) => {
                    failures = failures.saturating_add(1);
                    let delay = backoff(failures, self.inner.config.interval);
                    tracing::warn!(error = %f, retry_in_ms = delay.as_millis() as u64, "policy sync failed");
                    delay
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.inner.wake.notified() => {}
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    fn lease_name(&self) -> String {
        format!("reconcile:{}", self.inner.config.policy_name)
    }

    async fn until_next_due(&self) -> Duration {
        let interval = self.inner.config.interval;
        let inner = &self.inner;
        // One request at a time: this runs after every sync.
        let due = inner
            .store
            .each_open_request(Some(&inner.rules.resource))
            .try_fold(None, |soonest: Option<OffsetDateTime>, r| {
                let at = inner.rules.deadline(&r);
                future::ready(Ok(soonest.into_iter().chain(at).min()))
            })
            .await;
        match due {
            Ok(Some(at)) => {
                let wait = at - self.inner.config.clock.now() + time::Duration::SECOND;
                Duration::try_from(wait)
                    .unwrap_or(Duration::ZERO)
                    .min(interval)
            }
            _ => interval,
        }
    }

    pub(crate) async fn run_once(&self) -> Result<SyncReport, SyncError> {
        let inner = &self.inner;
        let cfg = &inner.config;
        let now = cfg.clock.now();
        inner.status.send_modify(|s| s.last_attempt_at = Some(now));
        let Some(fence) = inner
            .store
            .try_lease(&self.lease_name(), &cfg.holder, cfg.lease_ttl, now)
            .await?
        else {
            return Err(SyncError::Busy);
        };
        crate::measure::lease_held(&cfg.policy_name, true);
        // Renew the lease while the run lasts, so that a short TTL both
        // covers slow runs and frees the lease soon after a crash. A run
        // paused past the TTL anyway is fenced: its later writes to the
        // store are refused, and what it wrote to Zero is an intent.
        let renew = async {
            loop {
                tokio::time::sleep(cfg.lease_ttl / 3).await;
                let renewed = inner
                    .store
                    .renew_lease(&fence, cfg.lease_ttl, cfg.clock.now())
                    .await;
                if !matches!(renewed, Ok(true)) {
                    return SyncError::LostLease;
                }
            }
        };
        let result = tokio::select! {
            r = self.converge(&fence) => r,
            e = renew => Err(e),
        };
        if let Err(e) = inner.store.release_lease(&fence).await {
            tracing::warn!(error = %e, "could not release the reconciler lease; it will expire");
        }
        match &result {
            Ok(report) => {
                tracing::debug!(?report, "policy in sync");
                inner.status.send_modify(|s| {
                    s.last_success_at = Some(cfg.clock.now());
                    s.last_error = None;
                    s.applied_generation = s.applied_generation.max(report.generation);
                });
            }
            Err(e) => {
                let failure = e.failure();
                if let Err(store_err) = inner
                    .store
                    .record_sync_failure(&cfg.policy_name, &failure.message, now)
                    .await
                {
                    tracing::warn!(error = %store_err, "could not record the sync failure");
                }
                inner.status.send_modify(|s| s.last_error = Some(failure));
            }
        }
        result
    }
}

/// Exponential backoff with full jitter, from 1 s up to `cap`.
fn backoff(failures: u32, cap: Duration) -> Duration {
    let exp = Duration::from_secs(1)
        .saturating_mul(1u32 << failures.min(10))
        .min(cap.max(Duration::from_secs(1)));
    exp.mul_f64(0.5 + rand::random::<f64>() * 0.5)
}
