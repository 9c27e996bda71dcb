//! The web edge of pomerium-jit: the pages people use, a small JSON API and
//! the health checks, in front of [`jit_service::Service`].
//!
//! | route | who | what |
//! |---|---|---|
//! | `GET /` | anyone signed in | the catalog: your status on each resource; request, withdraw, give up, extend |
//! | `POST /request-access`, `/cancel-request`, `/extend-access` | anyone signed in | 303 back to `/`; `resource` defaults to the first |
//! | `GET /requests/{id}` (and `/admin/requests/{id}`) | its requester, its resource's approvers | one request in full |
//! | `GET /admin` | approvers | per resource: pending, active (50 a page: `?pending.<resource>=<skip>`), grant; ended; 503 (page still shown) when Zero is out of reach |
//! | `POST /admin/approve-access`, `/admin/revoke-access`, `/admin/reject-access` | approvers | 303 back to `/admin`; 409 if the request shown changed |
//! | `POST /admin/approve-extension`, `/admin/reject-extension`, `/admin/grant-access`, `/admin/revoke-all` | approvers | 303 back to `/admin` |
//! | `GET /admin/confirm-revoke`, `/admin/confirm-revoke-all` | approvers | what a revocation ends, and its button |
//! | `GET /admin/audit` | admins | the audit trail, paged, with the chain check |
//! | `GET /admin/history` (`.csv`, `.jsonl`, `/timeline.svg`) | admins | everyone's history: filtered, paged, downloads, timeline |
//! | `GET /history` | anyone signed in | your own history |
//! | `/api/v1/…` and `/admin/api/v1/…` ([`api`]) | anyone signed in; approvers for everyone's data | the JSON API: me, resources, requests, grants, history; `openapi.json` describes it |
//! | `GET /healthz`, `GET /readyz`, `GET /assets/*` | anyone | no assertion needed |
//! | `POST /slack/actions` | Slack, when configured (else 404) | no assertion: Slack's signature instead; approve/reject buttons (see `slack`) |
//!
//! Identity comes only from a verified `X-Pomerium-Jwt-Assertion`, checked
//! before routing for every other path. Admin rights are checked here as
//! well as by Pomerium's route policy; with no admin lists set, only paths
//! under `/admin` (the ones Pomerium's admin route guards) carry them. Every
//! failure is one [`WebError`], shown as an HTML page or, for `/api/` and
//! clients asking for JSON, as `application/problem+json`.
//!
//! Around every route (outermost first), first in one layer: the identity
//! headers are marked sensitive, a request id is set, the request is traced
//! (method, path, status, latency; never headers, queries or emails) and
//! counted, security headers are added; then errors are rendered, a
//! deadline (armed only if the page is not ready at once), cross-site POSTs
//! are refused (Fetch Metadata with the `Origin`/`Host` fallback), and the
//! caller is authenticated. Bodies are capped by the extractors that read
//! them. The layers wrap the router once, not each route (`Router::layer`
//! boxes each route, and the router clones the box for every request it
//! routes), and none is `from_fn` (which clones and boxes the rest of the
//! stack and boxes its future on every request): the edge and the error
//! pages are `layers::Around` hooks, the identity check a service that
//! answers a known token from the cache without a future of its own.

#![forbid(unsafe_code)]

mod api;
mod assets;
mod auth;
mod error;
pub mod export;
mod health;
mod input;
mod layers;
mod notice;
mod pages;
pub mod scope;
mod serve;
mod slack;
mod sync;
mod text;
mod timeline;
pub mod when;

use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use jit_identity::Verifier;
use jit_service::Service;

pub use error::{Unverified, WebError};
pub use serve::{App, serve};
pub use slack::{
    DEFAULT_API_BASE as SLACK_DEFAULT_API_BASE,
    DEFAULT_RESPONSE_BASE as SLACK_DEFAULT_RESPONSE_BASE, SlackConfig, SlackConfigError,
    SlackPerson, SlackUserId, UsersInfo as SlackUsersInfo, base_url as slack_base_url,
};

