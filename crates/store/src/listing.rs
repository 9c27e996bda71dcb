//! Requests as the JSON API lists them: any state, filtered by person,
//! resource, status and when they were asked, newest first, a page at a
//! time by keyset on `(requested_at, id)` (never `OFFSET`), so a page stays
//! put while requests are added.

use jit_domain::{Email, Request, RequestId, ResourceName, Status};
use time::OffsetDateTime;

use crate::history::resource_set;
use crate::requests::limit_i64;
use crate::rows::{RequestRow, into_requests, millis, select_requests};
use crate::{Store, StoreError};

/// Which requests a list shows. Every field narrows it; the default
/// selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFilter {
    /// Only this person's requests.
    pub person: Option<Email>,
    /// Only requests for one of these resources (none of them if empty).
    pub resources: Option<Vec<ResourceName>>,
    pub status: Option<Status>,
    /// Only requests asked at or after this instant.
    pub from: Option<OffsetDateTime>,
    /// Only requests asked before this instant.
    pub to: Option<OffsetDateTime>,
}

/// Where the next page starts: just older than this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestCursor {
    /// Its request time, in the store's whole milliseconds.
    pub requested_at: i64,
    pub id: RequestId,
}

impl RequestCursor {
    /// The cursor just past `request` in a list.
    pub fn after(request: &Request) -> RequestCursor {
        RequestCursor {
            requested_at: millis(request.requested_at),
            id: request.id,
        }
    }
}

/// One page of requests, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestPage {
    pub requests: Vec<Request>,
    /// Where the next (older) page starts, if any request is older.
    pub next: Option<RequestCursor>,
}

impl Store {
    /// At most `limit` requests that `filter` selects, newest first, older
    /// than `after` when given.
    pub async fn requests(
        &self,
        filter: &RequestFilter,
        after: Option<RequestCursor>,
        limit: usize,
    ) -> Result<RequestPage, StoreError> {
        let rows: Vec<RequestRow> = sqlx::query_as(select_requests!(
            "WHERE ($1 IS NULL OR email = $1) "
            "AND ($2 IS NULL OR length(replace($2, ',' || resource || ',', '')) < length($2)) "
            "AND ($3 IS NULL OR status = $3) "
            "AND ($4 IS NULL OR requested_at >= $4) AND ($5 IS NULL OR requested_at < $5) "
            "AND ($6 IS NULL OR requested_at < $6 OR (requested_at = $6 AND id < $7)) "
            "ORDER BY requested_at DESC, id DESC LIMIT $8"
        ))
        .bind(filter.person.as_ref().map(Email::as_str))
        .bind(resource_set(filter.resources.as_deref()))
        .bind(filter.status.map(Status::as_str))
        .bind(filter.from.map(millis))
        .bind(filter.to.map(millis))
        .bind(after.map(|c| c.requested_at))
        .bind(after.map(|c| c.id.to_string()))
        .bind(limit_i64(limit.saturating_add(1)))
        .fetch_all(&self.inner.pool)
        .await?;
        let mut requests = into_requests(rows).collect::<Result<Vec<_>, _>>()?;
        let more = requests.len() > limit;
        requests.truncate(limit);
        let next = requests.last().filter(|_| more).map(RequestCursor::after);
        Ok(RequestPage { requests, next })
    }
}
