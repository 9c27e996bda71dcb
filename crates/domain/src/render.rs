use time::OffsetDateTime;

use crate::{Email, Request, State};

/// A JIT entry as the Pomerium policy carries it for one email: a pending
/// request (`reject: true`) or a grant (`date.before`, maybe `date.after`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteEntry {
    Pending,
    Grant {
        starts_at: Option<OffsetDateTime>,
        expires_at: OffsetDateTime,
    },
}

/// The JIT entries the policy should hold at `now` for these requests: every
/// pending request, and every grant that has not yet expired, in request
/// order. Final requests and lapsed grants are left out, so the policy never
/// grants more than the store says.
pub fn desired_entries<'a>(
    requests: impl IntoIterator<Item = &'a Request>,
    now: OffsetDateTime,
) -> Vec<(Email, RemoteEntry)> {
    let mut open: Vec<&Request> = requests.into_iter().filter(|r| r.is_open()).collect();
    open.sort_by_key(|r| r.order());
    open.into_iter()
        .filter_map(|r| Some((r.email.clone(), desired_entry(r, now)?)))
        .collect()
}

/// The JIT entry the policy should hold at `now` for `request`: a pending
/// request's, or a grant's until it expires; none for a final request.
pub fn desired_entry(request: &Request, now: OffsetDateTime) -> Option<RemoteEntry> {
    match &request.state {
        State::Pending => Some(RemoteEntry::Pending),
        State::Active(g) if g.expires_at > now => Some(RemoteEntry::Grant {
            starts_at: g.starts_at,
            expires_at: g.expires_at,
        }),
        _ => None,
    }
}
