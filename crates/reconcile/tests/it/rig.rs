//! What every reconciler test needs: a store, an in-memory Zero, a clock the
//! test moves, and reconcilers that read it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jit_domain::{Actor, Email, GrantDuration, RemoteEntry, Rules};
use jit_ppl::jit::DecodeOptions;
use jit_reconcile::{Clock, Config, Observed, Reconciler};
use jit_store::{AuditQuery, Store};
use time::OffsetDateTime;
use time::macros::datetime;

use crate::mem_zero::{MemZero, NAMESPACE};

pub const POLICY: &str = "jit-example";
pub const T0: OffsetDateTime = datetime!(2026-11-30 12:00 UTC);
pub const TTL: Duration = Duration::from_secs(15);

#[derive(Clone)]
pub struct SimClock(Arc<Mutex<OffsetDateTime>>);

impl SimClock {
    pub fn new() -> Self {
        Self(Arc::new(Mutex::new(T0)))
    }
    pub fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

pub struct Rig {
    pub store: Store,
    pub zero: MemZero,
    pub clock: SimClock,
    pub rules: Rules,
}

pub fn email(s: &str) -> Email {
    Email::parse(s).expect("test email")
}

impl Rig {
    pub async fn new(store: Store) -> Self {
        Self {
            store,
            zero: MemZero::new(),
            clock: SimClock::new(),
            rules: Rules::default(),
        }
    }

    pub async fn sqlite() -> Self {
        Self::new(Store::connect("sqlite::memory:").await.expect("store")).await
    }

    /// A reconciler named `holder` talking to `zero`.
    pub fn reconciler_via(&self, holder: &str, zero: MemZero) -> Reconciler {
        let clock = self.clock.clone();
        self.reconciler_on(
            holder,
            zero,
            Clock::new(move || clock.now()),
            POLICY,
            self.rules.clone(),
        )
    }

    /// A reconciler named `holder` writing `policy` for the resource of
    /// `rules`, through `zero`, reading the time from `clock`.
    pub fn reconciler_on(
        &self,
        holder: &str,
        zero: MemZero,
        clock: Clock,
        policy: &str,
        rules: Rules,
    ) -> Reconciler {
        let mut config = Config::new(policy, "cluster-1");
        config.namespace_id = NAMESPACE.into();
        config.holder = holder.into();
        config.lease_ttl = TTL;
        config.clock = clock;
        Reconciler::new(config, self.store.clone(), zero, rules)
    }

    pub fn reconciler(&self, holder: &str) -> Reconciler {
        self.reconciler_via(holder, self.zero.clone())
    }

    pub async fn request(&self, who: &str) {
        let e = email(who);
        let now = self.clock.now();
        self.store
            .decide(&self.rules.resource, &e, |open| {
                self.rules.request(open, &e, None, now)
            })
            .await
            .unwrap()
            .expect("request");
    }

    pub async fn approve(&self, who: &str, minutes: u32) {
        let e = email(who);
        let now = self.clock.now();
        let d = GrantDuration::from_minutes(minutes).unwrap();
        self.store
            .decide(&self.rules.resource, &e, |open| {
                self.rules
                    .approve(open, &e, &email("admin@x.test"), Some(d), now)
            })
            .await
            .unwrap()
            .expect("approve");
    }

    pub async fn revoke(&self, who: &str) {
        let e = email(who);
        let now = self.clock.now();
        self.store
            .decide(&self.rules.resource, &e, |open| {
                self.rules
                    .revoke(open, &e, &email("admin@x.test"), None, now)
            })
            .await
            .unwrap()
            .expect("revoke");
    }

    pub async fn cancel(&self, who: &str) {
        let e = email(who);
        let now = self.clock.now();
        self.store
            .decide(&self.rules.resource, &e, |open| {
                self.rules.cancel(open, &e, now)
            })
            .await
            .unwrap()
            .expect("cancel");
    }

    /// The JIT entries Zero holds now.
    pub fn remote(&self) -> BTreeMap<Email, RemoteEntry> {
        self.remote_of(POLICY)
    }

    /// The JIT entries of the policy named `policy` in Zero now.
    pub fn remote_of(&self, policy: &str) -> BTreeMap<Email, RemoteEntry> {
        self.zero
            .ppl(policy)
            .map(|v| {
                Observed::scan(&v.to_string(), &DecodeOptions::default())
                    .unwrap()
                    .entries
            })
            .unwrap_or_default()
    }

    /// The JIT entries the store says Zero should hold now.
    pub async fn desired(&self) -> BTreeMap<Email, RemoteEntry> {
        let open = self
            .store
            .open_requests_on(&self.rules.resource)
            .await
            .unwrap();
        jit_domain::desired_entries(&open, self.clock.now())
            .into_iter()
            .collect()
    }

    /// Audit events attributed to the Zero console.
    pub async fn adoptions(&self) -> Vec<String> {
        self.store
            .audit(AuditQuery::latest(10_000))
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.event.actor == Actor::Zero)
            .map(|r| format!("{} {}", r.event.action.as_str(), r.event.subject))
            .collect()
    }
}
