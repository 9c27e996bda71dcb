//! The reconciler's metrics (names and labels are listed in the README).
//! Labels are the policy name and a fixed set of outcomes, never an email.

use std::time::Duration;

use jit_domain::RemoteEntry;
use time::OffsetDateTime;

use crate::{FailureKind, SyncFailure, SyncReport};

/// The `result` label of a finished run.
pub(crate) fn result_label(result: &Result<SyncReport, SyncFailure>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(f) => match f.kind {
            FailureKind::ZeroRefused => "zero_refused",
            FailureKind::ZeroUnavailable => "zero_unavailable",
            FailureKind::ZeroInconsistent => "zero_inconsistent",
            FailureKind::Store => "store",
            FailureKind::Busy => "busy",
        },
    }
}

/// Records a finished run: its result and duration, the time of the last
/// success, and whether this replica held the writer lease for it.
pub(crate) fn run_ended(
    policy: &str,
    result: &Result<SyncReport, SyncFailure>,
    took: Duration,
    now: OffsetDateTime,
) {
    let policy = policy.to_owned();
    let outcome = result_label(result);
    metrics::counter!("pomerium_jit_syncs_total", "policy" => policy.clone(), "result" => outcome)
        .increment(1);
    metrics::histogram!("pomerium_jit_sync_duration_seconds", "policy" => policy.clone())
        .record(took.as_secs_f64());
    match result {
        Ok(_) => {
            metrics::gauge!("pomerium_jit_sync_last_success_timestamp_seconds", "policy" => policy.clone())
                .set(now.unix_timestamp() as f64);
            lease_held(&policy, true);
        }
        Err(f) if f.kind == FailureKind::Busy => lease_held(&policy, false),
        Err(_) => {}
    }
}

/// 1 while this replica's latest run holds the writer lease, 0 when another
/// replica held it.
pub(crate) fn lease_held(policy: &str, held: bool) {
    metrics::gauge!("pomerium_jit_lease_held", "policy" => policy.to_owned()).set(if held {
        1.0
    } else {
        0.0
    });
}

/// Grants past their end still in the policy (as last read from Zero, or as
/// written by this run).
pub(crate) fn overdue_grants<'a>(
    policy: &str,
    entries: impl IntoIterator<Item = &'a RemoteEntry>,
    now: OffsetDateTime,
) {
    overdue_count(policy, lapsed(entries, now));
}

pub(crate) fn overdue_count(policy: &str, count: usize) {
    metrics::gauge!("pomerium_jit_policy_overdue_grants", "policy" => policy.to_owned())
        .set(count as f64);
}

/// How many of `entries` are grants whose end has passed at `now`.
fn lapsed<'a>(entries: impl IntoIterator<Item = &'a RemoteEntry>, now: OffsetDateTime) -> usize {
    entries.into_iter().filter(|e| is_lapsed(e, now)).count()
}

/// Whether `entry` is a grant whose end has passed at `now`.
pub(crate) fn is_lapsed(entry: &RemoteEntry, now: OffsetDateTime) -> bool {
    matches!(entry, RemoteEntry::Grant { expires_at, .. } if *expires_at <= now)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn only_grants_past_their_end_are_overdue() {
        let now = datetime!(2026-11-30 12:00 UTC);
        let grant = |expires_at| RemoteEntry::Grant {
            starts_at: None,
            expires_at,
        };
        let entries = [
            RemoteEntry::Pending,
            grant(datetime!(2026-11-30 11:00 UTC)),
            grant(now),
            grant(datetime!(2026-11-30 13:00 UTC)),
        ];
        assert_eq!(lapsed(&entries, now), 2);
        assert_eq!(lapsed(&[], now), 0);
    }

    #[test]
    fn results_are_a_fixed_set() {
        let failed = |kind| {
            result_label(&Err(SyncFailure {
                kind,
                message: "x".into(),
            }))
        };
        assert_eq!(result_label(&Ok(SyncReport::default())), "ok");
        assert_eq!(failed(FailureKind::ZeroRefused), "zero_refused");
        assert_eq!(failed(FailureKind::ZeroUnavailable), "zero_unavailable");
        assert_eq!(failed(FailureKind::ZeroInconsistent), "zero_inconsistent");
        assert_eq!(failed(FailureKind::Store), "store");
        assert_eq!(failed(FailureKind::Busy), "busy");
    }
}
