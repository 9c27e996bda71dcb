//! An in-memory Pomerium Zero for the reconciler: policies by id, and
//! faults injected per call kind — a call that fails before doing anything,
//! one that does its work and then loses the answer (the connection breaks
//! on the way back), and one that stalls until released. Handles made with
//! [`MemZero::replica`] share the policies but have their own faults, like
//! two replicas talking to one Zero.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use jit_reconcile::PolicyApi;
use jit_zero::{
    Changeset, ChangesetComparison, ChangesetStatus, ClusterSettings, Operation, Policy,
    PolicyProperties, PolicyRef, ZeroError,
};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Call {
    List,
    Get,
    Create,
    Update,
}

#[derive(Debug, Clone)]
pub enum Fault {
    /// Fails before doing anything (HTTP 503).
    Fail,
    /// Does the work, then the answer is lost.
    LoseAnswer,
    /// Waits at the door until released, then does the work.
    Stall(Gate),
}

/// A door a stalled call waits at: the test learns it arrived, then lets it through.
#[derive(Debug, Clone)]
pub struct Gate {
    arrived: Arc<Semaphore>,
    open: Arc<Semaphore>,
}

impl Gate {
    pub fn new() -> Self {
        Self {
            arrived: Arc::new(Semaphore::new(0)),
            open: Arc::new(Semaphore::new(0)),
        }
    }

    pub async fn arrived(&self) {
        tokio::time::timeout(Duration::from_secs(10), self.arrived.acquire())
            .await
            .expect("the stalled call never arrived")
            .expect("gate open")
            .forget();
    }

    pub fn release(&self) {
        self.open.add_permits(1);
    }
}

#[derive(Debug, Default)]
struct Remote {
    policies: Vec<Policy>,
    next_id: u64,
    writes: u64,
    /// Keeps documents in a form of its own, as a server storing them in a
    /// JSON column would: indented, object keys in reverse order.
    reformats: bool,
}

#[derive(Debug, Clone, Default)]
pub struct MemZero {
    remote: Arc<Mutex<Remote>>,
    faults: Arc<Mutex<HashMap<Call, VecDeque<Fault>>>>,
}

pub const NAMESPACE: &str = "ns-1";

impl MemZero {
    pub fn new() -> Self {
        Self::default()
    }

    /// Another handle on the same policies, with faults of its own.
    pub fn replica(&self) -> Self {
        Self {
            remote: self.remote.clone(),
            faults: Default::default(),
        }
    }

    /// The next call of this kind meets `fault`.
    pub fn inject(&self, call: Call, fault: Fault) {
        self.faults
            .lock()
            .unwrap()
            .entry(call)
            .or_default()
            .push_back(fault);
    }

    pub fn clear_faults(&self) {
        self.faults.lock().unwrap().clear();
    }

    /// From now on, keeps what is written in a form of its own.
    pub fn reformat_what_is_written(&self) {
        self.remote.lock().unwrap().reformats = true;
    }

    pub fn writes(&self) -> u64 {
        self.remote.lock().unwrap().writes
    }

    pub fn count(&self, name: &str) -> usize {
        let remote = self.remote.lock().unwrap();
        remote
            .policies
            .iter()
            .filter(|p| p.properties().name == name)
            .count()
    }

    /// The PPL of the policy named `name`.
    pub fn ppl(&self, name: &str) -> Option<Value> {
        let remote = self.remote.lock().unwrap();
        remote
            .policies
            .iter()
            .find(|p| p.properties().name == name)
            .map(|p| p.properties().ppl.to_value())
    }

    /// An edit in the console: the policy named `name` gets `ppl`.
    pub fn console_set(&self, name: &str, ppl: Value) {
        let mut remote = self.remote.lock().unwrap();
        let p = remote
            .policies
            .iter_mut()
            .find(|p| p.properties().name == name)
            .expect("no such policy");
        let mut props = p.clone().into_properties();
        props.ppl = ppl.into();
        *p = stored(&p.id, props, false);
    }

    /// A policy made in the console.
    pub fn console_create(&self, name: &str, ppl: Value) {
        let mut remote = self.remote.lock().unwrap();
        remote.next_id += 1;
        let id = format!("pol-{}", remote.next_id);
        let props: PolicyProperties = serde_json::from_value(json!({
            "name": name, "namespaceId": NAMESPACE, "description": "", "enforced": false,
            "explanation": "", "remediation": "", "ppl": ppl,
        }))
        .expect("properties");
        remote.policies.push(stored(&id, props, false));
    }

    async fn fault(&self, call: Call, op: Operation) -> Result<bool, ZeroError> {
        let fault = self
            .faults
            .lock()
            .unwrap()
            .get_mut(&call)
            .and_then(VecDeque::pop_front);
        match fault {
            None => Ok(false),
            Some(Fault::Fail) => Err(unavailable(op)),
            Some(Fault::LoseAnswer) => Ok(true),
            Some(Fault::Stall(gate)) => {
                gate.arrived.add_permits(1);
                gate.open.acquire().await.expect("gate").forget();
                Ok(false)
            }
        }
    }

