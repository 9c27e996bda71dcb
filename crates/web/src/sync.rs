//! How the state of synchronisation with Pomerium Zero is told: a stable
//! code for machines and `/readyz`, a sentence for people.

use jit_service::{FailureKind, SyncState, SyncStatus};
use serde::Serialize;

/// A stable, public name for a kind of sync failure.
pub(crate) fn failure_code(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::ZeroRefused => "zero_refused",
        FailureKind::ZeroUnavailable => "zero_unavailable",
        FailureKind::ZeroInconsistent => "zero_inconsistent",
        FailureKind::Store => "store",
        FailureKind::Busy => "busy",
    }
}

/// What the failure means and what to do about it, for people.
pub(crate) fn failure_text(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::ZeroRefused => {
            "Pomerium Zero refused this app's API token (API_USER_TOKEN): it is wrong, revoked, or lacks \
             permission for the cluster. Create a new token in the Zero console and restart the app with it."
        }
        FailureKind::ZeroUnavailable => {
            "Pomerium Zero could not be reached or kept failing. The app keeps retrying on its own."
        }
        FailureKind::ZeroInconsistent => {
            "Pomerium Zero answered something this app cannot act on; the policy is left as it is until \
             that is fixed in the Zero console."
        }
        FailureKind::Store => {
            "The database failed while syncing with Pomerium Zero. The app keeps retrying."
        }
        FailureKind::Busy => "Another replica of this app is updating the policy right now.",
    }
}

/// The public shape of the sync status: no ids, no emails, no error texts.
#[derive(Debug, Serialize)]
pub(crate) struct SyncJson {
    /// The last run succeeded (and there was one).
    pub ok: bool,
    pub last_success_at: Option<String>,
    pub failure: Option<&'static str>,
    pub auto_apply_changesets: Option<bool>,
}

impl SyncJson {
    /// From this replica's memory and, when at hand, the store's record.
    /// The record is the truth about the last run by any replica (only the
    /// lease holder runs; the others remember no run at all) and is written
    /// before the memory is, so it also never trails it. Only the memory
    /// knows the kind of a failure; one seen only in the record is
    /// `sync_failed`.
    pub fn of(memory: &SyncStatus, recorded: Option<&SyncState>) -> SyncJson {
        let (last_success_at, failed) = match recorded {
            Some(r) => (
                r.last_success_at.max(memory.last_success_at),
                r.last_error.is_some(),
            ),
            None => (memory.last_success_at, memory.last_error.is_some()),
        };
        let failure = failed.then(|| {
            memory
                .last_error
                .as_ref()
                .map_or("sync_failed", |f| failure_code(f.kind))
        });
        SyncJson {
            ok: !failed && last_success_at.is_some(),
            last_success_at: last_success_at.map(crate::when::rfc3339),
            failure,
            auto_apply_changesets: memory.auto_apply,
        }
    }

    /// Several policies as one: ok only if each is (and there is one),
    /// the oldest last success, the first failure.
    pub fn all<'a>(each: impl IntoIterator<Item = &'a SyncJson>) -> SyncJson {
        let each: Vec<&SyncJson> = each.into_iter().collect();
        let last_success_at = each
            .iter()
            .map(|s| s.last_success_at.clone())
            .collect::<Option<Vec<_>>>()
            .and_then(|all| all.into_iter().min());
        SyncJson {
            ok: !each.is_empty() && each.iter().all(|s| s.ok),
            last_success_at,
            failure: each.iter().find_map(|s| s.failure),
            auto_apply_changesets: each.first().and_then(|s| s.auto_apply_changesets),
        }
    }
}

#[cfg(test)]
mod tests {
    use jit_service::SyncFailure;
    use time::macros::datetime;

    use super::*;

    fn refused() -> SyncFailure {
        SyncFailure {
            kind: FailureKind::ZeroRefused,
            message: "token for alice@example.com refused".into(),
        }
    }

    #[test]
    fn reveals_the_kind_but_not_the_message() {
        let memory = SyncStatus {
            last_success_at: Some(datetime!(2026-11-28 14:02:03.5 UTC)),
            last_error: Some(refused()),
            policy_id: Some("pol-123".into()),
            auto_apply: Some(false),
            ..Default::default()
        };
        let json = serde_json::to_string(&SyncJson::of(&memory, None)).unwrap();
        assert_eq!(
            json,
            r#"{"ok":false,"last_success_at":"2026-11-28T14:02:03Z","failure":"zero_refused","auto_apply_changesets":false}"#
        );
    }

    #[test]
    fn never_synced_is_not_ok() {
        assert!(!SyncJson::of(&SyncStatus::default(), None).ok);
        assert!(!SyncJson::of(&SyncStatus::default(), Some(&SyncState::default())).ok);
    }

    #[test]
    fn the_record_covers_other_replicas_and_a_lagging_memory() {
        let at = datetime!(2026-11-28 14:02:03 UTC);
        let recorded = SyncState {
            last_success_at: Some(at),
            ..SyncState::default()
        };
        let follower = SyncJson::of(&SyncStatus::default(), Some(&recorded));
        assert!(follower.ok && follower.failure.is_none());
        assert_eq!(
            follower.last_success_at.as_deref(),
            Some("2026-11-28T14:02:03Z")
        );

        let failed = SyncState {
            last_error: Some("refused".into()),
            ..recorded
        };
        assert_eq!(
            SyncJson::of(&SyncStatus::default(), Some(&failed)).failure,
            Some("sync_failed")
        );
        let memory = SyncStatus {
            last_error: Some(refused()),
            ..SyncStatus::default()
        };
        let here = SyncJson::of(&memory, Some(&failed));
        assert_eq!((here.ok, here.failure), (false, Some("zero_refused")));
    }

    #[test]
    fn several_policies_are_ok_only_together() {
        let ok = |at: &str| SyncJson {
            ok: true,
            last_success_at: Some(at.into()),
            failure: None,
            auto_apply_changesets: None,
        };
        let both = SyncJson::all(&[ok("2026-11-30T10:00:00Z"), ok("2026-11-30T09:00:00Z")]);
        assert!(both.ok);
        assert_eq!(
            both.last_success_at.as_deref(),
            Some("2026-11-30T09:00:00Z")
        );
        let never = SyncJson::of(&SyncStatus::default(), None);
        let one_never = SyncJson::all(&[ok("2026-11-30T10:00:00Z"), never]);
        assert!(!one_never.ok);
        assert_eq!(one_never.last_success_at, None, "one never synced");
        assert!(!SyncJson::all(&[]).ok, "nothing synced is not ok");
    }
}
