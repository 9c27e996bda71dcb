//! The service's metrics: open requests per resource and how long requests
//! wait for a decision. Labels are resource names (from the configuration)
//! and a fixed set of decisions, never an email or an id.

use std::collections::HashMap;
use std::time::Duration;

use jit_domain::{Action, Request, ResourceName, Status, Transition};

/// Pending requests and active grants per resource, every configured
/// resource included (a resource with none shows 0, not nothing).
pub(crate) fn open_counts<'a>(
    resources: impl IntoIterator<Item = &'a ResourceName>,
    requests: impl IntoIterator<Item = &'a Request>,
) -> Vec<(&'a ResourceName, usize, usize)> {
    let mut counts: HashMap<&ResourceName, (usize, usize)> = HashMap::new();
    for r in requests {
        let c = counts.entry(&r.resource).or_default();
        match r.state.status() {
            Status::Pending => c.0 += 1,
            Status::Active => c.1 += 1,
            _ => {}
        }
    }
    resources
        .into_iter()
        .map(|name| {
            let (pending, active) = counts.get(name).copied().unwrap_or_default();
            (name, pending, active)
        })
        .collect()
}

pub(crate) fn publish_open_counts<'a>(
    resources: impl IntoIterator<Item = &'a ResourceName>,
    requests: impl IntoIterator<Item = &'a Request>,
) {
    for (name, pending, active) in open_counts(resources, requests) {
        let resource = name.as_str().to_owned();
        metrics::gauge!("pomerium_jit_requests_pending", "resource" => resource.clone())
            .set(pending as f64);
        metrics::gauge!("pomerium_jit_grants_active", "resource" => resource).set(active as f64);
    }
}

/// Records the wait of each request these transitions decided.
pub(crate) fn decisions(transitions: &[Transition]) {
    for (resource, decision, waited) in transitions.iter().filter_map(decision) {
        metrics::histogram!(
            "pomerium_jit_decision_latency_seconds",
            "resource" => resource.as_str().to_owned(),
            "decision" => decision,
        )
        .record(waited.as_secs_f64());
    }
}

/// A pending request approved or rejected, and how long it waited.
fn decision(t: &Transition) -> Option<(&ResourceName, &'static str, Duration)> {
    let decision = match t.event.action {
        Action::Approved => "approved",
        Action::Rejected => "rejected",
        _ => return None,
    };
    let waited = Duration::try_from(t.event.at - t.request.requested_at).unwrap_or_default();
    Some((&t.request.resource, decision, waited))
}

#[cfg(test)]
mod tests {
    use jit_domain::{Email, Reason, Rules};
    use time::macros::datetime;

    use super::*;

    #[test]
    fn decisions_measure_the_wait_from_the_request() {
        let rules = Rules::default();
        let alice = Email::parse("alice@x.test").unwrap();
        let admin = Email::parse("admin@x.test").unwrap();
        let asked = datetime!(2026-11-30 12:00 UTC);
        let reason = Reason::parse("deploy hotfix").unwrap();
        let requested = rules.request(None, &alice, reason, asked).unwrap();
        assert_eq!(requested.iter().filter_map(decision).count(), 0);
        let pending = &requested.last().unwrap().request;

        let later = asked + time::Duration::minutes(3);
        let approved = rules
            .approve(Some(pending), &alice, &admin, None, later)
            .unwrap();
        let (resource, what, waited) = approved.iter().find_map(decision).unwrap();
        assert_eq!(
            (resource, what, waited),
            (&pending.resource, "approved", Duration::from_secs(180))
        );

        let rejected = rules
            .revoke(Some(pending), &alice, &admin, None, later)
            .unwrap();
        assert_eq!(rejected.iter().find_map(decision).unwrap().1, "rejected");
    }

    #[test]
    fn every_resource_is_counted_even_with_nothing_open() {
        let rules = Rules::default();
        let alice = Email::parse("alice@x.test").unwrap();
        let at = datetime!(2026-11-30 12:00 UTC);
        let reason = Reason::parse("deploy hotfix").unwrap();
        let pending = rules.request(None, &alice, reason, at).unwrap();
        let pending = pending.last().unwrap().request.clone();
        let other = ResourceName::parse("staging").unwrap();
        let names = [pending.resource.clone(), other.clone()];
        let counts = open_counts(&names, [&pending]);
        assert_eq!(counts, vec![(&pending.resource, 1, 0), (&other, 0, 0)]);
    }
}