    async fn call<T>(
        &self,
        call: Call,
        op: Operation,
        work: impl FnOnce(&mut Remote) -> Result<T, ZeroError>,
    ) -> Result<T, ZeroError> {
        let lose = self.fault(call, op).await?;
        let result = work(&mut self.remote.lock().unwrap());
        if lose && result.is_ok() {
            return Err(ZeroError::Timeout {
                op,
                attempts: 1,
                timeout: Duration::from_secs(10),
            });
        }
        result
    }
}

fn stored(id: &str, props: PolicyProperties, reformat: bool) -> Policy {
    let mut v = serde_json::to_value(props).expect("properties serialize");
    v["id"] = json!(id);
    v["createdAt"] = json!("2026-11-28T12:00:00Z");
    v["updatedAt"] = json!("2026-11-28T12:00:00Z");
    if !reformat {
        return serde_json::from_value(v).expect("a policy");
    }
    fn reverse_keys(v: &mut Value) {
        match v {
            Value::Object(map) => {
                *map = std::mem::take(map).into_iter().rev().collect();
                map.values_mut().for_each(reverse_keys);
            }
            Value::Array(items) => items.iter_mut().for_each(reverse_keys),
            _ => {}
        }
    }
    reverse_keys(&mut v["ppl"]);
    let text = serde_json::to_string_pretty(&v).expect("a policy serializes");
    serde_json::from_str(&text).expect("a policy")
}

fn unavailable(op: Operation) -> ZeroError {
    ZeroError::Status {
        op,
        status: http::StatusCode::SERVICE_UNAVAILABLE,
        attempts: 1,
        body: "unavailable".into(),
    }
}

fn not_found(op: Operation, id: &str) -> ZeroError {
    ZeroError::NotFound {
        op,
        path: format!("policies/{id}"),
        body: String::new(),
    }
}

impl PolicyApi for MemZero {
    fn list_policies<'a>(
        &'a self,
        namespace_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Policy>, ZeroError>> {
        Box::pin(self.call(Call::List, Operation::ListPolicies, move |r| {
            Ok(r.policies
                .iter()
                .filter(|p| p.properties().namespace_id == namespace_id)
                .cloned()
                .collect())
        }))
    }

    fn get_policy<'a>(&'a self, policy_id: &'a str) -> BoxFuture<'a, Result<Policy, ZeroError>> {
        Box::pin(self.call(Call::Get, Operation::GetPolicy, move |r| {
            r.policies
                .iter()
                .find(|p| p.id == policy_id)
                .cloned()
                .ok_or_else(|| not_found(Operation::GetPolicy, policy_id))
        }))
    }

    fn create_policy<'a>(
        &'a self,
        properties: &'a PolicyProperties,
    ) -> BoxFuture<'a, Result<PolicyRef, ZeroError>> {
        Box::pin(self.call(Call::Create, Operation::CreatePolicy, move |r| {
            r.next_id += 1;
            r.writes += 1;
            let p = stored(
                &format!("pol-{}", r.next_id),
                properties.clone(),
                r.reformats,
            );
            let id = p.id.clone();
            r.policies.push(p);
            Ok(PolicyRef { id })
        }))
    }

    fn update_policy<'a>(
        &'a self,
        policy_id: &'a str,
        properties: PolicyProperties,
    ) -> BoxFuture<'a, Result<(), ZeroError>> {
        Box::pin(self.call(Call::Update, Operation::UpdatePolicy, move |r| {
            let p = r
                .policies
                .iter_mut()
                .find(|p| p.id == policy_id)
                .ok_or_else(|| not_found(Operation::UpdatePolicy, policy_id))?;
            *p = stored(policy_id, properties.clone(), r.reformats);
            r.writes += 1;
            Ok(())
        }))
    }

    fn get_cluster_settings<'a>(
        &'a self,
        _cluster_id: &'a str,
    ) -> BoxFuture<'a, Result<ClusterSettings, ZeroError>> {
        Box::pin(async {
            Ok(serde_json::from_value(json!({ "autoApplyChangesets": true })).expect("settings"))
        })
    }

    fn list_changesets<'a>(
        &'a self,
        _cluster_id: &'a str,
        _status: Option<&'a ChangesetStatus>,
    ) -> BoxFuture<'a, Result<Vec<Changeset>, ZeroError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn compare_changesets<'a>(
        &'a self,
        _cluster_id: &'a str,
        _first_id: Option<&'a str>,
        _second_id: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ChangesetComparison, ZeroError>> {
        Box::pin(async { Err(not_found(Operation::CompareChangesets, "compare")) })
    }

    fn apply_changeset<'a>(
        &'a self,
        changeset_id: &'a str,
    ) -> BoxFuture<'a, Result<Changeset, ZeroError>> {
        Box::pin(async move { Err(not_found(Operation::ApplyChangeset, changeset_id)) })
    }
}
