//! `GET /healthz` (the process answers) and `GET /readyz` (the store answers
//! and the last sync with Pomerium Zero succeeded). Neither needs an
//! assertion, so neither reveals an email, an id or an error text.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use jit_service::{SyncState, SyncStatus};
use time::OffsetDateTime;

use crate::AppState;
use crate::sync::SyncJson;

/// How long `/readyz` waits for the database.
const STORE_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) async fn healthz() -> &'static str {
    "ok"
}

#[derive(Debug, Serialize)]
pub(crate) struct Readiness {
    store: &'static str,
    /// All resources' policies together: ok only if each is.
    sync: SyncJson,
    /// Each resource's policy, by resource name.
    resources: BTreeMap<String, SyncJson>,
}

/// Whether a policy counts as in sync for readiness: synced at least once
/// (by any replica), and either the latest sync succeeded or it has failed
/// for less than `grace`, so a short Zero outage does not take every
/// replica out of service (grants still end on time in Pomerium).
fn in_sync(memory: &SyncStatus, record: &SyncState, now: OffsetDateTime, grace: Duration) -> bool {
    let last_success = record.last_success_at.max(memory.last_success_at);
    let failing = record.last_error.is_some();
    last_success.is_some_and(|at| !failing || now - at < grace)
}

/// Reading the reconciler's record both checks that the store answers and
/// tells how the last sync (by any replica) went.
pub(crate) async fn readyz(State(app): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let recorded = match tokio::time::timeout(STORE_TIMEOUT, app.service.sync_states()).await {
        Ok(Ok(state)) => Some(state),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: the store does not answer");
            None
        }
        Err(_) => {
            tracing::warn!("readiness: the store did not answer within {STORE_TIMEOUT:?}");
            None
        }
    };
    let store_ok = recorded.is_some();
    let recorded = recorded.unwrap_or_default();
    let grace = app.service.settings().ready_sync_grace;
    let now = time::OffsetDateTime::now_utc();
    let synced = recorded
        .iter()
        .all(|(_, memory, record)| in_sync(memory, record, now, grace));
    let resources: BTreeMap<String, SyncJson> = recorded
        .iter()
        .map(|(name, memory, record)| (name.to_string(), SyncJson::of(memory, Some(record))))
        .collect();
    let sync = SyncJson::all(resources.values());
    let status = if store_ok && synced {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Readiness {
            store: if store_ok { "ok" } else { "error" },
            sync,
            resources,
        }),
    )
}
