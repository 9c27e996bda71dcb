//! Replaying the trail: what each request's row must hold, by the last
//! event that committed to its state.

use std::collections::BTreeMap;
use std::fmt;

use super::AuditRow;
use crate::StoreError;
use crate::rows::RequestRow;

/// A row of `requests` that differs from what the audit trail says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateMismatch {
    pub request_id: String,
    pub problem: MismatchProblem,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MismatchProblem {
    /// A column differs from the state committed by audit event `seq`.
    Column {
        column: &'static str,
        expected: String,
        found: String,
        seq: u64,
    },
    /// Audit event `seq` records the request, but its row is gone.
    Deleted { seq: u64 },
    /// The row exists, but no audit event commits to its state.
    Unrecorded,
}

impl fmt::Display for StateMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = &self.request_id;
        match &self.problem {
            MismatchProblem::Column {
                column,
                expected,
                found,
                seq,
            } => write!(
                f,
                "table requests, request {id}: column {column} is {found}, but audit event {seq} \
                 says {expected}"
            ),
            MismatchProblem::Deleted { seq } => write!(
                f,
                "table requests, request {id}: the row is missing, but audit event {seq} records it"
            ),
            MismatchProblem::Unrecorded => write!(
                f,
                "table requests, request {id}: no audit event records this row; it was written \
                 outside the app"
            ),
        }
    }
}

/// The state each request must be in, from the events walked so far.
#[derive(Debug, Default)]
pub(super) struct Replay {
    /// By request id: the last event committing to its state, and that state.
    expected: BTreeMap<String, (u64, RequestRow)>,
}

impl Replay {
    /// Takes in the next intact event. Format-1 events committed to no state.
    pub fn record(&mut self, row: &AuditRow) -> Result<(), StoreError> {
        let Some(state) = &row.state else {
            return Ok(());
        };
        let bad = |problem: String| row.corrupt("state", state, problem);
        let committed: RequestRow =
            serde_json::from_str(state).map_err(|e| bad(format!("is not a request row ({e})")))?;
        if committed.id != row.request_id || committed.email != row.subject {
            return Err(bad("names another request than its event".into()));
        }
        self.expected
            .insert(committed.id.clone(), (row.seq.unsigned_abs(), committed));
        Ok(())
    }

    /// Compares a row of `requests` with its expected state, and forgets it.
    pub fn compare(&mut self, found: &RequestRow) -> Option<StateMismatch> {
        let mismatch = |problem| {
            Some(StateMismatch {
                request_id: found.id.clone(),
                problem,
            })
        };
        let Some((seq, expected)) = self.expected.remove(&found.id) else {
            return mismatch(MismatchProblem::Unrecorded);
        };
        expected
            .cells()
            .into_iter()
            .zip(found.cells())
            .find(|(e, f)| e != f)
            .and_then(|((column, expected), (_, found))| {
                mismatch(MismatchProblem::Column {
                    column,
                    expected,
                    found,
                    seq,
                })
            })
    }

    /// The first request (by id) the trail records but no row was compared with.
    pub fn first_deleted(&self) -> Option<StateMismatch> {
        self.expected
            .iter()
            .next()
            .map(|(id, (seq, _))| StateMismatch {
                request_id: id.clone(),
                problem: MismatchProblem::Deleted { seq: *seq },
            })
    }
}
