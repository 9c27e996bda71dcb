//! History people can read: approvers see everyone's, each person their
//! own, filtered and paged, as files, and as the grants held over time.

use jit_domain::Request;
pub use jit_store::{
    HistoryCursor, HistoryEntry, HistoryFilter, HistoryPage, RequestCursor, RequestFilter,
    RequestPage,
};

use crate::{Caller, Service, ServiceError};

/// Whose history a caller reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whose {
    /// Everyone's, or one person's by the filter: admins see all,
    /// approvers the resources they approve.
    Everyone,
    /// The caller's own: anyone signed in; the filter's person is ignored.
    Own,
}

/// Events fetched per query while gathering an export.
const EXPORT_BATCH: usize = 1000;

impl Service {
    /// A page of at most `limit` events, newest first, from `cursor`.
    pub async fn history(
        &self,
        caller: &Caller,
        whose: Whose,
        filter: HistoryFilter,
        cursor: HistoryCursor,
        limit: usize,
    ) -> Result<HistoryPage, ServiceError> {
        let filter = self.scoped(caller, whose, filter)?;
        Ok(self.inner.store.history(&filter, cursor, limit).await?)
    }

    /// A page of at most `limit` requests, newest first, older than
    /// `after`: seen as the history is (approvers the resources they
    /// approve, everyone else only their own).
    pub async fn requests(
        &self,
        caller: &Caller,
        whose: Whose,
        filter: RequestFilter,
        after: Option<RequestCursor>,
        limit: usize,
    ) -> Result<RequestPage, ServiceError> {
        let scope = HistoryFilter {
            person: filter.person.clone(),
            resources: filter.resources.clone(),
            ..HistoryFilter::default()
        };
        let scope = self.scoped(caller, whose, scope)?;
        let filter = RequestFilter {
            person: scope.person,
            resources: scope.resources,
            ..filter
        };
        Ok(self.inner.store.requests(&filter, after, limit).await?)
    }

    /// Every event the filter selects, oldest first, or `None` if there
    /// are more than `max` (read a page at a time, never all at once).
    pub async fn history_export(
        &self,
        caller: &Caller,
        whose: Whose,
        filter: HistoryFilter,
        max: usize,
    ) -> Result<Option<Vec<HistoryEntry>>, ServiceError> {
        let filter = self.scoped(caller, whose, filter)?;
        self.export_all(filter, max).await
    }

    /// [`Service::history_export`] with nobody's rights applied: for the
    /// operator's command line, which holds the database's own.
    pub async fn export_all(
        &self,
        filter: HistoryFilter,
        max: usize,
    ) -> Result<Option<Vec<HistoryEntry>>, ServiceError> {
        let mut entries = Vec::new();
        let mut cursor = HistoryCursor::Newest;
        loop {
            let page = self
                .inner
                .store
                .history(&filter, cursor, EXPORT_BATCH)
                .await?;
            entries.extend(page.entries);
            if entries.len() > max {
                return Ok(None);
            }
            match page.older {
                Some(older) => cursor = older,
                None => break,
            }
        }
        entries.reverse();
        Ok(Some(entries))
    }

    /// Requests whose grant was in force within the filter's time range,
    /// for its person and resource (its action is not about grants): at
    /// most `limit`, by the start of their access.
    pub async fn grant_history(
        &self,
        caller: &Caller,
        whose: Whose,
        filter: HistoryFilter,
        limit: usize,
    ) -> Result<Vec<Request>, ServiceError> {
        let filter = self.scoped(caller, whose, filter)?;
        Ok(self.inner.store.grants_between(&filter, limit).await?)
    }

    /// The filter as `caller` may use it: everyone's for admins; for
    /// approvers, narrowed to the resources they approve (asking for
    /// another is refused); otherwise narrowed to the caller.
    fn scoped(
        &self,
        caller: &Caller,
        whose: Whose,
        filter: HistoryFilter,
    ) -> Result<HistoryFilter, ServiceError> {
        match whose {
            Whose::Everyone => {
                self.require_admin(caller)?;
                // Admins see the whole trail at /admin/audit already.
                if self.inner.settings.admins.allows(caller) {
                    return Ok(filter);
                }
                let mut every = true;
                let mut approved = Vec::new();
                for r in self.resources() {
                    if self.approves(caller, r).is_ok() {
                        approved.push(r.name.clone());
                    } else {
                        every = false;
                    }
                }
                // Approvers of every resource see all, resources no longer
                // configured included.
                if every {
                    return Ok(filter);
                }
                match &filter.resources {
                    None => Ok(HistoryFilter {
                        resources: Some(approved),
                        ..filter
                    }),
                    Some(asked) => match asked.iter().find(|n| !approved.contains(n)) {
                        None => Ok(filter),
                        Some(name) => Err(ServiceError::NotApprover {
                            title: self
                                .resource(name.as_str())
                                .map_or_else(|_| name.to_string(), |r| r.title.clone()),
                        }),
                    },
                }
            }
            Whose::Own => Ok(HistoryFilter {
                person: Some(caller.email.clone()),
                ..filter
            }),
        }
    }
}
