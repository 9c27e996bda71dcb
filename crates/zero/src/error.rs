//! Typed failures of the Pomerium Zero client.

use std::fmt;
use std::time::Duration;

use reqwest::StatusCode;

/// Longest slice of a response body kept in an error.
pub(crate) const MAX_ERROR_BODY: usize = 512;

/// Which API operation failed; part of every [`ZeroError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// `POST /token`: API user token → ID token.
    ExchangeToken,
    /// `GET /organizations/{org}/policies?namespaceId=…`.
    ListPolicies,
    /// `GET /organizations/{org}/policies/{id}`.
    GetPolicy,
    /// `POST /organizations/{org}/policies`.
    CreatePolicy,
    /// `PUT /organizations/{org}/policies/{id}`.
    UpdatePolicy,
    /// `DELETE /organizations/{org}/policies/{id}`.
    DeletePolicy,
    /// `GET /organizations/{org}/changesets`.
    ListChangesets,
    /// `GET /organizations/{org}/changesets/compare`.
    CompareChangesets,
    /// `POST /organizations/{org}/changesets/{id}/apply`.
    ApplyChangeset,
    /// `GET /organizations/{org}/clusters/{cluster}/settings`.
    GetClusterSettings,
}

/// Whether an operation may be repeated after an ambiguous failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Idempotency {
    /// Repeating it has the same effect as doing it once.
    Idempotent,
    /// Repeating it after the server processed it would do it twice.
    NotIdempotent,
}

