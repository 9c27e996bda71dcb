use jit_store::StoreError;
use jit_zero::ZeroError;

/// Why a run failed, in a form that can be shown and cloned to every waiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncFailure {
    pub kind: FailureKind,
    /// The error and every cause under it ("connection refused", the
    /// status and body excerpt), so a log line says what to fix.
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Zero refused our credentials: the API token is wrong, revoked or lacks permission.
    ZeroRefused,
    /// Zero could not be reached or kept failing: retried later.
    ZeroUnavailable,
    /// Zero answered something we cannot act on (bad request, unreadable policy, duplicates).
    ZeroInconsistent,
    /// The database failed.
    Store,
    /// Another replica is writing right now, or took over during the run.
    Busy,
}

impl std::fmt::Display for SyncFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SyncError {
    #[error(transparent)]
    Zero(#[from] ZeroError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "there are {} policies named `{name}` in namespace {namespace} ({}); delete or rename all but one in the Zero console",
        ids.len(), ids.join(", ")
    )]
    Duplicates {
        name: String,
        namespace: String,
        ids: Vec<String>,
    },
    #[error(
        "the PPL of policy `{name}` ({id}) cannot be read, so it is left untouched: {error}; fix it in the Zero console"
    )]
    Unreadable {
        name: String,
        id: String,
        error: jit_ppl::ParseError,
    },
    #[error("the policy kept changing while being written; will try again")]
    KeptChanging,
    #[error("another replica is updating the policy")]
    Busy,
    #[error(
        "the writer lease was lost (database unreachable, or another replica took over); the run was stopped before writing"
    )]
    LostLease,
}

impl SyncError {
    pub(crate) fn failure(&self) -> SyncFailure {
        let kind = match self {
            SyncError::Zero(
                ZeroError::TokenRefused { .. }
                | ZeroError::Unauthorized { .. }
                | ZeroError::Forbidden { .. },
            ) => FailureKind::ZeroRefused,
            SyncError::Zero(
                ZeroError::RateLimited { .. }
                | ZeroError::Timeout { .. }
                | ZeroError::Transport { .. },
            ) => FailureKind::ZeroUnavailable,
            SyncError::Zero(ZeroError::Status { status, .. }) if status.is_server_error() => {
                FailureKind::ZeroUnavailable
            }
            SyncError::Zero(_) | SyncError::Duplicates { .. } | SyncError::Unreadable { .. } => {
                FailureKind::ZeroInconsistent
            }
            SyncError::KeptChanging => FailureKind::ZeroUnavailable,
            SyncError::Store(StoreError::Fenced { .. }) | SyncError::LostLease => FailureKind::Busy,
            SyncError::Store(_) => FailureKind::Store,
            SyncError::Busy => FailureKind::Busy,
        };
        SyncFailure {
            kind,
            message: with_causes(self),
        }
    }
}

/// `error: cause: deeper cause`, skipping causes its message already ends with.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !text.is_empty() && !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = c.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Inner);
    #[derive(Debug, thiserror::Error)]
    #[error("connection refused")]
    struct Inner;

    #[test]
    fn messages_carry_their_causes() {
        assert_eq!(with_causes(&Outer(Inner)), "outer: connection refused");
        assert_eq!(with_causes(&Inner), "connection refused");
    }
}
