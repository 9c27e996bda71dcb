use std::sync::Arc;
use std::time::Duration;

use jit_ppl::jit::DecodeOptions;
use time::OffsetDateTime;

/// What the reconciler needs to know about its policy and pace.
#[derive(Debug, Clone)]
pub struct Config {
    /// The policy's name in Zero; the Go original's is `jit-example`.
    pub policy_name: String,
    /// Namespace holding the policy (the original passes `CLUSTER_ID`).
    pub namespace_id: String,
    /// Cluster whose changesets and settings are checked.
    pub cluster_id: String,
    /// Time between periodic runs when nothing happens.
    pub interval: Duration,
    /// Apply a pending changeset that holds only this policy's change.
    pub apply_changesets: bool,
    /// How dates without an offset in the remote policy are read.
    pub decode: DecodeOptions,
    /// This replica's name for the writer lease.
    pub holder: String,
    /// How long the writer lease lasts without renewal; renewed every third
    /// of it during a run and right before each write to Zero, so a crashed
    /// writer blocks others this long at most.
    pub lease_ttl: Duration,
    /// Where the reconciler reads the time: the system clock, or a
    /// simulated one in tests.
    pub clock: Clock,
}

impl Config {
    pub fn new(policy_name: impl Into<String>, cluster_id: impl Into<String>) -> Self {
        let cluster_id = cluster_id.into();
        Self {
            policy_name: policy_name.into(),
            namespace_id: cluster_id.clone(),
            cluster_id,
            interval: Duration::from_secs(30),
            apply_changesets: false,
            decode: DecodeOptions::default(),
            holder: format!(
                "pomerium-jit-{}-{}",
                std::process::id(),
                rand::random::<u32>()
            ),
            lease_ttl: Duration::from_secs(15),
            clock: Clock::system(),
        }
    }
}

/// A source of the current time.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> OffsetDateTime + Send + Sync>);

impl Clock {
    pub fn system() -> Self {
        Self(Arc::new(OffsetDateTime::now_utc))
    }

    pub fn new(now: impl Fn() -> OffsetDateTime + Send + Sync + 'static) -> Self {
        Self(Arc::new(now))
    }

    pub fn now(&self) -> OffsetDateTime {
        (self.0)()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({})", self.now())
    }
}