impl Operation {
    /// A short human name, e.g. `"update policy"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::ExchangeToken => "exchange API token",
            Operation::ListPolicies => "list policies",
            Operation::GetPolicy => "get policy",
            Operation::CreatePolicy => "create policy",
            Operation::UpdatePolicy => "update policy",
            Operation::DeletePolicy => "delete policy",
            Operation::ListChangesets => "list changesets",
            Operation::CompareChangesets => "compare changesets",
            Operation::ApplyChangeset => "apply changeset",
            Operation::GetClusterSettings => "get cluster settings",
        }
    }

    /// Only creating a policy is unsafe to repeat: a PUT is a full replace,
    /// a DELETE of a deleted policy changes nothing, applying an applied
    /// changeset is a no-op, and a token exchange has no lasting effect.
    pub(crate) fn idempotency(self) -> Idempotency {
        match self {
            Operation::CreatePolicy => Idempotency::NotIdempotent,
            _ => Idempotency::Idempotent,
        }
    }

    /// Whether the operation changes state on the server.
    pub fn is_mutation(self) -> bool {
        matches!(
            self,
            Operation::CreatePolicy
                | Operation::UpdatePolicy
                | Operation::DeletePolicy
                | Operation::ApplyChangeset
        )
    }

    fn not_found_hint(self) -> &'static str {
        match self {
            Operation::GetPolicy | Operation::UpdatePolicy | Operation::DeletePolicy => {
                "the policy does not exist (was it deleted in the console?)"
            }
            Operation::ApplyChangeset => "the changeset does not exist",
            Operation::GetClusterSettings | Operation::CompareChangesets => "check CLUSTER_ID",
            _ => "check ORGANIZATION_ID and the API base URL",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed call to the Pomerium Zero API.
///
/// Bodies are truncated to 512 bytes and never contain a token; the
/// `Display` text says what to do where there is something to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ZeroError {
    /// `/token` refused the API user token (revoked, expired or mistyped).
    #[error(
        "Pomerium Zero refused the API user token (HTTP {status}); create a new one in the console under Account → API Tokens and update API_USER_TOKEN{}",
        body_suffix(body)
    )]
    TokenRefused {
        /// 400, 401 or 403.
        status: StatusCode,
        /// Truncated response body.
        body: String,
    },
    /// An API call was refused with 401 even with a freshly exchanged ID token.
    #[error(
        "{op}: Pomerium Zero rejected a freshly issued ID token (HTTP 401); check the API user's access{}",
        body_suffix(body)
    )]
    Unauthorized {
        /// The failed operation.
        op: Operation,
        /// Truncated response body.
        body: String,
    },
    /// 403: the API user may not act on this organization.
    #[error(
        "{op}: the API token lacks permission for organization {organization_id} (HTTP 403); check ORGANIZATION_ID and the API user's role in the console{}",
        body_suffix(body)
    )]
    Forbidden {
        /// The failed operation.
        op: Operation,
        /// The configured organization.
        organization_id: String,
        /// Truncated response body.
        body: String,
    },
    /// 404 for the addressed resource.
    #[error("{op}: {path} not found (HTTP 404); {hint}{}", body_suffix(body), hint = op.not_found_hint())]
    NotFound {
        /// The failed operation.
        op: Operation,
        /// The API path, relative to the API root.
        path: String,
        /// Truncated response body.
        body: String,
    },
    /// 429, and retrying did not help or the server asked for a longer pause
    /// than the client is configured to wait.
    #[error(
        "{op}: rate limited by Pomerium Zero (HTTP 429) after {attempts} attempt(s){}; try again later{}",
        retry_after_suffix(*retry_after),
        body_suffix(body)
    )]
    RateLimited {
        /// The failed operation.
        op: Operation,
        /// Attempts made.
        attempts: u32,
        /// What the last `Retry-After` asked for, if present and parseable.
        retry_after: Option<Duration>,
        /// Truncated response body.
        body: String,
    },
    /// Any other non-success status (400, 409, 5xx after retries, …).
    #[error(
        "{op}: Pomerium Zero answered HTTP {status} after {attempts} attempt(s){}{}",
        status_hint(*status),
        body_suffix(body)
    )]
    Status {
        /// The failed operation.
        op: Operation,
        /// The last status received.
        status: StatusCode,
        /// Attempts made.
        attempts: u32,
        /// Truncated response body.
        body: String,
    },
    /// No complete response within the per-attempt timeout.
    #[error("{op}: no response from Pomerium Zero within {timeout:?} after {attempts} attempt(s)")]
    Timeout {
        /// The failed operation.
        op: Operation,
        /// Attempts made.
        attempts: u32,
        /// The per-attempt timeout.
        timeout: Duration,
    },
    /// The connection failed or broke before a complete response arrived.
    #[error("{op}: request to Pomerium Zero failed after {attempts} attempt(s)")]
    Transport {
        /// The failed operation.
        op: Operation,
        /// Attempts made.
        attempts: u32,
        /// The underlying error (its URL holds ids, never tokens).
        #[source]
        source: reqwest::Error,
    },
    /// A required id argument was empty; nothing was sent.
    #[error("{op}: the {what} must not be empty")]
    EmptyArgument {
        /// The refused operation.
        op: Operation,
        /// Which argument, e.g. `"policy id"`.
        what: &'static str,
    },
    /// A success status with a body that does not match the expected model.
    #[error("{op}: unexpected response body (HTTP {status}){}", body_suffix(body))]
    Decode {
        /// The failed operation.
        op: Operation,
        /// The response status.
        status: StatusCode,
        /// Truncated response body; empty when it held a token.
        body: String,
        /// What did not match.
        #[source]
        source: serde_json::Error,
    },
}

impl ZeroError {
    /// The operation that failed.
    pub fn operation(&self) -> Operation {
        match self {
            ZeroError::TokenRefused { .. } => Operation::ExchangeToken,
            ZeroError::Unauthorized { op, .. }
            | ZeroError::Forbidden { op, .. }
            | ZeroError::NotFound { op, .. }
            | ZeroError::RateLimited { op, .. }
            | ZeroError::Status { op, .. }
            | ZeroError::Timeout { op, .. }
            | ZeroError::Transport { op, .. }
            | ZeroError::EmptyArgument { op, .. }
            | ZeroError::Decode { op, .. } => *op,
        }
    }

