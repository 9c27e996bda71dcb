//! The use cases of pomerium-jit, between the web edge and the store.
//!
//! Every change follows one path ([`Service::decide`]): the domain rules
//! decide inside one store transaction (state + audit event), the reconciler
//! is nudged, and the caller waits a bounded time for the change to reach
//! Pomerium Zero. Either way the decision is already durable; [`Applied`]
//! says whether it is in force yet.
//!
//! Hot reads (the index page's "your status") come from an in-memory
//! snapshot, updated by this process's own commits at once and reloaded
//! within a second when the store's generation moves (another replica, or
//! edits adopted from Zero).

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::ops::Range;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt, stream};
use jit_domain::{
    Ask, DomainError, Email, GrantDuration, Reason, Request, RequestId, Resource, ResourceName,
    Seen, Status, Transition,
};
use jit_reconcile::Reconciler;
use jit_store::{Store, StoreError};
use latest::Latest;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

mod admins;
mod audit;
mod history;
mod latest;
mod measure;
mod notify;
mod operator;

pub use admins::{Admins, Caller, Route};
pub use audit::AuditCheck;
pub use history::{
    HistoryCursor, HistoryEntry, HistoryFilter, HistoryPage, RequestCursor, RequestFilter,
    RequestPage, Whose,
};
pub use jit_store::ChannelStatus;
pub use jit_store::{AuditQuery, AuditRecord, ChainReport};
pub use notify::{ChannelView, NotificationStatus};
// What the edge shows about syncing, so it needs neither the reconciler nor the store.
pub use jit_reconcile::{FailureKind, SyncFailure, SyncStatus};
pub use jit_store::SyncState;

/// Whether a durable decision is in force in Pomerium yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The policy in Zero now says so.
    Applied,
    /// Saved, but not yet in the policy within the wait; the reconciler keeps
    /// trying. Carries the latest sync failure, if that is why.
    Saved(Option<SyncFailure>),
}

/// The result of a change: the request as it now stands, and whether it is applied.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub request: Request,
    pub applied: Applied,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(
        "only admins can do this; ask an admin to add your email to ADMIN_EMAILS or one of your groups to ADMIN_GROUPS"
    )]
    NotAdmin,
    /// Open admin mode, reached outside Pomerium's `/admin` route.
    #[error(
        "no ADMIN_EMAILS or ADMIN_GROUPS are set, so admin rights exist only on Pomerium's /admin route"
    )]
    AdminRouteOnly,
    #[error("you are not an approver of {title}; ask one of its approvers")]
    NotApprover { title: String },
    #[error("there is no resource named `{0}`; pick one from the catalog on the home page")]
    UnknownResource(String),
    #[error("that request does not exist, or is not yours to see")]
    NoSuchRequest,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Decisions without a `seen` (the Go original's email-only forms) act on
/// whatever is open.
fn check_seen(
    seen: Option<Seen>,
    open: Option<&Request>,
    email: &Email,
    now: OffsetDateTime,
) -> Result<(), DomainError> {
    seen.map_or(Ok(()), |s| s.check(open, email, now))
}

/// What an approver decides about one person's request on a resource.
#[derive(Debug, Clone)]
pub enum Decision {
    /// Approves a pending request (or records this approver's approval
    /// while more are needed), for this duration or the default.
    Approve { duration: Option<GrantDuration> },
    /// Approves the extension an active grant's holder asked for.
    ApproveExtension,
    /// Declines an asked extension; the access runs on.
    RejectExtension { comment: Option<Reason> },
    /// Rejects a pending request or revokes active access: the Go
    /// original's `revoke-access` did both.
    Revoke { comment: Option<Reason> },
    /// Grants access to someone who has not asked; the ask must carry a reason.
    Grant { ask: Ask },
}

/// One resource and the reconciler that writes its policy.
#[derive(Debug, Clone)]
pub struct Desk {
    pub resource: Resource,
    pub reconciler: Reconciler,
}

/// What the admin page shows of one resource the caller approves.
#[derive(Debug, Clone)]
pub struct ResourceView {
    pub resource: Resource,
    /// Waiting for a decision, oldest first: the rows of the window asked.
    pub pending: Vec<Request>,
    /// Holding access, soonest expiry first; those with an asked extension
    /// wait for a decision too. The rows of the window asked.
    pub active: Vec<Request>,
    /// Where the shown `pending` rows sit in the whole list.
    pub pending_span: Span,
    /// Where the shown `active` rows sit in the whole list.
    pub active_span: Span,
    pub sync: SyncStatus,
}

/// One of a resource's two lists on the approvers' page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum List {
    Pending,
    Active,
}

