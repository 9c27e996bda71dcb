//! A seeded simulation of the reconciler: two replicas and one in-memory
//! Zero, with decisions, console edits (JIT and foreign rules) and clock
//! jumps at random moments, and faults at every call: answers lost after a
//! write landed, failures, a crash between the intent and the write, a
//! replica stalled past its lease. After every step it checks the design's
//! invariants; once the faults stop, that the policy converges.
//!
//! Half the schedules run under strict rules: two approvals from different
//! approvers, and up to two extensions, each approved by two; there it also
//! checks that no grant was decided with fewer.
//!
//! `SIM_SCHEDULES` sets how many schedules run (default 2000); a failing
//! one prints its seed and its steps, and `SIM_SEED=<seed>` replays it.

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU8;
use std::time::Duration;

use jit_domain::{Action, Actor, Email, GrantDuration, RemoteEntry, Rules};
use jit_ppl::jit::DecodeOptions;
use jit_ppl::{Policy, Rule};
use jit_reconcile::{Observed, Reconciler, render};
use jit_store::AuditQuery;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::mem_zero::{Call, Fault, Gate, MemZero};
use crate::rig::{POLICY, Rig, TTL, email};

const PEOPLE: [&str; 4] = ["ann@x.test", "ben@x.test", "cat@x.test", "dan@x.test"];
const ADMINS: [&str; 2] = ["admin@x.test", "boss@x.test"];
const STEPS: usize = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_schedules_keep_the_invariants() {
    let seeds: Vec<u64> = match std::env::var("SIM_SEED") {
        Ok(seed) => vec![seed.parse().expect("SIM_SEED is a number")],
        Err(_) => {
            let n: u64 = std::env::var("SIM_SCHEDULES")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(2000);
            let base: u64 = rand::random();
            (0..n).map(|i| base.wrapping_add(i)).collect()
        }
    };
    let started = std::time::Instant::now();
    let (mut several, mut extensions) = (0, 0);
    for seed in &seeds {
        let mut sim = Sim::new(*seed).await;
        let outcome = tokio::time::timeout(Duration::from_secs(30), sim.run()).await;
        if let Err(problem) = outcome.unwrap_or_else(|_| Err("stuck for 30 s".into())) {
            panic!(
                "schedule {seed} broke an invariant: {problem}\nsteps:\n  {}\nreplay: SIM_SEED={seed} cargo test -p jit-reconcile --test it seeded_schedules",
                sim.trace.join("\n  ")
            );
        }
        several += sim.covered.0;
        extensions += sim.covered.1;
    }
    if seeds.len() >= 500 {
        assert!(
            several > 0 && extensions > 0,
            "the schedules never took the strict paths: {several} grants by several \
             approvers, {extensions} extensions"
        );
    }
    eprintln!(
        "{} schedules of {STEPS} steps in {:.1?}: {several} grants by several approvers, \
         {extensions} extensions",
        seeds.len(),
        started.elapsed()
    );
}

struct Sim {
    rng: StdRng,
    rig: Rig,
    replicas: [(Reconciler, MemZero); 2],
    restarts: usize,
    /// Foreign rules as the console left them, in order.
    foreign: Vec<Rule>,
    /// Everyone whose JIT entry was ever edited in the console.
    touched: BTreeSet<Email>,
    trace: Vec<String>,
    /// Grants by several approvers and extensions, once it has run.
    covered: (usize, usize),
}

impl Sim {
    async fn new(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut rig = Rig::sqlite().await;
        if rng.random_bool(0.5) {
            rig.rules = Rules {
                approvals_needed: NonZeroU8::new(2).unwrap(),
                max_extensions: 2,
                ..Rules::default()
            };
        }
        let rig_rules_summary = (rig.rules.approvals_needed, rig.rules.max_extensions);
        let replicas = [0, 1].map(|i| {
            let zero = rig.zero.replica();
            (rig.reconciler_via(&format!("r{i}-0"), zero.clone()), zero)
        });
        let mut sim = Self {
            rng,
            rig,
            replicas,
            restarts: 0,
            foreign: Vec::new(),
            touched: BTreeSet::new(),
            covered: (0, 0),
            trace: vec![format!(
                "rules: {} approvals, {} extensions",
                rig_rules_summary.0, rig_rules_summary.1
            )],
        };
        // An existing policy with a rule of the operator's, as in the original's setup.
        let foreign = json!([{ "allow": { "or": [{ "domain": { "is": "x.test" } }] } }]);
        sim.rig.zero.console_create(POLICY, foreign.clone());
        sim.foreign = Policy::parse(&foreign).unwrap().rules().to_vec();
        sim
    }

