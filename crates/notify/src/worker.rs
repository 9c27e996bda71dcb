//! The notifier: one replica at a time (the `notify` lease) expands outbox
//! notices into deliveries and sends those due, retrying failures with
//! exponential backoff and jitter until they are delivered or dead.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use jit_domain::{Action, Email, Request, Resource, ResourceName};
use jit_store::{Attempt, Delivery, NewDelivery, Notice, OutboxItem, Store, StoreError};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::config::{ChannelKind, NotifyConfig, Timing};
use crate::render::{Facts, delivery_key};
use crate::route::{approver_emails, audience, recipients};
use crate::send::{Sender, SetupError};

/// The lease one replica holds while it notifies.
pub const LEASE: &str = "notify";
/// Notices expanded and deliveries claimed per round.
const BATCH: usize = 64;
/// Sends in flight at once.
const PARALLEL: usize = 8;
/// How long finished deliveries are kept (the admin page's last success
/// and error come from them).
const KEEP: Duration = Duration::from_secs(7 * 24 * 3600);

/// The notifier. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    config: NotifyConfig,
    /// Each resource with its approvers' emails.
    resources: HashMap<ResourceName, (Resource, Vec<Email>)>,
    sender: Sender,
    holder: String,
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    /// Whether this replica held the lease.
    pub leader: bool,
    pub expanded: usize,
    pub delivered: usize,
    pub failed: usize,
}