impl List {
    pub fn as_str(self) -> &'static str {
        match self {
            List::Pending => "pending",
            List::Active => "active",
        }
    }
}

/// Which rows of each resource's lists a view holds.
#[derive(Debug, Clone, Default)]
pub struct Window {
    /// Rows per list; `None`: every row.
    pub size: Option<NonZeroUsize>,
    /// Rows skipped per resource and list (none when absent).
    pub offsets: HashMap<(ResourceName, List), usize>,
}

/// Where a list's shown rows sit: the first one's index and the whole
/// list's length.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Span {
    pub offset: usize,
    pub total: usize,
}

impl Window {
    /// The rows this window shows of `list` on `resource`, out of `total`
    /// sorted rows. An offset past the end shows the last page, so a link
    /// to a list that shrank meanwhile still shows rows.
    fn cut(&self, resource: &ResourceName, list: List, total: usize) -> (Span, Range<usize>) {
        let Some(size) = self.size else {
            return (Span { offset: 0, total }, 0..total);
        };
        let asked = self
            .offsets
            .get(&(resource.clone(), list))
            .copied()
            .unwrap_or(0);
        let offset = if asked < total {
            asked
        } else {
            total.saturating_sub(1) / size.get() * size.get()
        };
        let end = total.min(offset + size.get());
        (Span { offset, total }, offset..end)
    }
}

/// Everything the admin page shows.
#[derive(Debug, Clone)]
pub struct AdminView {
    pub resources: Vec<ResourceView>,
    /// Recently ended requests on those resources, newest first.
    pub ended: Vec<Request>,
    /// The latest sync of those resources' policies, or the first failure.
    pub fresh: Result<(), SyncFailure>,
}

/// Which open grants a bulk revocation ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevokeScope {
    /// Only this person's; `None`: everyone's.
    pub person: Option<Email>,
    /// Only on this resource; `None`: every resource the caller approves.
    pub resource: Option<ResourceName>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub admins: Admins,
    /// How long a change waits to be applied before answering.
    pub apply_wait: Duration,
    /// How many ended requests the admin page and snapshot keep.
    pub recent_ended: usize,
    /// How old a resource's last sync may be before a load of the
    /// approvers' page starts one in the background.
    pub sync_max_age: Duration,
    /// How long the syncs of a policy may keep failing before `/readyz`
    /// fails (zero: at once).
    pub ready_sync_grace: Duration,
    /// How old a check of the audit trail may be before the audit page
    /// redoes it (a full walk and replay).
    pub audit_check_max_age: Duration,
    /// The configured notification channels: name and kind, in config order.
    pub notification_channels: Vec<(String, String)>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            admins: Admins::default(),
            apply_wait: Duration::from_secs(5),
            recent_ended: 200,
            sync_max_age: Duration::from_secs(5),
            ready_sync_grace: Duration::ZERO,
            audit_check_max_age: Duration::from_secs(300),
            notification_channels: Vec::new(),
        }
    }
}

#[derive(Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("settings", &self.inner.settings)
            .field("resources", &self.inner.desks.len())
            .finish_non_exhaustive()
    }
}

struct Inner {
    store: Store,
    /// In catalog order.
    desks: Vec<Desk>,
    settings: Settings,
    snapshot: RwLock<Arc<Snapshot>>,
    /// Held while the snapshot is reloaded ([`Service::current`]).
    reloading: tokio::sync::Mutex<()>,
    reloads: AtomicU64,
    last_audit_check: audit::LastCheck,
}

/// The latest request per person and resource (open, or recently ended),
/// with the store generation it reflects. Requests are shared, so the copy
/// a change makes while pages still read the old snapshot copies pointers.
#[derive(Debug, Default, Clone)]
struct Snapshot {
    generation: u64,
    latest: Latest,
    /// The most recently ended requests, newest first, at most
    /// [`Settings::recent_ended`].
    ended: Vec<Request>,
    /// The open requests per resource, sorted as the admin page lists them
    /// ([`Snapshot::open_lists`]): sorted once per change, not per page
    /// (sorting 10,000 requests was most of a page's time). Emptied by
    /// every change.
    lists: OnceLock<OpenLists>,
}