    async fn run(&mut self) -> Result<(), String> {
        for _ in 0..STEPS {
            let roll = self.rng.random_range(0..100);
            match roll {
                0..30 => self.decide().await,
                30..42 => self.console_edit(),
                42..80 => {
                    let k = self.rng.random_range(0..2);
                    self.sync_with_faults(k).await?
                }
                80..86 => self.crash_mid_write().await,
                86..92 => self.pause_past_the_lease().await?,
                _ => {
                    let secs = self.rng.random_range(1..90);
                    self.trace.push(format!("clock +{secs}s"));
                    self.rig.clock.advance(Duration::from_secs(secs));
                }
            }
            self.check_adoptions().await?;
        }
        self.converge().await
    }

    async fn decide(&mut self) {
        let who = email(PEOPLE[self.rng.random_range(0..PEOPLE.len())]);
        let admin = email(ADMINS[self.rng.random_range(0..ADMINS.len())]);
        let now = self.rig.clock.now();
        let rules = &self.rig.rules;
        // Mostly a move that fits where the person stands, so that long
        // paths (two approvals, an extension approved by two) happen;
        // otherwise any move, most of them refused.
        let open = self
            .rig
            .store
            .request_for(&rules.resource, &who)
            .await
            .expect("the store works")
            .filter(|r| r.is_open());
        let fitting: &[usize] = match open.as_ref().map(|r| (&r.state, r.extension.is_some())) {
            None => &[0],
            Some((jit_domain::State::Pending, _)) => &[1, 1, 1, 2],
            Some((_, true)) => &[5, 5, 5, 6],
            Some(_) => &[4, 4, 4, 2],
        };
        let (op, admin) = if self.rng.random_bool(0.8) {
            // An approver who has not approved yet, if there is one.
            let fresh = ADMINS
                .iter()
                .map(|a| email(a))
                .find(|a| open.iter().all(|r| r.approvals.iter().all(|x| &x.by != a)));
            let op = fitting[self.rng.random_range(0..fitting.len())];
            (op, fresh.unwrap_or(admin))
        } else {
            (self.rng.random_range(0..7), admin)
        };
        // Strict rules take longer to grant and extend: longer grants
        // give those paths time before the grant lapses.
        let longest = if rules.max_extensions > 0 { 30 } else { 4 };
        let minutes = self.rng.random_range(1..longest);
        let d = GrantDuration::from_minutes(minutes).unwrap();
        let outcome = self
            .rig
            .store
            .decide(&rules.resource, &who, |open| match op {
                0 => rules.request(open, &who, None, now),
                1 => rules.approve(open, &who, &admin, Some(d), now),
                2 => rules.revoke(open, &who, &admin, None, now),
                3 => rules.cancel(open, &who, now),
                4 => rules.extend(open, &who, d, None, now),
                5 => rules.approve_extension(open, &who, &admin, now),
                _ => rules.reject_extension(open, &who, &admin, None, now),
            })
            .await
            .expect("the store works");
        let name = [
            "request",
            "approve",
            "revoke",
            "cancel",
            "extend",
            "approve extension",
            "reject extension",
        ][op];
        let by = if matches!(op, 1 | 2 | 5 | 6) {
            format!(" by {admin}")
        } else {
            String::new()
        };
        self.trace.push(format!(
            "{name} {who}{by}: {}",
            if outcome.is_ok() { "done" } else { "refused" }
        ));
    }