/// Everything the web edge needs.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Checks `X-Pomerium-Jwt-Assertion`.
    pub verifier: Verifier,
    /// The use cases behind the pages.
    pub service: Service,
    /// Shows a banner on every page saying Pomerium and Zero are simulated.
    pub demo: bool,
    /// Approving from Slack's buttons; `None`: `/slack/actions` is 404.
    pub slack: Option<SlackConfig>,
    /// A metrics recorder is installed: count and time every request.
    pub metrics: bool,
}

/// What every handler can reach. Every layer clones it for every request,
/// so it is one shared pointer.
#[derive(Debug, Clone)]
pub(crate) struct AppState(std::sync::Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

#[derive(Debug)]
pub(crate) struct Shared {
    verifier: Verifier,
    service: Service,
    demo: bool,
    /// Signs the flash cookies that carry notices; made anew by each process.
    flash: notice::FlashKey,
    /// Each resource's part of the index page, in catalog order.
    offers: Vec<pages::index::Offer>,
}

/// The largest request body accepted: forms here are an email, a duration
/// and a reason of at most 500 characters.
pub(crate) const BODY_LIMIT: usize = 16 * 1024;

/// Builds the whole app: the routes inside every layer. A clone shares it.
pub fn router(config: WebConfig) -> impl App {
    let timeout = request_timeout(config.service.settings().apply_wait);
    let metrics = layers::Metrics(config.metrics);
    let slack = config
        .slack
        .map(|s| slack::router(s, config.service.clone()));
    let offers = config
        .service
        .resources()
        .map(pages::index::Offer::of)
        .collect();
    let state = AppState(std::sync::Arc::new(Shared {
        offers,
        verifier: config.verifier,
        service: config.service,
        demo: config.demo,
        flash: notice::FlashKey::generate(),
    }));
    let routes = Router::new()
        .route("/", get(pages::index::page))
        .route("/request-access", post(pages::index::request_access))
        .route("/cancel-request", post(pages::index::cancel_request))
        .route("/extend-access", post(pages::index::extend_access))
        .route("/requests/{id}", get(pages::request::page))
        .route("/admin", get(pages::admin::page))
        .route("/admin/approve-access", post(pages::admin::approve))
        .route("/admin/sync-now", post(pages::admin::sync_now))
        .route("/admin/revoke-access", post(pages::admin::revoke))
        .route("/admin/reject-access", post(pages::admin::reject))
        .route(
            "/admin/approve-extension",
            post(pages::admin::approve_extension),
        )
        .route(
            "/admin/reject-extension",
            post(pages::admin::reject_extension),
        )
        .route("/admin/grant-access", post(pages::admin::grant))
        .route("/admin/revoke-all", post(pages::admin::revoke_all))
        .route("/admin/confirm-revoke", get(pages::confirm::revoke))
        .route("/admin/confirm-revoke-all", get(pages::confirm::revoke_all))
        .route("/admin/requests/{id}", get(pages::request::page))
        .route("/admin/audit", get(pages::audit::page))
        .route("/admin/history", get(pages::history::admin_page))
        .route("/admin/history.csv", get(pages::history::csv))
        .route("/admin/history.jsonl", get(pages::history::jsonl))
        .route(
            "/admin/history/timeline.svg",
            get(pages::history::timeline_file),
        )
        .route("/history", get(pages::history::own_page))
        .merge(api::router())
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/assets/{file}", get(assets::serve))
        .fallback(|| async { WebError::NotFound })
        .method_not_allowed_fallback(|| async { WebError::MethodNotAllowed });
    let routes = match slack {
        Some(slack) => routes.merge(slack),
        None => routes,
    };
    layers::wrap(routes, state, timeout, metrics)
}

/// Long enough for a change to wait its full `apply_wait` for Pomerium Zero
/// and still answer, short enough that a stuck request is cut off.
fn request_timeout(apply_wait: Duration) -> Duration {
    (apply_wait + Duration::from_secs(25)).max(Duration::from_secs(30))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeout_outlasts_the_apply_wait() {
        assert_eq!(
            request_timeout(Duration::from_secs(5)),
            Duration::from_secs(30)
        );
        assert_eq!(
            request_timeout(Duration::from_secs(60)),
            Duration::from_secs(85)
        );
    }
}
