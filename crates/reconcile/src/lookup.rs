//! Finding the policy in Zero, and what a new one looks like.

use jit_zero::{Policy as ZeroPolicy, PolicyProperties, Ppl, ZeroError};
use time::OffsetDateTime;

use crate::Reconciler;
use crate::failure::SyncError;
use crate::measure;
use crate::merge::Observed;

const POLICY_DESCRIPTION: &str = "Just-in-time access managed by pomerium-jit. Rules that are not JIT entries \
    (email + reject, or email + date) are kept as they are.";

impl Reconciler {
    /// The policy by remembered id, else by name in the namespace; a loud
    /// error if the name is taken twice.
    pub(crate) async fn find_policy(
        &self,
        known_id: Option<&str>,
    ) -> Result<Option<ZeroPolicy>, SyncError> {
        let cfg = &self.inner.config;
        if let Some(id) = known_id {
            match self.inner.zero.get_policy(id).await {
                Ok(p)
                    if p.properties().name == cfg.policy_name
                        && p.properties().namespace_id == cfg.namespace_id =>
                {
                    return Ok(Some(p));
                }
                Ok(_) => tracing::warn!(
                    id,
                    "the remembered policy was renamed or moved; looking it up by name"
                ),
                Err(ZeroError::NotFound { .. }) => {
                    tracing::warn!(
                        id,
                        "the policy was deleted in Zero; it will be re-created from the store"
                    )
                }
                Err(e) => return Err(e.into()),
            }
        }
        let mut named: Vec<ZeroPolicy> = self
            .inner
            .zero
            .list_policies(&cfg.namespace_id)
            .await?
            .into_iter()
            .filter(|p| p.properties().name == cfg.policy_name)
            .collect();
        match named.len() {
            0 | 1 => Ok(named.pop()),
            _ => Err(SyncError::Duplicates {
                name: cfg.policy_name.clone(),
                namespace: cfg.namespace_id.clone(),
                ids: named.into_iter().map(|p| p.id).collect(),
            }),
        }
    }

    /// Reads the policy Zero holds: its foreign rules, and its JIT entries
    /// unless it is the base (they are known then, and at thousands of
    /// grants most of what is read); records how many of its grants are
    /// past their end.
    pub(crate) fn observe_remote(
        &self,
        p: &ZeroPolicy,
        is_base: bool,
        now: OffsetDateTime,
    ) -> Result<Observed, SyncError> {
        let cfg = &self.inner.config;
        let ppl = p.properties().ppl.as_str();
        let observed = if is_base {
            let mut overdue = 0;
            let observed = Observed::scan_foreign(ppl, &cfg.decode, |e| {
                overdue += usize::from(measure::is_lapsed(&e, now));
            });
            if observed.is_ok() {
                measure::overdue_count(&cfg.policy_name, overdue);
            }
            observed
        } else {
            let observed = Observed::scan(ppl, &cfg.decode);
            if let Ok(o) = &observed {
                measure::overdue_grants(&cfg.policy_name, o.entries.values(), now);
            }
            observed
        };
        observed.map_err(|error| SyncError::Unreadable {
            name: cfg.policy_name.clone(),
            id: p.id.clone(),
            error,
        })
    }

    pub(crate) fn new_policy(&self, ppl: Ppl) -> PolicyProperties {
        let cfg = &self.inner.config;
        PolicyProperties {
            name: cfg.policy_name.clone(),
            namespace_id: cfg.namespace_id.clone(),
            description: POLICY_DESCRIPTION.into(),
            // Like the original: attach it to routes explicitly.
            enforced: false,
            explanation: String::new(),
            remediation: String::new(),
            ppl,
            originator_id: None,
            extra: Default::default(),
        }
    }
}
