use time::OffsetDateTime;

use crate::SyncFailure;

/// The last known state of synchronisation, for pages, `/readyz` and tests.
#[derive(Debug, Clone, Default)]
pub struct SyncStatus {
    pub last_attempt_at: Option<OffsetDateTime>,
    pub last_success_at: Option<OffsetDateTime>,
    /// Set when the latest run failed; cleared by the next success.
    pub last_error: Option<SyncFailure>,
    /// The store generation the remote policy is known to reflect.
    pub applied_generation: u64,
    pub policy_id: Option<String>,
    /// Whether the cluster auto-applies changesets (`None` until known).
    pub auto_apply: Option<bool>,
    /// Policy writes (create or update) made by this process.
    pub writes: u64,
}

/// What one successful run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub expired: usize,
    pub adopted: usize,
    pub wrote: bool,
    /// Writes whose answer was lost, found to have landed, and taken as
    /// the base rather than read as console edits.
    pub recovered: bool,
    pub generation: u64,
}
