//! Typed client for the Pomerium Zero management API v0
//! (`https://console.pomerium.app/api/v0`): token exchange, policies,
//! changesets and cluster settings, with timeouts and careful retries.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use jit_zero::{ZeroClient, ZeroConfig};
//! let config = ZeroConfig::new("api-user-token".to_owned().into(), "org-id");
//! let zero = ZeroClient::new(config)?;
//! let policy = zero.get_policy("policy-id").await?;
//! let mut props = policy.into_properties();
//! props.ppl = serde_json::json!([{"allow": {"and": [{"email": {"is": "a@example.com"}}]}}]).into();
//! let written: jit_zero::PolicyRef = zero.update_policy("policy-id", &props).await?;
//! # Ok(()) }
//! ```
//!
//! # What is confirmed about the API (docs/pomerium.md §3)
//! - `POST /token` with `{"refreshToken": <API user token>}` returns
//!   `{"idToken", "expiresInSeconds"}`, the latter a JSON **string**; the ID
//!   token is sent as `Authorization: Bearer …`.
//! - Policy paths, bodies and success codes (create → 201), the changeset
//!   statuses and endpoints, and `autoApplyChangesets` in cluster settings
//!   come from clients generated from the live OpenAPI spec.
//! - There is no optimistic concurrency: a PUT is a blind full replace.
//!
//! # What is not confirmed, and what this client does about it
//! - **Error bodies** are undeclared: they are treated as opaque text,
//!   truncated to 512 bytes, with any token replaced by `[redacted]`.
//! - **Rate limits** are unknown: 429 is retried honouring `Retry-After`
//!   (delta-seconds or HTTP-date). A wait longer than
//!   [`RetryPolicy::max_retry_after`] is not slept through; the call fails
//!   with [`ZeroError::RateLimited`] carrying the requested delay.
//! - **Deleted resources** may answer 403 rather than 404 (one third-party
//!   report); 403 is reported as a permission problem, the likelier cause.
//! - **Pagination** defaults are unknown; no paging parameters are sent.
//! - **Unknown fields** are kept: every model has an `extra` map, and
//!   [`Policy::into_properties`] returns everything except the fields the
//!   server computes (`id`, timestamps, routes), so a read-modify-write
//!   sends back whatever newer API versions added. (If a newer server
//!   returned a computed field this client does not know, it would be sent
//!   back too; the known computed fields are stripped.)
//!
//! # Choices
//! - **ID tokens** are reused until one minute before expiry (half the
//!   lifetime for tokens that live a minute or less), counted from when the
//!   exchange was *sent*. Concurrent callers share one exchange. A 401 from
//!   an API call drops the token, exchanges once and repeats the call once.
//!   400/401/403 from `/token` is [`ZeroError::TokenRefused`].
//! - **Retries** (exponential backoff, full jitter, see [`RetryPolicy`]):
//!   GET, PUT, DELETE, apply-changeset and the token exchange are retried on
//!   429, 500, 502, 503, 504, timeouts and broken connections. Creating a
//!   policy is retried only on connect failures, 429 and 503, where the
//!   server cannot have created it; after a timeout or a lost response it is
//!   not repeated (never duplicated) and the error reports
//!   [`ZeroError::outcome_unknown`], so the caller looks it up by name.
//!   Other 4xx are never retried.
//! - Every attempt has a timeout ([`ZeroConfig::request_timeout`]); each
//!   attempt logs one `tracing` debug line (operation, method, path, status,
//!   attempt, elapsed) without tokens. Redirects are not followed, so the
//!   bearer token cannot be forwarded elsewhere.

#![forbid(unsafe_code)]

mod client;
mod config;
mod error;
mod model;
mod ppl;
mod token;

pub use client::ZeroClient;
pub use config::{ApiBaseUrl, ConfigError, DEFAULT_BASE_URL, RetryPolicy, ZeroConfig};
pub use error::{Operation, ZeroError};
pub use model::{
    ActivityEntity, ActivityLog, ActivityType, Changeset, ChangesetComparison, ChangesetStatus,
    ClusterSettings, Policy, PolicyProperties, PolicyRef, RouteRef,
};
pub use ppl::Ppl;
