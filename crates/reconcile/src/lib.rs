//! The reconciler: makes the Pomerium Zero policy a projection of the store.
//!
//! Every run (after each change, and periodically) does, holding the writer
//! lease with a fencing token so only one replica writes at a time:
//!
//! 1. **Read** the policy named [`Config::policy_name`] in the namespace:
//!    reused if it exists, created once if not, a loud error if there are two.
//! 2. **Recognise its own writes**: if Zero holds exactly a PPL the app
//!    recorded as an intent before a write whose answer was lost, that PPL
//!    is taken as the base ([`converge`](crate::converge) explains intents).
//! 3. **Adopt** what changed outside the app: the remote policy is compared
//!    with the *base*, the PPL this app last applied (like `kubectl apply`'s
//!    last-applied configuration), and with the unsettled intents. JIT
//!    entries added, removed or changed in the console are written to the
//!    store as audited changes by Zero. Rules that are not JIT rules are
//!    carried over verbatim.
//! 4. **Sweep**: grants past their expiry are marked expired, after the
//!    adoption so a console extension is never undone (Pomerium already
//!    denies them on time through `date.before`; this is housekeeping).
//! 5. **Render** foreign rules + the store's pending requests and active
//!    grants, and write only if it differs from the remote, after re-reading
//!    the remote, renewing the lease and recording the intent right before
//!    the write.
//! 6. **Remember** what was written as the new base, with the store
//!    generation it reflects, so waiters know their change is applied.
//!
//! Runs are serialized and coalesced: changes that arrive during a run are
//! picked up by the next one, so a burst of approvals becomes few writes.
//! Every step is idempotent; a crash anywhere converges on the next run.
//!
//! If the policy is deleted in Zero, the next run re-creates it from the
//! store (the database is the truth); the deletion is not read as revoking
//! every grant.

#![forbid(unsafe_code)]

mod api;
mod changesets;
mod config;
mod converge;
mod failure;
mod lookup;
mod measure;
mod merge;
mod run;
mod status;

use std::sync::Arc;
use std::time::{Duration, Instant};

use jit_domain::Rules;
use jit_store::Store;
use tokio::sync::{Mutex, Notify, watch};

pub use api::PolicyApi;
pub use config::{Clock, Config};
pub use failure::{FailureKind, SyncFailure};
pub use merge::{Observed, outside_changes, render};
pub use status::{SyncReport, SyncStatus};

/// Handle to the reconciler; cheap to clone.
#[derive(Clone)]
pub struct Reconciler {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Reconciler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconciler")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

struct Inner {
    config: Config,
    store: Store,
    zero: Box<dyn PolicyApi>,
    rules: Rules,
    wake: Notify,
    /// Serializes runs and remembers the last one, so that concurrent
    /// callers of [`Reconciler::sync_now`] share a run.
    last_run: Mutex<Option<(Instant, Result<SyncReport, SyncFailure>)>>,
    status: watch::Sender<SyncStatus>,
    /// When the latest run started, for [`Reconciler::refresh`].
    last_start: std::sync::Mutex<Option<Instant>>,
    /// How many entries the last read of the open requests found; the next
    /// read reserves room for them (see `OpenEntries::expecting`).
    open_seen: std::sync::atomic::AtomicUsize,
}

impl Reconciler {
    /// A reconciler of `config.policy_name` through `zero` (a
    /// [`jit_zero::ZeroClient`], or a stand-in in tests).
    pub fn new(config: Config, store: Store, zero: impl PolicyApi, rules: Rules) -> Self {
        let (status, _) = watch::channel(SyncStatus::default());
        Self {
            inner: Arc::new(Inner {
                config,
                store,
                zero: Box::new(zero),
                rules,
                wake: Notify::new(),
                last_run: Mutex::new(None),
                status,
                last_start: std::sync::Mutex::new(None),
                open_seen: std::sync::atomic::AtomicUsize::new(0),
            }),
        }
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn status(&self) -> SyncStatus {
        self.inner.status.borrow().clone()
    }

    /// Asks for a run soon; many nudges during a run become one more run.
    pub fn nudge(&self) {
        self.inner.wake.notify_one();
    }

    /// Asks the background loop for a run unless one started within
    /// `max_age`: pages call this on every load and never wait, and a burst
    /// of loads makes at most one run (one read of Zero) per `max_age`.
    pub fn refresh(&self, max_age: Duration) {
        let mut started = self.inner.last_start.lock().expect("last start");
        if started.is_none_or(|at| at.elapsed() >= max_age) {
            // Claimed here, so the loads racing this one do not nudge again
            // (a second nudge would queue a second run).
            *started = Some(Instant::now());
            drop(started);
            self.nudge();
        }
    }

    /// Runs a sync now, or joins one that started after this call: concurrent
    /// callers (page loads) share one run.
    pub async fn sync_now(&self) -> Result<SyncReport, SyncFailure> {
        let asked = Instant::now();
        let mut last = self.inner.last_run.lock().await;
        if let Some((started, result)) = last.as_ref()
            && *started >= asked
        {
            return result.clone();
        }
        let started = Instant::now();
        *self.inner.last_start.lock().expect("last start") = Some(started);
        let result = self.run_once().await.map_err(|e| e.failure());
        let cfg = &self.inner.config;
        measure::run_ended(
            &cfg.policy_name,
            &result,
            started.elapsed(),
            cfg.clock.now(),
        );
        *last = Some((started, result.clone()));
        result
    }

    /// Waits until the remote policy reflects store generation `generation`
    /// (written by this or another replica), or `timeout` passes.
    pub async fn wait_applied(&self, generation: u64, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut rx = self.inner.status.subscribe();
        loop {
            if rx.borrow_and_update().applied_generation >= generation {
                return true;
            }
            let other_replica = self
                .inner
                .store
                .sync_state(&self.inner.config.policy_name)
                .await;
            if other_replica.is_ok_and(|s| s.applied_generation >= generation) {
                return true;
            }
            tokio::select! {
                _ = rx.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = tokio::time::sleep_until(deadline) => return false,
            }
        }
    }
}
