use std::collections::HashMap;
use std::convert::Infallible;

use futures_util::{Stream, StreamExt, TryStreamExt};
use jit_domain::{AuditEvent, Email, Request, RequestId, ResourceName, Transition};

use crate::audit::{announce_head, append_events};
use crate::outbox::enqueue_events;
use crate::rows::{
    RequestRow, SharedNames, as_stored, from_millis, into_requests, millis, select_requests,
};
use crate::sync::{Fence, check_fence};
use crate::{Backend, Head, Store, StoreError, next_count};

/// What a committed decision wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Committed {
    /// The moves in order, as stored (times cut to whole milliseconds).
    /// Empty if there was nothing to do.
    pub transitions: Vec<Transition>,
    /// The generation after the commit; unchanged if nothing was written.
    pub generation: u64,
}

impl Backend {
    /// Starts a write transaction. SQLite's `IMMEDIATE` takes the write lock
    /// at once, so two writers never both read and then collide.
    pub(crate) fn begin_write(self) -> &'static str {
        match self {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        }
    }

    /// Reads the head row as the first statement of a write transaction. On
    /// PostgreSQL the row lock queues all writers, so each one reads what
    /// the previous one committed.
    pub(crate) fn lock_head(self) -> &'static str {
        match self {
            Backend::Sqlite => {
                "SELECT audit_seq, audit_hash, generation FROM store_head WHERE id = 1"
            }
            Backend::Postgres => {
                "SELECT audit_seq, audit_hash, generation FROM store_head WHERE id = 1 FOR UPDATE"
            }
        }
    }
}

/// The open requests, oldest first; read in the order of an index
/// (`requests_open_in_order`), so neither backend sorts them first.
pub(crate) const OPEN_IN_ORDER: &str =
    select_requests!("WHERE status IN ('pending', 'active') ORDER BY requested_at, id");
/// The open requests on resource `$1`, oldest first, in the order of
/// `requests_open_by_resource`.
pub(crate) const OPEN_ON_IN_ORDER: &str = select_requests!(
    "WHERE resource = $1 AND status IN ('pending', 'active') ORDER BY requested_at, id"
);

impl Store {
    /// Decides and records a move of `email`'s request on `resource` in one
    /// write transaction: loads its open request there, calls `f` (the pure domain
    /// decision), writes every transition's request in its final state,
    /// appends every transition's audit event to the chain and bumps the
    /// generation, then commits. If `f` refuses (`Err`), nothing is written
    /// and its error is returned inside `Ok`.
    pub async fn decide<F, E>(
        &self,
        resource: &ResourceName,
        email: &Email,
        f: F,
    ) -> Result<Result<Committed, E>, StoreError>
    where
        F: FnOnce(Option<&Request>) -> Result<Vec<Transition>, E> + Send,
        E: Send,
    {
        self.commit(resource, Some(email), None, |open| f(open.first()))
            .await
    }

    /// Like [`Store::decide`], over all open requests on `resource` at once:
    /// for the expiry sweep and for adopting changes made in the Zero console.
    pub async fn decide_all<F>(
        &self,
        resource: &ResourceName,
        f: F,
    ) -> Result<Committed, StoreError>
    where
        F: FnOnce(&[Request]) -> Vec<Transition> + Send,
    {
        let Ok(committed) = self
            .commit(resource, None, None, |open| Ok::<_, Infallible>(f(open)))
            .await?;
        Ok(committed)
    }

    /// Like [`Store::decide_all`], committed only if `fence` still holds
    /// its lease (else [`StoreError::Fenced`] and nothing is written): for
    /// adopting console edits, which only the current writer may judge.
    pub async fn decide_all_fenced<F>(
        &self,
        resource: &ResourceName,
        fence: &Fence,
        f: F,
    ) -> Result<Committed, StoreError>
    where
        F: FnOnce(&[Request]) -> Vec<Transition> + Send,
    {
        let Ok(committed) = self
            .commit(resource, None, Some(fence), |open| {
                Ok::<_, Infallible>(f(open))
            })
            .await?;
        Ok(committed)
    }