impl Notifier {
    /// `admins`: whom to mail for resources approved by the admins
    /// (`ADMIN_EMAILS`).
    pub fn new(
        store: Store,
        config: NotifyConfig,
        resources: &[Resource],
        admins: &[Email],
    ) -> Result<Self, SetupError> {
        let sender = Sender::new(&config.channels)?;
        let resources = resources
            .iter()
            .map(|r| (r.name.clone(), (r.clone(), approver_emails(r, admins))))
            .collect();
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                config,
                resources,
                sender,
                holder: format!(
                    "pomerium-jit-{}-{}",
                    std::process::id(),
                    rand::random::<u32>()
                ),
            }),
        })
    }

    pub fn sender(&self) -> &Sender {
        &self.inner.sender
    }

    /// Runs rounds every poll interval until `shutdown`; gives the lease
    /// back on the way out.
    pub async fn run(self, shutdown: CancellationToken) {
        let timing = self.inner.config.timing;
        let mut last_prune = None::<OffsetDateTime>;
        loop {
            let now = OffsetDateTime::now_utc();
            match self.round(now).await {
                Ok(round) if round.leader => {
                    if last_prune.is_none_or(|t| now - t > time::Duration::HOUR) {
                        last_prune = Some(now);
                        if let Err(e) = self.inner.store.prune_notifications(now - KEEP).await {
                            tracing::warn!(error = %e, "pruning old notifications failed");
                        }
                    }
                    self.measure().await;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "notifications: a round failed; retrying"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(timing.poll_interval) => {}
            }
        }
        let now = OffsetDateTime::now_utc();
        if let Ok(Some(fence)) = self.try_lease(now).await {
            let _ = self.inner.store.release_lease(&fence).await;
        }
    }

    async fn try_lease(&self, now: OffsetDateTime) -> Result<Option<jit_store::Fence>, StoreError> {
        let ttl = (self.inner.config.timing.poll_interval * 5).max(Duration::from_secs(30));
        self.inner
            .store
            .try_lease(LEASE, &self.inner.holder, ttl, now)
            .await
    }

    /// One round at `now`: take or renew the lease, enqueue expiry notices,
    /// expand new notices, send what is due.
    pub async fn round(&self, now: OffsetDateTime) -> Result<Round, StoreError> {
        let Some(fence) = self.try_lease(now).await? else {
            return Ok(Round::default());
        };
        let store = &self.inner.store;
        let config = &self.inner.config;
        let mut round = Round {
            leader: true,
            ..Round::default()
        };
        if let Some(lead) = config.expiry_warning {
            store.enqueue_expiry_notices(&fence, lead, now).await?;
        }
        for item in store.unexpanded(BATCH).await? {
            let deliveries = self.plan(&item).await?;
            store.expand(&fence, item.id, &deliveries, now).await?;
            round.expanded += 1;
        }
        let claimed = store
            .claim_deliveries(&fence, BATCH, config.timing.hold, now)
            .await?;
        let results: Vec<(Delivery, Result<(), String>)> = futures_util::stream::iter(claimed)
            .map(|d| async move {
                let r = self
                    .inner
                    .sender
                    .send(&d.channel, &d.key, &d.recipient, &d.body)
                    .await;
                (d, r)
            })
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        for (d, result) in results {
            let finished = OffsetDateTime::now_utc();
            let attempt = match result {
                Ok(()) => {
                    round.delivered += 1;
                    Attempt::Delivered
                }
                Err(error) => {
                    round.failed += 1;
                    tracing::warn!(channel = %d.channel, key = %d.key, attempt = d.attempts, %error,
                        "notification not delivered");
                    if d.attempts >= config.timing.max_attempts {
                        Attempt::Dead { error }
                    } else {
                        Attempt::Retry {
                            error,
                            retry_at: finished + backoff(&config.timing, d.attempts),
                        }
                    }
                }
            };
            let result = match &attempt {
                Attempt::Delivered => "delivered",
                Attempt::Retry { .. } => "retry",
                Attempt::Dead { .. } => "dead",
            };
            metrics::counter!("pomerium_jit_notifications_total",
                "channel" => d.channel.clone(), "result" => result)
            .increment(1);
            store.finish_delivery(&d.key, &attempt, finished).await?;
        }
        Ok(round)
    }

    /// The deliveries of one notice, rendered.
    async fn plan(&self, item: &OutboxItem) -> Result<Vec<NewDelivery>, StoreError> {
        let Some(request) = &item.request else {
            return Ok(Vec::new());
        };
        // Asks are put to approvers only while still open: read it now.
        let current = match &item.notice {
            Notice::Event { event, .. }
                if matches!(event.action, Action::Requested | Action::ExtensionRequested) =>
            {
                self.inner.store.request(request.id).await?
            }
            _ => Some(request.clone()),
        };
        if let Notice::ExpirySoon { expires_at } = item.notice
            && !jit_store::expiry_still_due(current.as_ref(), expires_at)
        {
            return Ok(Vec::new());
        }
        Ok(self.render(item, request, current.as_ref()))
    }

    fn render(
        &self,
        item: &OutboxItem,
        request: &Request,
        current: Option<&Request>,
    ) -> Vec<NewDelivery> {
        let Some((resource, approvers)) = self.inner.resources.get(&request.resource) else {
            return Vec::new();
        };
        let audience = audience(&item.notice, current);
        let facts = Facts {
            key: &item.key,
            notice: &item.notice,
            request,
            resource,
            audience,
            app_url: self.inner.config.app_url.as_ref(),
        };
        let actor = match &item.notice {
            Notice::Event { event, .. } => Some(&event.actor),
            Notice::ExpirySoon { .. } => None,
        };
        let mut out = Vec::new();
        for ch in &self.inner.config.channels {
            if !ch.covers(&request.resource) {
                continue;
            }
            let one = |body: String| NewDelivery {
                key: delivery_key(&item.key, &ch.name, None),
                channel: ch.name.clone(),
                recipient: String::new(),
                body,
            };
            match &ch.kind {
                // Machines get everything and decide for themselves.
                ChannelKind::Webhook { .. } => out.push(one(facts.webhook(&ch.name))),
                // The approvers' channel: every move of a request told to anyone.
                ChannelKind::Slack { .. } => {
                    if matches!(item.notice, Notice::Event { .. }) && !audience.is_empty() {
                        out.push(one(facts.slack()));
                    }
                }
                ChannelKind::Email(_) => {
                    for to in recipients(&audience, request, approvers, actor) {
                        out.push(NewDelivery {
                            key: delivery_key(&item.key, &ch.name, Some(to.as_str())),
                            channel: ch.name.clone(),
                            recipient: to.to_string(),
                            body: facts.email(to == request.email),
                        });
                    }
                }
            }
        }
        out
    }

    /// Queue depths per channel, for the metrics.
    async fn measure(&self) {
        match self.inner.store.notification_status().await {
            Ok((channels, unexpanded)) => {
                metrics::gauge!("pomerium_jit_notification_outbox").set(unexpanded as f64);
                for ch in &self.inner.config.channels {
                    let s = channels.iter().find(|s| s.channel == ch.name);
                    let (pending, dead) = s.map_or((0, 0), |s| (s.pending, s.dead));
                    metrics::gauge!("pomerium_jit_notification_queue", "channel" => ch.name.clone())
                        .set(pending as f64);
                    metrics::gauge!("pomerium_jit_notification_dead", "channel" => ch.name.clone())
                        .set(dead as f64);
                }
            }
            Err(e) => tracing::debug!(error = %e, "reading notification status failed"),
        }
    }
}

/// The wait before attempt `attempts + 1`: `retry_min` doubled per failed
/// attempt, at most `retry_max`, then cut by a random part of up to half, so
/// replicas and deliveries that failed together do not retry together.
pub fn backoff(timing: &Timing, attempts: u32) -> Duration {
    let doubled = timing
        .retry_min
        .saturating_mul(1u32 << attempts.saturating_sub(1).min(20));
    let capped = doubled.min(timing.retry_max);
    capped.mul_f64(1.0 - rand::random::<f64>() * 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let t = Timing {
            retry_min: Duration::from_secs(2),
            retry_max: Duration::from_secs(60),
            ..Timing::default()
        };
        for (attempts, full) in [(1, 2), (2, 4), (3, 8), (5, 32), (6, 60), (40, 60)] {
            for _ in 0..50 {
                let d = backoff(&t, attempts);
                let full = Duration::from_secs(full);
                assert!(d <= full && d >= full / 2, "{attempts}: {d:?}");
            }
        }
    }
}
