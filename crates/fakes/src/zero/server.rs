//! HTTP side of the fake: routes, auth, fault injection, request log, and an
//! accept loop that can drop a connection without answering.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State as AxumState};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::header::{AUTHORIZATION, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tower::ServiceExt;

use super::state::{FaultKind, LoggedRequest, Rejection, State};

/// State shared by all connections.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
}

impl Shared {
    pub(crate) fn new(state: State) -> Self {
        Shared {
            state: Mutex::new(state),
        }
    }

    /// A panicking test thread must not wedge the fake for everyone else.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

type SharedState = Arc<Shared>;

/// Lets a handler close its own connection without a response.
#[derive(Clone)]
struct ConnectionKiller(Arc<Notify>);

const TOKEN_PATH: &str = "/api/v0/token";

pub(crate) fn router(shared: SharedState) -> Router {
    let org = "/api/v0/organizations/{org}";
    Router::new()
        .route(TOKEN_PATH, post(exchange_token))
        .route(
            &format!("{org}/policies"),
            get(list_policies).post(create_policy),
        )
        .route(
            &format!("{org}/policies/{{id}}"),
            get(get_policy).put(update_policy).delete(delete_policy),
        )
        .route(&format!("{org}/changesets"), get(list_changesets))
        .route(
            &format!("{org}/changesets/compare"),
            get(compare_changesets),
        )
        .route(
            &format!("{org}/changesets/{{id}}/apply"),
            post(apply_changeset),
        )
        .route(
            &format!("{org}/clusters/{{cluster}}/settings"),
            get(cluster_settings),
        )
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint") })
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            faults_and_log,
        ))
        .with_state(shared)
}

/// Serves `router` on `listener` until the task is aborted; aborting drops
/// the `JoinSet` and with it every open connection.
pub(crate) async fn serve(listener: TcpListener, router: Router) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                };
                connections.spawn(serve_connection(stream, router.clone()));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(stream: tokio::net::TcpStream, router: Router) {
    let killer = ConnectionKiller(Arc::new(Notify::new()));
    let service = {
        let killer = killer.clone();
        hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(killer.clone());
            router.clone().oneshot(request)
        })
    };
    let connection =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = connection => {}
        // Dropping the connection future closes the socket unanswered.
        _ = killer.0.notified() => {}
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

/// A refusal, rendered as `{"error": message}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

fn api_error(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        message: message.into(),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error(self.status, &self.message)
    }
}

/// Latency, injected faults and the request log, around every request.
async fn faults_and_log(
    AxumState(shared): AxumState<SharedState>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    let (latency, fault) = {
        let mut state = shared.lock();
        (state.latency, state.take_fault(&method, path == TOKEN_PATH))
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let log = |status: Option<StatusCode>| {
        shared.lock().log.push(LoggedRequest {
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            status,
        });
    };
    let killer = request.extensions().get::<ConnectionKiller>().cloned();
    let response = match fault {
        None => next.run(request).await,
        Some(FaultKind::Status(status)) => error(status, "injected failure"),
        Some(FaultKind::RateLimit(retry_after)) => {
            let mut response = error(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded");
            let value = HeaderValue::try_from(retry_after.header_value())
                .expect("seconds and HTTP-dates are valid header values");
            response.headers_mut().insert(RETRY_AFTER, value);
            response
        }
        Some(kind @ (FaultKind::Drop | FaultKind::DropAfterProcessing)) => {
            let Some(killer) = killer else {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "fake: connection cannot be dropped",
                );
            };
            if matches!(kind, FaultKind::DropAfterProcessing) {
                next.run(request).await;
            }
            log(None);
            killer.0.notify_one();
            return std::future::pending().await;
        }
    };
    log(Some(response.status()));
    response
}

/// Locks the state after checking the bearer token (401) and the
/// organization (403, as for an organization the user is not a member of).
fn authorize<'a>(
    shared: &'a Shared,
    headers: &HeaderMap,
    org: &str,
) -> Result<MutexGuard<'a, State>, ApiError> {
    let mut state = shared.lock();
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !token.is_some_and(|t| state.id_token_is_live(t)) {
        return Err(api_error(
            StatusCode::UNAUTHORIZED,
            "invalid or expired ID token",
        ));
    }
    if org != state.organization_id {
        return Err(api_error(StatusCode::FORBIDDEN, "forbidden"));
    }
    Ok(state)
}

fn parse_json(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| api_error(StatusCode::BAD_REQUEST, format!("malformed JSON body: {e}")))
}

fn rejection(r: Rejection) -> ApiError {
    match r {
        Rejection::Invalid(msg) => api_error(StatusCode::BAD_REQUEST, msg),
        Rejection::UnknownPolicy(_) => api_error(StatusCode::NOT_FOUND, "policy not found"),
    }
}

fn ok(value: Value) -> Response {
    axum::Json(value).into_response()
}

