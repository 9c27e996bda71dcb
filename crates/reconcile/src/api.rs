//! The part of the Pomerium Zero API the reconciler uses, as a trait, so
//! its logic can be tested against stand-ins that lose answers, stall or
//! fail on cue.

use futures_util::future::BoxFuture;
use jit_zero::{
    Changeset, ChangesetComparison, ChangesetStatus, ClusterSettings, Policy, PolicyProperties,
    PolicyRef, ZeroClient, ZeroError,
};

pub trait PolicyApi: Send + Sync + 'static {
    fn list_policies<'a>(
        &'a self,
        namespace_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Policy>, ZeroError>>;
    fn get_policy<'a>(&'a self, policy_id: &'a str) -> BoxFuture<'a, Result<Policy, ZeroError>>;
    /// Creates a policy; answers its id.
    fn create_policy<'a>(
        &'a self,
        properties: &'a PolicyProperties,
    ) -> BoxFuture<'a, Result<PolicyRef, ZeroError>>;
    /// Replaces a policy's properties. They are given away (the PPL in
    /// them may be a megabyte, not to be held while the write is out), and
    /// nothing is read of the answer.
    fn update_policy<'a>(
        &'a self,
        policy_id: &'a str,
        properties: PolicyProperties,
    ) -> BoxFuture<'a, Result<(), ZeroError>>;
    fn get_cluster_settings<'a>(
        &'a self,
        cluster_id: &'a str,
    ) -> BoxFuture<'a, Result<ClusterSettings, ZeroError>>;
    fn list_changesets<'a>(
        &'a self,
        cluster_id: &'a str,
        status: Option<&'a ChangesetStatus>,
    ) -> BoxFuture<'a, Result<Vec<Changeset>, ZeroError>>;
    fn compare_changesets<'a>(
        &'a self,
        cluster_id: &'a str,
        first_id: Option<&'a str>,
        second_id: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ChangesetComparison, ZeroError>>;
    fn apply_changeset<'a>(
        &'a self,
        changeset_id: &'a str,
    ) -> BoxFuture<'a, Result<Changeset, ZeroError>>;
}

impl PolicyApi for ZeroClient {
    fn list_policies<'a>(
        &'a self,
        namespace_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Policy>, ZeroError>> {
        Box::pin(ZeroClient::list_policies(self, namespace_id))
    }
    fn get_policy<'a>(&'a self, policy_id: &'a str) -> BoxFuture<'a, Result<Policy, ZeroError>> {
        Box::pin(ZeroClient::get_policy(self, policy_id))
    }
    fn create_policy<'a>(
        &'a self,
        properties: &'a PolicyProperties,
    ) -> BoxFuture<'a, Result<PolicyRef, ZeroError>> {
        Box::pin(ZeroClient::create_policy(self, properties))
    }
    fn update_policy<'a>(
        &'a self,
        policy_id: &'a str,
        properties: PolicyProperties,
    ) -> BoxFuture<'a, Result<(), ZeroError>> {
        Box::pin(ZeroClient::replace_policy(self, policy_id, properties))
    }
    fn get_cluster_settings<'a>(
        &'a self,
        cluster_id: &'a str,
    ) -> BoxFuture<'a, Result<ClusterSettings, ZeroError>> {
        Box::pin(ZeroClient::get_cluster_settings(self, cluster_id))
    }
    fn list_changesets<'a>(
        &'a self,
        cluster_id: &'a str,
        status: Option<&'a ChangesetStatus>,
    ) -> BoxFuture<'a, Result<Vec<Changeset>, ZeroError>> {
        Box::pin(ZeroClient::list_changesets(self, cluster_id, status))
    }
    fn compare_changesets<'a>(
        &'a self,
        cluster_id: &'a str,
        first_id: Option<&'a str>,
        second_id: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ChangesetComparison, ZeroError>> {
        Box::pin(ZeroClient::compare_changesets(
            self, cluster_id, first_id, second_id,
        ))
    }
    fn apply_changeset<'a>(
        &'a self,
        changeset_id: &'a str,
    ) -> BoxFuture<'a, Result<Changeset, ZeroError>> {
        Box::pin(ZeroClient::apply_changeset(self, changeset_id))
    }
}