/// Per resource: its pending requests (oldest first) and active grants
/// (soonest to end first).
type OpenLists = HashMap<ResourceName, [Vec<Arc<Request>>; 2]>;

impl Snapshot {
    fn open_lists(&self) -> &OpenLists {
        self.lists.get_or_init(|| {
            let mut lists = OpenLists::new();
            for r in self.latest.iter().map(|(_, r)| r).filter(|r| r.is_open()) {
                let list = usize::from(r.state.status() != Status::Pending);
                lists.entry(r.resource.clone()).or_default()[list].push(r.clone());
            }
            for [pending, active] in lists.values_mut() {
                // Ties broken by request order (ids are unique), so pages
                // hold the same rows on every load (grants approved in one
                // second end in the same one).
                pending.sort_unstable_by_key(|r| r.order());
                active.sort_unstable_by_key(|r| {
                    (r.state.grant().map(|g| g.expires_at), r.requested_at, r.id)
                });
            }
            lists
        })
    }
}

impl Service {
    /// Builds the service over `desks` (at least one, names distinct) and
    /// loads the snapshot.
    pub async fn new(
        store: Store,
        desks: Vec<Desk>,
        settings: Settings,
    ) -> Result<Self, StoreError> {
        assert!(!desks.is_empty(), "a service needs at least one resource");
        let service = Self {
            inner: Arc::new(Inner {
                store,
                desks,
                settings,
                snapshot: RwLock::new(Arc::default()),
                reloading: tokio::sync::Mutex::new(()),
                reloads: AtomicU64::new(0),
                last_audit_check: audit::LastCheck::default(),
            }),
        };
        service.reload().await?;
        Ok(service)
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// Every resource, in catalog order.
    pub fn resources(&self) -> impl Iterator<Item = &Resource> {
        self.inner.desks.iter().map(|d| &d.resource)
    }

    pub fn resource(&self, name: &str) -> Result<&Resource, ServiceError> {
        self.desk(name).map(|d| &d.resource)
    }

    /// Whether the caller may use the admin pages: an admin, or an approver
    /// of some resource.
    pub fn is_admin(&self, caller: &Caller) -> bool {
        self.inner.settings.admins.allows(caller)
            || self.resources().any(|r| self.approves(caller, r).is_ok())
    }

    /// Whether `caller` may decide requests on `resource`.
    pub fn approves(&self, caller: &Caller, resource: &Resource) -> Result<(), ServiceError> {
        match resource.approvers.lists(&caller.person()) {
            None => self.inner.settings.admins.check(caller),
            Some(true) => Ok(()),
            Some(false) => Err(ServiceError::NotApprover {
                title: resource.title.clone(),
            }),
        }
    }

    /// Whether `caller` approves some resource, or why not (in open admin
    /// mode off the `/admin` route: [`ServiceError::AdminRouteOnly`]).
    pub fn require_approver(&self, caller: &Caller) -> Result<(), ServiceError> {
        self.approved_desks(caller).map(|_| ())
    }

    /// Each resource's policy: this replica's memory of its syncs and the
    /// store's record of the last one by any replica. Reading the record
    /// also shows that the store answers.
    pub async fn sync_states(
        &self,
    ) -> Result<Vec<(ResourceName, SyncStatus, SyncState)>, StoreError> {
        let mut out = Vec::with_capacity(self.inner.desks.len());
        for d in &self.inner.desks {
            let policy = &d.reconciler.config().policy_name;
            let recorded = self.inner.store.sync_state(policy).await?;
            out.push((d.resource.name.clone(), d.reconciler.status(), recorded));
        }
        Ok(out)
    }

    /// The caller's latest request on each resource where they have one,
    /// in catalog order. From memory.
    pub fn status_of(&self, email: &Email) -> Vec<Arc<Request>> {
        // Read under the lock rather than from a clone of the snapshot: the
        // clone and its drop were two more writes, on every page, to a count
        // every worker shares.
        let snap = self.inner.snapshot.read().expect("snapshot lock");
        self.resources()
            .filter_map(|r| snap.latest.get(&r.name, email))
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// One request, for its own page: to its requester and to the
    /// approvers of its resource.
    pub async fn request_by_id(
        &self,
        caller: &Caller,
        id: RequestId,
    ) -> Result<Request, ServiceError> {
        let request = self
            .inner
            .store
            .request(id)
            .await?
            .ok_or(ServiceError::NoSuchRequest)?;
        let mine = request.email == caller.email;
        let approver = self
            .desk(request.resource.as_str())
            .is_ok_and(|d| self.approves(caller, &d.resource).is_ok());
        if mine || approver {
            Ok(request)
        } else {
            Err(ServiceError::NoSuchRequest)
        }
    }

    /// The caller asks for access to `resource`; approved at once when an
    /// auto-approve rule of the resource fires (audited with its name).
    pub async fn request_access(
        &self,
        caller: &Caller,
        resource: &str,
        ask: Ask,
    ) -> Result<Outcome, ServiceError> {
        let desk = self.desk(resource)?;
        let rules = &desk.resource.rules;
        let auto = desk
            .resource
            .auto_approval(&caller.person())
            .map(|r| r.name.clone());
        let now = OffsetDateTime::now_utc();
        self.decide(desk, &caller.email, |open| {
            let mut out = rules.request(open, &caller.email, ask, now)?;
            if let (Some(rule), Some(pending)) = (&auto, out.last()) {
                let approved = rules.auto_approve(&pending.request, rule, now);
                out.push(approved);
            }
            Ok(out)
        })
        .await
    }

    /// The caller withdraws their pending request or gives up their access;
    /// when `seen` is given, only if that is still the open request.
    pub async fn cancel(
        &self,
        caller: &Caller,
        resource: &str,
        seen: Option<Seen>,
    ) -> Result<Outcome, ServiceError> {
        let desk = self.desk(resource)?;
        let now = OffsetDateTime::now_utc();
        self.decide(desk, &caller.email, |open| {
            check_seen(seen, open, &caller.email, now)?;
            desk.resource.rules.cancel(open, &caller.email, now)
        })
        .await
    }

    /// The caller asks for more time on their active access; when `seen`
    /// is given, only if that is still the open request.
    pub async fn extend(
        &self,
        caller: &Caller,
        resource: &str,
        seen: Option<Seen>,
        duration: GrantDuration,
        reason: Option<Reason>,
    ) -> Result<Outcome, ServiceError> {
        let desk = self.desk(resource)?;
        let now = OffsetDateTime::now_utc();
        self.decide(desk, &caller.email, |open| {
            check_seen(seen, open, &caller.email, now)?;
            desk.resource
                .rules
                .extend(open, &caller.email, duration, reason, now)
        })
        .await
    }

    /// An approver's decision on `email`'s request on `resource`; when
    /// `seen` is given, only if it is still the request the approver saw,
    /// as they saw it.
    pub async fn decide_as(
        &self,
        approver: &Caller,
        resource: &str,
        email: &Email,
        seen: Option<Seen>,
        decision: Decision,
    ) -> Result<Outcome, ServiceError> {
        let desk = self.desk(resource)?;
        self.approves(approver, &desk.resource)?;
        self.decide_by(desk, approver, email, seen, decision, None)
            .await
    }

    /// An approver's decision made outside the pages (`via`, e.g. `slack`,
    /// is recorded in its audit events) on the request `id`, only while it
    /// is still open in the status `shown`. Admin rights count only as
    /// approver rights here: a caller who is not an approver of the
    /// request's resource is told so by its title.
    pub async fn decide_on(
        &self,
        approver: &Caller,
        id: RequestId,
        shown: Status,
        decision: Decision,
        via: &'static str,
    ) -> Result<Outcome, ServiceError> {
        let request = self
            .inner
            .store
            .request(id)
            .await?
            .ok_or(ServiceError::NoSuchRequest)?;
        let desk = self.desk(request.resource.as_str())?;
        self.approves(approver, &desk.resource)
            .map_err(|e| match e {
                ServiceError::NotAdmin => ServiceError::NotApprover {
                    title: desk.resource.title.clone(),
                },
                e => e,
            })?;
        let seen = Some(Seen { id, status: shown });
        self.decide_by(desk, approver, &request.email, seen, decision, Some(via))
            .await
    }

    /// The rules' move for `decision`, by an approver already checked.
    async fn decide_by(
        &self,
        desk: &Desk,
        approver: &Caller,
        email: &Email,
        seen: Option<Seen>,
        decision: Decision,
        via: Option<&'static str>,
    ) -> Result<Outcome, ServiceError> {
        let now = OffsetDateTime::now_utc();
        let rules = &desk.resource.rules;
        let by = &approver.email;
        self.decide(desk, email, |open| {
            check_seen(seen, open, email, now)?;
            let mut moves = match decision {
                Decision::Approve { duration } => rules.approve(open, email, by, duration, now),
                Decision::ApproveExtension => rules.approve_extension(open, email, by, now),
                Decision::RejectExtension { comment } => {
                    rules.reject_extension(open, email, by, comment, now)
                }
                Decision::Revoke { comment } => rules.revoke(open, email, by, comment, now),
                Decision::Grant { ask } => rules.grant(open, email, by, ask, now),
            }?;
            if let Some(via) = via {
                for t in &mut moves {
                    if let Some(details) = t.event.details.as_object_mut() {
                        details.insert("via".to_owned(), via.into());
                    }
                }
            }
            Ok(moves)
        })
        .await
    }

    /// Revokes every active grant in `scope` on the resources the caller
    /// approves, each as its own audited decision. Returns the revoked
    /// requests; grants that ended meanwhile are skipped.
    pub async fn revoke_all(
        &self,
        approver: &Caller,
        scope: &RevokeScope,
        comment: Option<Reason>,
    ) -> Result<Vec<Outcome>, ServiceError> {
        if let Some(name) = &scope.resource {
            self.approves(approver, &self.desk(name.as_str())?.resource)?;
        }
        let targets: Vec<Request> = self
            .inner
            .store
            .open_requests()
            .await?
            .into_iter()
            .filter(|r| r.state.status() == Status::Active)
            .filter(|r| scope.person.as_ref().is_none_or(|p| &r.email == p))
            .filter(|r| scope.resource.as_ref().is_none_or(|n| &r.resource == n))
            .filter(|r| {
                self.desk(r.resource.as_str())
                    .is_ok_and(|d| self.approves(approver, &d.resource).is_ok())
            })
            .collect();
        if targets.is_empty() && scope.resource.is_none() && !self.is_admin(approver) {
            return Err(ServiceError::NotAdmin);
        }
        let mut out = Vec::with_capacity(targets.len());
        for r in targets {
            let seen = Seen {
                id: r.id,
                status: Status::Active,
            };
            let decision = Decision::Revoke {
                comment: comment.clone(),
            };
            match self
                .decide_as(
                    approver,
                    r.resource.as_str(),
                    &r.email,
                    Some(seen),
                    decision,
                )
                .await
            {
                Ok(o) => out.push(o),
                Err(ServiceError::Domain(
                    DomainError::Changed { .. } | DomainError::NoOpenRequest { .. },
                )) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// What the approvers' page shows, from the store: it never waits on
    /// Zero. A load starts a background sync of each resource it shows
    /// whose last one is older than [`Settings::sync_max_age`] (one run
    /// per window, whatever the page rate); [`AdminView::fresh`] says
    /// whether the latest sync failed.
    pub async fn admin_view(&self, caller: &Caller) -> Result<AdminView, ServiceError> {
        self.admin_window(caller, &Window::default()).await
    }

    /// [`Service::admin_view`] holding only the rows `window` shows of each
    /// list, with the lists' lengths: a page of a long list.
    pub async fn admin_window(
        &self,
        caller: &Caller,
        window: &Window,
    ) -> Result<AdminView, ServiceError> {
        let desks = self.approved_desks(caller)?;
        for d in &desks {
            d.reconciler.refresh(self.inner.settings.sync_max_age);
        }
        let snap = self.current().await?;
        let mut resources: Vec<ResourceView> = desks
            .iter()
            .map(|d| ResourceView {
                resource: d.resource.clone(),
                pending: Vec::new(),
                active: Vec::new(),
                pending_span: Span::default(),
                active_span: Span::default(),
                sync: d.reconciler.status(),
            })
            .collect();
        let fresh = match resources.iter().find_map(|v| {
            v.sync
                .last_error
                .clone()
                .filter(|f| f.kind != jit_reconcile::FailureKind::Busy)
        }) {
            Some(f) => Err(f),
            None => Ok(()),
        };
        // A load copies only the rows it shows, however many are open.
        let lists = snap.open_lists();
        for view in &mut resources {
            let name = &view.resource.name;
            let Some([pending, active]) = lists.get(name) else {
                continue;
            };
            let (span, rows) = window.cut(name, List::Pending, pending.len());
            view.pending_span = span;
            view.pending = pending[rows].iter().map(|r| Request::clone(r)).collect();
            let (span, rows) = window.cut(name, List::Active, active.len());
            view.active_span = span;
            view.active = active[rows].iter().map(|r| Request::clone(r)).collect();
        }
        let ended = snap
            .ended
            .iter()
            .filter(|r| resources.iter().any(|v| v.resource.name == r.resource))
            .cloned()
            .collect();
        Ok(AdminView {
            resources,
            ended,
            fresh,
        })
    }

    /// Syncs each resource the caller approves with Zero now (sharing runs
    /// with concurrent callers) and waits for them, at most `apply_wait`
    /// in all: the approvers' "Sync now".
    pub async fn sync_now(&self, caller: &Caller) -> Result<Result<(), SyncFailure>, ServiceError> {
        let desks = self.approved_desks(caller)?;
        let wait = self.inner.settings.apply_wait;
        let runs: Vec<_> = desks
            .iter()
            .map(|d| {
                let reconciler = d.reconciler.clone();
                tokio::spawn(async move { reconciler.sync_now().await })
            })
            .collect();
        // The runs go on in the background if Zero is slow.
        let deadline = tokio::time::Instant::now() + wait;
        let mut outcome = Ok(());
        for run in runs {
            let result = match tokio::time::timeout_at(deadline, run).await {
                // Another replica writing right now is as fresh as it gets.
                Ok(Ok(Err(f))) if f.kind != jit_reconcile::FailureKind::Busy => Err(f),
                Ok(_) => Ok(()),
                Err(_) => Err(SyncFailure {
                    kind: jit_reconcile::FailureKind::ZeroUnavailable,
                    message: format!(
                        "Pomerium Zero did not answer within {} s; the sync goes on in the background",
                        wait.as_secs()
                    ),
                }),
            };
            if outcome.is_ok() {
                outcome = result;
            }
        }
        Ok(outcome)
    }

    /// The resources `caller` approves, or why they approve none.
    fn approved_desks(&self, caller: &Caller) -> Result<Vec<&Desk>, ServiceError> {
        let desks: Vec<&Desk> = self
            .inner
            .desks
            .iter()
            .filter(|d| self.approves(caller, &d.resource).is_ok())
            .collect();
        if desks.is_empty() {
            // Say why in the admins' terms (open mode, lists).
            self.inner.settings.admins.check(caller)?;
            return Err(ServiceError::NotAdmin);
        }
        Ok(desks)
    }

    /// Keeps the snapshot current with changes made elsewhere; returns on shutdown.
    pub async fn watch_store(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.current().await {
                tracing::warn!(error = %e, "could not bring the request snapshot up to date");
            }
        }
    }

    /// Admin-only pages beyond the approvals (the audit trail): admins and
    /// approvers of any resource.
    fn require_admin(&self, caller: &Caller) -> Result<(), ServiceError> {
        if self.is_admin(caller) {
            return Ok(());
        }
        self.inner.settings.admins.check(caller)
    }

    fn desk(&self, name: &str) -> Result<&Desk, ServiceError> {
        self.inner
            .desks
            .iter()
            .find(|d| d.resource.name.as_str() == name)
            .ok_or_else(|| ServiceError::UnknownResource(name.chars().take(63).collect()))
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.snapshot.read().expect("snapshot lock").clone()
    }

    /// The one path of every change: decide and commit, update the snapshot,
    /// nudge the reconciler, wait a bounded time for it to be applied.
    async fn decide(
        &self,
        desk: &Desk,
        email: &Email,
        f: impl FnOnce(Option<&Request>) -> Result<Vec<Transition>, DomainError> + Send,
    ) -> Result<Outcome, ServiceError> {
        let committed = self
            .inner
            .store
            .decide(&desk.resource.name, email, f)
            .await??;
        self.remember(
            committed.generation,
            committed.transitions.iter().map(|t| &t.request),
        );
        measure::decisions(&committed.transitions);
        let reconciler = &desk.reconciler;
        reconciler.nudge();
        let request = committed
            .transitions
            .last()
            .map(|t| t.request.clone())
            .ok_or_else(|| {
                // The rules always return a move on success; an empty list would be a bug there.
                ServiceError::Domain(DomainError::NoOpenRequest {
                    email: email.clone(),
                })
            })?;
        let wait = self.inner.settings.apply_wait;
        let applied = if reconciler.wait_applied(committed.generation, wait).await {
            Applied::Applied
        } else {
            Applied::Saved(reconciler.status().last_error)
        };
        Ok(Outcome { request, applied })
    }

    fn remember<'a>(&self, generation: u64, requests: impl Iterator<Item = &'a Request>) {
        let mut guard = self.inner.snapshot.write().expect("snapshot lock");
        let snap = Arc::make_mut(&mut guard);
        snap.lists = OnceLock::new();
        for r in requests {
            let newer = snap
                .latest
                .get(&r.resource, &r.email)
                .is_none_or(|(g, _)| *g <= generation);
            if newer {
                snap.latest.insert(generation, Arc::new(r.clone()));
            }
            if !r.is_open() && !snap.ended.iter().any(|e| e.id == r.id) {
                snap.ended.insert(0, r.clone());
                snap.ended.truncate(self.inner.settings.recent_ended);
            }
        }
        self.publish_open_counts(snap);
    }

    /// The snapshot, reloaded first if the store moved on since it was
    /// taken (a change by another replica, or one this process made): one
    /// cheap read when nothing changed.
    async fn current(&self) -> Result<Arc<Snapshot>, StoreError> {
        // The generation only grows.
        let generation = self.inner.store.generation().await?;
        if self.snapshot().generation < generation {
            // One reload at a time: pages that find the store moved on
            // while one runs wait for it, and reload again only if it read
            // an older generation. A burst of pages makes one reload, not
            // one full snapshot each.
            let _one = self.inner.reloading.lock().await;
            if self.snapshot().generation < generation {
                self.reload().await?;
            }
        }
        Ok(self.snapshot())
    }

    /// How many times the snapshot was read whole from the store (at
    /// start, and after changes made elsewhere).
    pub fn snapshot_reloads(&self) -> u64 {
        self.inner.reloads.load(Ordering::Relaxed)
    }

    /// Reloads the snapshot from the store.
    async fn reload(&self) -> Result<(), StoreError> {
        self.inner.reloads.fetch_add(1, Ordering::Relaxed);
        let store = &self.inner.store;
        let generation = store.generation().await?;
        let ended = store.recent_ended(self.inner.settings.recent_ended).await?;
        let old = self.snapshot();
        let mut latest = Latest::with_capacity(old.latest.len());
        // Oldest first, so the latest request per key wins; open ones last,
        // one at a time. A request as the old snapshot holds it is shared,
        // not held twice: at 10,000 people a reload would otherwise double
        // what the snapshot holds, and reading them all first triple it.
        let ended_first = stream::iter(ended.iter().rev().cloned().map(Ok));
        let mut each = pin!(ended_first.chain(store.each_open_request(None)));
        while let Some(r) = each.try_next().await? {
            let r = match old.latest.get(&r.resource, &r.email) {
                Some((_, held)) if **held == r => held.clone(),
                _ => Arc::new(r),
            };
            latest.insert(generation, r);
        }
        drop(old);
        let mut guard = self.inner.snapshot.write().expect("snapshot lock");
        // Keep what this process committed after the read above.
        for (g, r) in guard.latest.iter() {
            if *g > generation {
                latest.insert(*g, r.clone());
            }
        }
        let snap = Snapshot {
            generation,
            latest,
            ended,
            lists: OnceLock::new(),
        };
        self.publish_open_counts(&snap);
        *guard = Arc::new(snap);
        Ok(())
    }

    /// Sets the pending and active gauges from the snapshot (which holds
    /// every open request).
    fn publish_open_counts(&self, snap: &Snapshot) {
        measure::publish_open_counts(
            self.inner.desks.iter().map(|d| &d.resource.name),
            snap.latest.iter().map(|(_, r)| &**r),
        );
    }
}
