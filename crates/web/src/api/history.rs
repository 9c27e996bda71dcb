//! History: the audit events as the history pages show them, a page at a
//! time, and as a download.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use jit_service::{Caller, Whose};

use super::lists::{
    ExportQuery, HistoryQuery, Page, RawExportQuery, RawHistoryQuery, next_history,
};
use crate::auth::SignedIn;
use crate::error::ProblemJson;
use crate::export::{self, EventJson};
use crate::input::Params;
use crate::pages::history::{download, export_entries};
use crate::{AppState, WebError};

async fn page(
    app: &AppState,
    caller: &Caller,
    whose: Whose,
    query: HistoryQuery,
) -> Result<Json<Page<EventJson>>, WebError> {
    let page = app
        .service
        .history(caller, whose, query.filter, query.cursor, query.limit)
        .await?;
    Ok(Json(Page {
        items: page.entries.iter().map(EventJson::of).collect(),
        next: page.older.and_then(next_history),
    }))
}

/// Everyone's events on the resources the caller approves, newest first.
#[utoipa::path(get, path = "/history", tag = "history", params(RawHistoryQuery), responses(
    (status = 200, body = Page<EventJson>),
    (status = 400, body = ProblemJson, content_type = "application/problem+json"),
    (status = 403, body = ProblemJson, content_type = "application/problem+json"),
))]
pub(crate) async fn list(
    State(app): State<AppState>,
    SignedIn(caller): SignedIn,
    Params(query): Params<HistoryQuery>,
) -> Result<Json<Page<EventJson>>, WebError> {
    page(&app, &caller, Whose::Everyone, query).await
}

/// The events about the caller's own access, newest first.
#[utoipa::path(get, path = "/me/history", tag = "me", params(RawHistoryQuery), responses(
    (status = 200, body = Page<EventJson>),
    (status = 400, description = "`person` is refused", body = ProblemJson, content_type = "application/problem+json"),
))]
pub(crate) async fn mine(
    State(app): State<AppState>,
    SignedIn(caller): SignedIn,
    Params(query): Params<HistoryQuery>,
) -> Result<Json<Page<EventJson>>, WebError> {
    if query.filter.person.is_some() {
        return Err(WebError::field(
            "person",
            "this list holds only your own history; approvers read anyone's at /history",
        ));
    }
    page(&app, &caller, Whose::Own, query).await
}

/// Every event the filters select, oldest first, as JSON lines or CSV (the
/// fields of `audit export` plus `resource`); at most 50,000.
#[utoipa::path(get, path = "/history/export", tag = "history", params(RawExportQuery), responses(
    (status = 200, description = "A download (`Content-Disposition: attachment`)",
        content((String = "application/jsonl"), (String = "text/csv"))),
    (status = 400, description = "A wrong filter, or more than 50,000 events", body = ProblemJson, content_type = "application/problem+json"),
    (status = 403, body = ProblemJson, content_type = "application/problem+json"),
))]
pub(crate) async fn export(
    State(app): State<AppState>,
    SignedIn(caller): SignedIn,
    Params(query): Params<ExportQuery>,
) -> Result<Response, WebError> {
    let entries = export_entries(&app, &caller, query.filter).await?;
    Ok(if query.csv {
        download("text/csv; charset=utf-8", "csv", export::csv(&entries))
    } else {
        download(
            "application/jsonl; charset=utf-8",
            "jsonl",
            export::jsonl(&entries),
        )
    })
}
