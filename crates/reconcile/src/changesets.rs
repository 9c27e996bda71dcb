//! Changesets: Zero deploys a policy change only once its changeset is
//! applied, automatically or by hand.

use jit_zero::{ChangesetStatus, ZeroError};

use crate::Reconciler;

impl Reconciler {
    /// Learns whether the cluster auto-applies changesets and, when it does
    /// not and [`crate::Config::apply_changesets`] is on, applies the pending
    /// changesets if together they hold nothing but this policy's changes
    /// (applying one deploys every earlier pending one too). Failures here
    /// never fail the run: the policy is saved; the status says what is missing.
    pub(crate) async fn check_changesets(&self, policy_id: &str) {
        let inner = &self.inner;
        let cluster = &inner.config.cluster_id;
        let auto = match inner.zero.get_cluster_settings(cluster).await {
            Ok(settings) => settings.auto_apply_changesets,
            Err(e) => {
                tracing::debug!(error = %e, "could not read cluster settings");
                return;
            }
        };
        inner.status.send_modify(|s| s.auto_apply = Some(auto));
        if auto || !inner.config.apply_changesets {
            return;
        }
        match self.apply_own_changesets(policy_id).await {
            Ok(true) => tracing::info!("applied the pending changeset holding the policy change"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "could not apply the pending changeset"),
        }
    }

    async fn apply_own_changesets(&self, policy_id: &str) -> Result<bool, ZeroError> {
        let zero = &self.inner.zero;
        let cluster = &self.inner.config.cluster_id;
        let all = zero.list_changesets(cluster, None).await?;
        let Some(newest) = all
            .iter()
            .filter(|c| c.status == ChangesetStatus::Pending)
            .max_by_key(|c| c.created_at)
        else {
            return Ok(false);
        };
        let live = all
            .iter()
            .filter(|c| c.status.is_effective())
            .max_by_key(|c| c.created_at)
            .map(|c| c.id.as_str());
        let diff = zero
            .compare_changesets(cluster, live, Some(&newest.id))
            .await?;
        let logs: Vec<_> = diff.entities.iter().flatten().collect();
        let only_ours = !logs.is_empty() && logs.iter().all(|l| l.entity.id == policy_id);
        if !only_ours {
            tracing::warn!(
                changeset = %newest.id,
                "a pending changeset holds changes besides this policy's; apply it in the Zero console"
            );
            return Ok(false);
        }
        zero.apply_changeset(&newest.id).await?;
        Ok(true)
    }
}