    async fn commit<F, E>(
        &self,
        resource: &ResourceName,
        email: Option<&Email>,
        fence: Option<&Fence>,
        f: F,
    ) -> Result<Result<Committed, E>, StoreError>
    where
        F: FnOnce(&[Request]) -> Result<Vec<Transition>, E> + Send,
        E: Send,
    {
        let backend = self.inner.backend;
        let _writer = self.inner.writer.lock().await;
        // Any early return drops `tx`, which rolls it back.
        let mut tx = self.inner.pool.begin_with(backend.begin_write()).await?;
        let head = Head::read(&mut *tx, backend.lock_head()).await?;
        if let Some(fence) = fence {
            check_fence(&mut tx, backend, fence).await?;
        }
        let rows: Vec<RequestRow> = match email {
            Some(email) => {
                sqlx::query_as(select_requests!(
                    "WHERE resource = $1 AND email = $2 AND status IN ('pending', 'active')"
                ))
                .bind(resource.as_str())
                .bind(email.as_str())
                .fetch_all(&mut *tx)
                .await?
            }
            None => {
                sqlx::query_as(select_requests!(
                    "WHERE resource = $1 AND status IN ('pending', 'active') \
                     ORDER BY requested_at, id"
                ))
                .bind(resource.as_str())
                .fetch_all(&mut *tx)
                .await?
            }
        };
        let open = into_requests(rows).collect::<Result<Vec<_>, _>>()?;
        let decided = match f(&open) {
            Ok(transitions) => transitions,
            Err(refused) => {
                tx.rollback().await?;
                return Ok(Err(refused));
            }
        };
        if decided.is_empty() {
            tx.rollback().await?;
            return Ok(Ok(Committed {
                transitions: decided,
                generation: head.generation.unsigned_abs(),
            }));
        }
        let transitions = decided
            .iter()
            .map(|t| as_stored_transition(t, resource))
            .collect::<Result<Vec<_>, _>>()?;

        for request in final_states(&transitions) {
            let row = RequestRow::from(request);
            let written = sqlx::query(UPSERT_REQUEST)
                .bind(row.id)
                .bind(row.email)
                .bind(row.reason)
                .bind(row.requested_at)
                .bind(row.requested_by)
                .bind(row.status)
                .bind(row.approved_by)
                .bind(row.approved_at)
                .bind(row.starts_at)
                .bind(row.expires_at)
                .bind(row.ended_by)
                .bind(row.ended_at)
                .bind(row.resource)
                .bind(row.requested_duration)
                .bind(row.requested_start)
                .bind(row.ticket)
                .bind(row.approvals)
                .bind(row.extension)
                .bind(row.extensions)
                .bind(row.comment)
                .execute(&mut *tx)
                .await?;
            if written.rows_affected() != 1 {
                return Err(StoreError::InvalidTransition {
                    request_id: request.id,
                    problem: "the stored request is final, or its resource, email, ask, \
                              request time or requester differ",
                });
            }
        }

        // Collected first: a closure held across the await would make this
        // future not `Send` (rust-lang/rust#110338), and callers spawn it.
        let events: Vec<_> = transitions
            .iter()
            .map(|t| (&t.event, RequestRow::from(&t.request)))
            .collect();
        let (seq, hash) = append_events(&mut tx, head.audit_seq, head.audit_hash, events).await?;
        // Told about in the same transaction: never a decision left untold.
        enqueue_events(&mut tx, resource.as_str(), head.audit_seq, seq).await?;

        let generation = next_count("generation", head.generation)?;
        sqlx::query(
            "UPDATE store_head SET audit_seq = $1, audit_hash = $2, generation = $3 WHERE id = 1",
        )
        .bind(seq)
        .bind(&hash)
        .bind(generation)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        announce_head(head.audit_seq, seq, &hash);
        Ok(Ok(Committed {
            transitions,
            generation: generation.unsigned_abs(),
        }))
    }

    /// All pending and active requests on every resource, oldest first.
    pub async fn open_requests(&self) -> Result<Vec<Request>, StoreError> {
        self.each_open_request(None).try_collect().await
    }

    /// The pending and active requests on `resource`, oldest first.
    pub async fn open_requests_on(
        &self,
        resource: &ResourceName,
    ) -> Result<Vec<Request>, StoreError> {
        self.each_open_request(Some(resource)).try_collect().await
    }