    fn console_edit(&mut self) {
        let Some(ppl) = self.rig.zero.ppl(POLICY) else {
            return;
        };
        let mut seen = Observed::scan(&ppl.to_string(), &DecodeOptions::default()).unwrap();
        let what = self.rng.random_range(0..5);
        let who = email(PEOPLE[self.rng.random_range(0..PEOPLE.len())]);
        let now = self.rig.clock.now();
        match what {
            0 | 1 => {
                let minutes = self.rng.random_range(-2..120i64);
                seen.entries.insert(
                    who.clone(),
                    RemoteEntry::Grant {
                        starts_at: None,
                        expires_at: now + time::Duration::minutes(minutes),
                    },
                );
                self.trace
                    .push(format!("console: grant {who} for {minutes} min"));
            }
            2 => {
                seen.entries.remove(&who);
                self.trace.push(format!("console: remove {who}"));
            }
            3 => {
                let n = self.rng.random_range(0..1000);
                let rule =
                    json!([{ "allow": { "or": [{ "groups": { "has": format!("team-{n}") } }] } }]);
                let rule = Policy::parse(&rule).unwrap().rules()[0].clone();
                seen.foreign.push(rule);
                self.trace
                    .push(format!("console: add foreign rule team-{n}"));
            }
            _ => {
                if seen.foreign.is_empty() {
                    return;
                }
                let i = self.rng.random_range(0..seen.foreign.len());
                seen.foreign.remove(i);
                self.trace.push(format!("console: remove foreign rule {i}"));
            }
        }
        if what < 3 {
            self.touched.insert(who);
        }
        self.foreign = seen.foreign.clone();
        let entries: Vec<_> = seen.entries.into_iter().collect();
        self.rig
            .zero
            .console_set(POLICY, render(&seen.foreign, &entries).to_value());
    }

    fn random_faults(&mut self, zero: &MemZero) -> Vec<String> {
        let mut injected = Vec::new();
        for (call, lose, fail) in [
            (Call::Update, 25, 10),
            (Call::Create, 25, 10),
            (Call::Get, 0, 5),
            (Call::List, 0, 5),
        ] {
            let roll = self.rng.random_range(0..100);
            let fault = if roll < lose {
                Fault::LoseAnswer
            } else if roll < lose + fail {
                Fault::Fail
            } else {
                continue;
            };
            injected.push(format!("{call:?}:{fault:?}"));
            zero.inject(call, fault);
        }
        injected
    }

    async fn sync_with_faults(&mut self, k: usize) -> Result<(), String> {
        let zero = self.replicas[k].1.clone();
        let faults = self.random_faults(&zero);
        let result = self.replicas[k].0.sync_now().await;
        zero.clear_faults();
        self.trace.push(format!(
            "sync r{k} with {faults:?}: {}",
            match &result {
                Ok(_) => "ok".to_string(),
                Err(f) => format!("failed ({:?})", f.kind),
            }
        ));
        if result.is_ok() {
            self.check_converged("after a successful sync").await?;
        }
        Ok(())
    }

    /// Replica `k` dies after recording its intent and before its write
    /// reaches Zero; it is restarted under a new name.
    async fn crash_mid_write(&mut self) {
        let k = self.rng.random_range(0..2);
        let (rc, zero) = self.replicas[k].clone();
        let gate = Gate::new();
        zero.inject(Call::Update, Fault::Stall(gate.clone()));
        zero.inject(Call::Create, Fault::Stall(gate.clone()));
        let crashed = tokio::select! {
            _ = rc.sync_now() => false,
            _ = gate.arrived() => true,
        };
        zero.clear_faults();
        self.restarts += 1;
        let holder = format!("r{k}-{}", self.restarts);
        self.replicas[k].0 = self.rig.reconciler_via(&holder, zero);
        self.trace.push(format!(
            "crash r{k} {} the write; restarted as {holder}",
            if crashed {
                "before"
            } else {
                "without reaching"
            }
        ));
    }

    /// Replica `k` stalls (on its read or its write) past the lease; the
    /// other one takes over, maybe after a decision; then `k` resumes.
    async fn pause_past_the_lease(&mut self) -> Result<(), String> {
        let k = self.rng.random_range(0..2);
        let (rc, zero) = self.replicas[k].clone();
        let gate = Gate::new();
        let on = if self.rng.random_bool(0.5) {
            Call::Get
        } else {
            Call::Update
        };
        zero.inject(on, Fault::Stall(gate.clone()));
        let mut paused = tokio::spawn(async move { rc.sync_now().await });
        // It may finish without getting there (the lease is busy, a read failed).
        let mut finished = None;
        let arrived = tokio::select! {
            _ = gate.arrived() => true,
            r = &mut paused => { finished = Some(r); false }
        };
        self.trace.push(format!(
            "pause r{k} on {on:?}: {}",
            if arrived {
                "stalled"
            } else {
                "never got there"
            }
        ));
        self.rig.clock.advance(TTL * 2);
        if self.rng.random_bool(0.7) {
            self.decide().await;
        }
        self.sync_with_faults(1 - k).await?;
        gate.release();
        let resumed = match finished {
            Some(r) => r,
            None => paused.await,
        }
        .expect("the paused run does not panic");
        zero.clear_faults();
        self.trace.push(format!(
            "r{k} resumed: {}",
            if resumed.is_ok() { "ok" } else { "failed" }
        ));
        Ok(())
    }

