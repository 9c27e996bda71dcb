//! What the admin page shows of notifications: each configured channel's
//! last success, last error and queue, read from the store.

use jit_store::ChannelStatus;

use crate::{Caller, Service, ServiceError};

/// One configured notification channel, as its deliveries stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelView {
    pub name: String,
    /// "webhook", "slack" or "email".
    pub kind: String,
    /// Counts are 0 and times `None` for a channel that has sent nothing yet.
    pub status: ChannelStatus,
}

/// Every configured channel, and the notices not yet turned into deliveries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NotificationStatus {
    pub channels: Vec<ChannelView>,
    pub unexpanded: u64,
}

impl Service {
    /// The configured channels' status, in config order; for admins.
    pub async fn notification_status(
        &self,
        admin: &Caller,
    ) -> Result<NotificationStatus, ServiceError> {
        self.require_admin(admin)?;
        let configured = &self.inner.settings.notification_channels;
        if configured.is_empty() {
            return Ok(NotificationStatus::default());
        }
        let (stored, unexpanded) = self.inner.store.notification_status().await?;
        let channels = configured
            .iter()
            .map(|(name, kind)| ChannelView {
                name: name.clone(),
                kind: kind.clone(),
                status: stored
                    .iter()
                    .find(|s| &s.channel == name)
                    .cloned()
                    .unwrap_or_else(|| ChannelStatus {
                        channel: name.clone(),
                        ..ChannelStatus::default()
                    }),
            })
            .collect();
        Ok(NotificationStatus {
            channels,
            unexpanded,
        })
    }
}
