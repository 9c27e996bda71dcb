//! Reading the audit trail for admins, and checking it without walking the
//! whole chain on every page load.

use jit_store::{AuditQuery, AuditRecord, ChainReport};
use time::OffsetDateTime;

use crate::{Caller, Service, ServiceError};

/// A full check of the audit trail (chain walk and replay against the
/// requests) and when it ran.
#[derive(Debug, Clone)]
pub struct AuditCheck {
    pub report: ChainReport,
    pub at: OffsetDateTime,
}

/// The latest check; the lock also makes concurrent page loads wait for one
/// walk rather than each start their own.
pub(crate) type LastCheck = tokio::sync::Mutex<Option<AuditCheck>>;

impl Service {
    /// Audit events, newest first, as `query` selects them.
    pub async fn audit_events(
        &self,
        admin: &Caller,
        query: AuditQuery,
    ) -> Result<Vec<AuditRecord>, ServiceError> {
        self.require_admin(admin)?;
        Ok(self.inner.store.audit(query).await?)
    }

    /// The latest check of the audit trail, redone only once it is older
    /// than [`Settings::audit_check_max_age`](crate::Settings): the walk
    /// reads every event and request, so page loads share its result.
    pub async fn audit_check(&self, admin: &Caller) -> Result<AuditCheck, ServiceError> {
        self.require_admin(admin)?;
        let max_age = self.inner.settings.audit_check_max_age;
        let mut last = self.inner.last_audit_check.lock().await;
        let now = OffsetDateTime::now_utc();
        if let Some(check) = last.as_ref().filter(|c| now - c.at < max_age) {
            return Ok(check.clone());
        }
        let report = self.inner.store.verify_audit_chain().await?;
        if let Some(problem) = report.problem() {
            tracing::error!(%problem, "the audit trail is not intact");
        }
        let check = AuditCheck { report, at: now };
        *last = Some(check.clone());
        Ok(check)
    }
}