    /// The HTTP status that caused the error, if one was received.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ZeroError::TokenRefused { status, .. }
            | ZeroError::Status { status, .. }
            | ZeroError::Decode { status, .. } => Some(*status),
            ZeroError::Unauthorized { .. } => Some(StatusCode::UNAUTHORIZED),
            ZeroError::Forbidden { .. } => Some(StatusCode::FORBIDDEN),
            ZeroError::NotFound { .. } => Some(StatusCode::NOT_FOUND),
            ZeroError::RateLimited { .. } => Some(StatusCode::TOO_MANY_REQUESTS),
            ZeroError::Timeout { .. }
            | ZeroError::Transport { .. }
            | ZeroError::EmptyArgument { .. } => None,
        }
    }

    /// The pause the server asked for, when it rate limited us.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ZeroError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// True when a mutation was sent but no answer came back, so it may or
    /// may not have been applied: re-read the state before repeating it
    /// (for a create, list policies and look for it by name).
    pub fn outcome_unknown(&self) -> bool {
        let sent_without_answer = match self {
            ZeroError::Timeout { .. } => true,
            ZeroError::Transport { source, .. } => !source.is_connect(),
            _ => false,
        };
        sent_without_answer && self.operation().is_mutation()
    }
}

fn body_suffix(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!("; response: {body}")
    }
}

fn retry_after_suffix(retry_after: Option<Duration>) -> String {
    retry_after
        .map(|d| format!(" (server asked to wait {}s)", d.as_secs()))
        .unwrap_or_default()
}

fn status_hint(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 422 => {
            " (the request was rejected as invalid; this is a bug in the caller or an API change)"
        }
        409 => " (conflict with the current state; re-read and try again)",
        500..=599 => " (Pomerium Zero is failing; try again later)",
        _ => "",
    }
}

/// A response body as kept in an error: lossy UTF-8, secrets replaced,
/// truncated at a character boundary.
pub(crate) fn error_body(bytes: &[u8], secrets: &[&str]) -> String {
    let mut text = String::from_utf8_lossy(bytes).into_owned();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        text = text.replace(secret, "[redacted]");
    }
    let text = text.trim();
    if text.len() <= MAX_ERROR_BODY {
        return text.to_owned();
    }
    let mut end = MAX_ERROR_BODY;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_are_truncated_on_char_boundaries_and_redacted() {
        let long = "é".repeat(400);
        let body = error_body(long.as_bytes(), &[]);
        assert!(body.ends_with('…'));
        assert!(body.len() <= MAX_ERROR_BODY + '…'.len_utf8());
        assert_eq!(error_body(b"  short  ", &[]), "short");
        assert_eq!(
            error_body(b"bad token tok-123 here", &["tok-123", ""]),
            "bad token [redacted] here"
        );
        assert_eq!(error_body(&[0xff, b'a'], &[]), "\u{fffd}a");
    }

    #[test]
    fn messages_say_what_to_do() {
        let e = ZeroError::TokenRefused {
            status: StatusCode::UNAUTHORIZED,
            body: String::new(),
        };
        assert!(e.to_string().contains("Account → API Tokens"), "{e}");
        assert_eq!(e.operation(), Operation::ExchangeToken);

        let e = ZeroError::Forbidden {
            op: Operation::ListPolicies,
            organization_id: "org-x".into(),
            body: "nope".into(),
        };
        assert_eq!(
            e.to_string(),
            "list policies: the API token lacks permission for organization org-x (HTTP 403); \
             check ORGANIZATION_ID and the API user's role in the console; response: nope"
        );

        let e = ZeroError::NotFound {
            op: Operation::GetPolicy,
            path: "/organizations/o/policies/p".into(),
            body: String::new(),
        };
        assert!(e.to_string().contains("deleted in the console"), "{e}");
        assert_eq!(e.status(), Some(StatusCode::NOT_FOUND));

        let e = ZeroError::RateLimited {
            op: Operation::UpdatePolicy,
            attempts: 1,
            retry_after: Some(Duration::from_secs(120)),
            body: String::new(),
        };
        assert!(e.to_string().contains("wait 120s"), "{e}");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(120)));
    }

    #[test]
    fn only_unanswered_mutations_have_unknown_outcome() {
        let timeout = |op| ZeroError::Timeout {
            op,
            attempts: 1,
            timeout: Duration::from_secs(1),
        };
        assert!(timeout(Operation::CreatePolicy).outcome_unknown());
        assert!(timeout(Operation::UpdatePolicy).outcome_unknown());
        assert!(!timeout(Operation::GetPolicy).outcome_unknown());
        let status = ZeroError::Status {
            op: Operation::CreatePolicy,
            status: StatusCode::BAD_REQUEST,
            attempts: 1,
            body: String::new(),
        };
        assert!(!status.outcome_unknown());
    }
}