    /// Nothing the app wrote itself comes back as a console edit: every
    /// change attributed to Zero is about someone edited in the console.
    async fn check_adoptions(&self) -> Result<(), String> {
        let events = self
            .rig
            .store
            .audit(AuditQuery::latest(100_000))
            .await
            .expect("audit");
        for r in events {
            if r.event.actor == Actor::Zero && !self.touched.contains(&r.event.subject) {
                return Err(format!(
                    "adopted `{} {}` though nobody edited that entry in the console",
                    r.event.action.as_str(),
                    r.event.subject
                ));
            }
        }
        Ok(())
    }

    /// Every grant and extension an approver decided had as many distinct
    /// approvers as the rules need, and no grant was extended more often
    /// than they allow.
    /// Returns how many grants took several approvers and how many
    /// extensions there were, to show the strict paths were taken.
    async fn check_approvals(&self) -> Result<(usize, usize), String> {
        let rules = &self.rig.rules;
        let needed = usize::from(rules.approvals_needed.get());
        let events = self
            .rig
            .store
            .audit(AuditQuery::latest(100_000))
            .await
            .expect("audit");
        let mut extended: BTreeMap<_, u32> = BTreeMap::new();
        let mut several = 0;
        for r in events.iter().rev() {
            let e = &r.event;
            let by_approver = matches!(e.actor, Actor::User(_));
            let approvers = |key: &str| {
                e.details[key]
                    .as_array()
                    .map(|a| a.iter().filter_map(|v| v.as_str()).collect::<BTreeSet<_>>())
                    .unwrap_or_default()
            };
            match e.action {
                Action::Approved if by_approver && needed > 1 => {
                    if approvers("approvers").len() < needed {
                        return Err(format!(
                            "seq {}: {} approved with {:?}, fewer than {needed} approvers",
                            r.seq, e.subject, e.details
                        ));
                    }
                    several += 1;
                }
                Action::Extended => {
                    let n = extended.entry(e.request_id).or_default();
                    *n += 1;
                    if *n > rules.max_extensions {
                        return Err(format!(
                            "seq {}: {} extended {n} times, more than {}",
                            r.seq, e.subject, rules.max_extensions
                        ));
                    }
                }
                _ => {}
            }
        }
        for req in self.rig.store.open_requests().await.expect("open") {
            if req.approvals.len() >= needed && req.state == jit_domain::State::Pending {
                return Err(format!(
                    "{} is pending with {} approvals, enough to be granted",
                    req.email,
                    req.approvals.len()
                ));
            }
        }
        Ok((several, extended.values().map(|n| *n as usize).sum()))
    }

    /// The policy holds exactly what the store decided, plus the console's
    /// foreign rules, verbatim and in order.
    async fn check_converged(&self, when: &str) -> Result<(), String> {
        let ppl = self.rig.zero.ppl(POLICY).ok_or("the policy is gone")?;
        let seen = Observed::scan(&ppl.to_string(), &DecodeOptions::default()).unwrap();
        let desired = self.rig.desired().await;
        if seen.entries != desired {
            return Err(format!(
                "{when}: Zero holds {:?} but the store decided {:?}",
                seen.entries, desired
            ));
        }
        if seen.foreign != self.foreign {
            return Err(format!(
                "{when}: foreign rules changed: {:?}, expected {:?}",
                seen.foreign, self.foreign
            ));
        }
        if self.rig.zero.count(POLICY) != 1 {
            return Err(format!("{when}: {} policies", self.rig.zero.count(POLICY)));
        }
        Ok(())
    }

    /// With the faults gone and the leases expired, one run converges and
    /// the audit trail is intact.
    async fn converge(&mut self) -> Result<(), String> {
        self.rig.clock.advance(TTL * 2);
        let result = self.replicas[0].0.sync_now().await;
        self.trace
            .push(format!("final sync: {:?}", result.as_ref().map(|_| ())));
        result.map_err(|f| format!("the final sync failed: {f}"))?;
        self.check_converged("at the end").await?;
        self.check_adoptions().await?;
        self.covered = self.check_approvals().await?;
        let chain = self.rig.store.verify_audit_chain().await.expect("verify");
        if !chain.is_intact() {
            return Err(format!("the audit trail is broken: {chain:?}"));
        }
        Ok(())
    }
}