type Reply = Result<Response, ApiError>;

async fn exchange_token(AxumState(shared): AxumState<SharedState>, body: Bytes) -> Reply {
    let body = parse_json(&body)?;
    let Some(refresh_token) = body.get("refreshToken").and_then(Value::as_str) else {
        return Err(api_error(
            StatusCode::BAD_REQUEST,
            "refreshToken is required",
        ));
    };
    let mut state = shared.lock();
    let id_token = state
        .issue_id_token(refresh_token)
        .ok_or_else(|| api_error(StatusCode::UNAUTHORIZED, "invalid refresh token"))?;
    Ok(ok(json!({
        "idToken": id_token,
        "expiresInSeconds": state.id_token_ttl.as_secs().to_string(),
    })))
}

async fn list_policies(
    AxumState(shared): AxumState<SharedState>,
    Path(org): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Reply {
    let state = authorize(&shared, &headers, &org)?;
    let namespace = query
        .get("namespaceId")
        .ok_or_else(|| api_error(StatusCode::BAD_REQUEST, "namespaceId is required"))?;
    Ok(ok(Value::Array(state.policies_in(namespace))))
}

async fn get_policy(
    AxumState(shared): AxumState<SharedState>,
    Path((org, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    let state = authorize(&shared, &headers, &org)?;
    state
        .policy(&id)
        .map(ok)
        .ok_or_else(|| api_error(StatusCode::NOT_FOUND, "policy not found"))
}

async fn create_policy(
    AxumState(shared): AxumState<SharedState>,
    Path(org): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let mut state = authorize(&shared, &headers, &org)?;
    let properties = state.validate(parse_json(&body)?).map_err(rejection)?;
    let created = state.create_policy(properties);
    state.policy_writes += 1;
    Ok((StatusCode::CREATED, axum::Json(created)).into_response())
}

async fn update_policy(
    AxumState(shared): AxumState<SharedState>,
    Path((org, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let mut state = authorize(&shared, &headers, &org)?;
    if state.policy(&id).is_none() {
        return Err(api_error(StatusCode::NOT_FOUND, "policy not found"));
    }
    let properties = state.validate(parse_json(&body)?).map_err(rejection)?;
    let updated = state.replace_policy(&id, properties).map_err(rejection)?;
    state.policy_writes += 1;
    Ok(ok(updated))
}

async fn delete_policy(
    AxumState(shared): AxumState<SharedState>,
    Path((org, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    let mut state = authorize(&shared, &headers, &org)?;
    state.delete_policy(&id).map_err(rejection)?;
    state.policy_writes += 1;
    Ok(StatusCode::NO_CONTENT.into_response())
}

const STATUSES: [&str; 6] = [
    "pending", "applying", "applied", "current", "failed", "rejected",
];

async fn list_changesets(
    AxumState(shared): AxumState<SharedState>,
    Path(org): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Reply {
    let state = authorize(&shared, &headers, &org)?;
    let status = query.get("status").map(String::as_str);
    if let Some(s) = status
        && !STATUSES.contains(&s)
    {
        return Err(api_error(
            StatusCode::BAD_REQUEST,
            format!("unknown status {s:?}"),
        ));
    }
    // Filtering by another cluster finds nothing, like any filter would.
    let other_cluster = query
        .get("clusterId")
        .is_some_and(|c| *c != state.cluster_id);
    let list = if other_cluster {
        Vec::new()
    } else {
        state.changesets(status)
    };
    Ok(ok(Value::Array(list)))
}

async fn compare_changesets(
    AxumState(shared): AxumState<SharedState>,
    Path(org): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Reply {
    let state = authorize(&shared, &headers, &org)?;
    let cluster = query
        .get("clusterId")
        .ok_or_else(|| api_error(StatusCode::BAD_REQUEST, "clusterId is required"))?;
    if *cluster != state.cluster_id {
        return Err(api_error(StatusCode::NOT_FOUND, "cluster not found"));
    }
    let first = query.get("firstId").map(String::as_str);
    let second = query.get("secondId").map(String::as_str);
    state
        .compare(first, second)
        .map(ok)
        .map_err(|msg| api_error(StatusCode::NOT_FOUND, msg))
}

async fn apply_changeset(
    AxumState(shared): AxumState<SharedState>,
    Path((org, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    let mut state = authorize(&shared, &headers, &org)?;
    state
        .apply_changeset(&id)
        .map(ok)
        .ok_or_else(|| api_error(StatusCode::NOT_FOUND, "changeset not found"))
}

async fn cluster_settings(
    AxumState(shared): AxumState<SharedState>,
    Path((org, cluster)): Path<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    let state = authorize(&shared, &headers, &org)?;
    if cluster != state.cluster_id {
        return Err(api_error(StatusCode::NOT_FOUND, "cluster not found"));
    }
    Ok(ok(state.settings_json()))
}