    /// The pending and active requests (on `resource`, or on every
    /// resource), oldest first (in [`Request::order`]), one at a time: a pass over ten thousand
    /// holds a few rows at once, not every row and then every request.
    pub fn each_open_request<'a>(
        &'a self,
        resource: Option<&'a ResourceName>,
    ) -> impl Stream<Item = Result<Request, StoreError>> + Send + 'a {
        let rows = match resource {
            None => sqlx::query_as::<_, RequestRow>(OPEN_IN_ORDER).fetch(&self.inner.pool),
            Some(resource) => sqlx::query_as(OPEN_ON_IN_ORDER)
                .bind(resource.as_str())
                .fetch(&self.inner.pool),
        };
        let mut names = SharedNames::default();
        rows.map(move |row| row?.into_request_sharing(&mut names))
    }

    /// `email`'s open request on `resource`, else its most recent ended one there.
    pub async fn request_for(
        &self,
        resource: &ResourceName,
        email: &Email,
    ) -> Result<Option<Request>, StoreError> {
        let row: Option<RequestRow> = sqlx::query_as(select_requests!(
            "WHERE resource = $1 AND email = $2 "
            "ORDER BY CASE WHEN status IN ('pending', 'active') THEN 0 ELSE 1 END, "
            "requested_at DESC, id DESC LIMIT 1"
        ))
        .bind(resource.as_str())
        .bind(email.as_str())
        .fetch_optional(&self.inner.pool)
        .await?;
        row.map(RequestRow::into_request).transpose()
    }

    /// One request by id, whatever its state.
    pub async fn request(&self, id: RequestId) -> Result<Option<Request>, StoreError> {
        let row: Option<RequestRow> = sqlx::query_as(select_requests!("WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.inner.pool)
            .await?;
        row.map(RequestRow::into_request).transpose()
    }

    /// Resources that hold open requests, with how many: a start-up check
    /// that the config still lists every resource someone holds access to.
    pub async fn open_resources(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT resource, COUNT(*) FROM requests WHERE status IN ('pending', 'active') \
             GROUP BY resource ORDER BY resource",
        )
        .fetch_all(&self.inner.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(r, n)| (r, n.unsigned_abs()))
            .collect())
    }

    /// The `limit` requests that ended most recently, newest first.
    pub async fn recent_ended(&self, limit: usize) -> Result<Vec<Request>, StoreError> {
        let rows: Vec<RequestRow> = sqlx::query_as(select_requests!(
            // `ended_at` is set exactly for final requests (a CHECK says so).
            "WHERE ended_at IS NOT NULL ORDER BY ended_at DESC, id DESC LIMIT $1"
        ))
        .bind(limit_i64(limit))
        .fetch_all(&self.inner.pool)
        .await?;
        into_requests(rows).collect()
    }
}

const UPSERT_REQUEST: &str = "INSERT INTO requests (id, email, reason, requested_at, requested_by, status, \
     approved_by, approved_at, starts_at, expires_at, ended_by, ended_at, resource, \
     requested_duration, requested_start, ticket, approvals, extension, extensions, comment) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
     $19, $20) \
     ON CONFLICT (id) DO UPDATE SET status = excluded.status, approved_by = excluded.approved_by, \
     approved_at = excluded.approved_at, starts_at = excluded.starts_at, \
     expires_at = excluded.expires_at, ended_by = excluded.ended_by, ended_at = excluded.ended_at, \
     approvals = excluded.approvals, extension = excluded.extension, \
     extensions = excluded.extensions, comment = excluded.comment \
     WHERE requests.status IN ('pending', 'active') AND requests.email = excluded.email \
     AND requests.resource = excluded.resource \
     AND requests.requested_duration IS NOT DISTINCT FROM excluded.requested_duration \
     AND requests.requested_start IS NOT DISTINCT FROM excluded.requested_start \
     AND requests.ticket IS NOT DISTINCT FROM excluded.ticket \
     AND requests.requested_at = excluded.requested_at \
     AND requests.requested_by = excluded.requested_by \
     AND requests.reason IS NOT DISTINCT FROM excluded.reason";

/// Checks that the event belongs to the request on the resource decided
/// on, and cuts times to what the store keeps.
fn as_stored_transition(t: &Transition, resource: &ResourceName) -> Result<Transition, StoreError> {
    let problem = if &t.request.resource != resource {
        Some("it is on another resource than the one decided on")
    } else if t.event.request_id != t.request.id {
        Some("its audit event names another request")
    } else if t.event.subject != t.request.email {
        Some("its audit event names another subject")
    } else {
        None
    };
    if let Some(problem) = problem {
        return Err(StoreError::InvalidTransition {
            request_id: t.request.id,
            problem,
        });
    }
    Ok(Transition {
        request: as_stored(&t.request)?,
        event: AuditEvent {
            // Rounding down to a whole millisecond stays within `time`'s
            // range, whose ends are whole seconds.
            at: from_millis(millis(t.event.at)).unwrap_or(t.event.at),
            ..t.event.clone()
        },
    })
}

/// Each request's last state, ended ones first: a request that ends and the
/// one that replaces it may share an email, and the index allows one open.
fn final_states(transitions: &[Transition]) -> Vec<&Request> {
    let mut order: Vec<&Request> = Vec::new();
    let mut index: HashMap<RequestId, usize> = HashMap::new();
    for t in transitions {
        match index.get(&t.request.id) {
            Some(&i) => order[i] = &t.request,
            None => {
                index.insert(t.request.id, order.len());
                order.push(&t.request);
            }
        }
    }
    order.sort_by_key(|r| r.is_open());
    order
}

/// A `LIMIT` for SQL; anything beyond `i64::MAX` means "all".
pub(crate) fn limit_i64(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}
