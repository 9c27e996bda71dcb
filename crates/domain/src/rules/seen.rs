//! Decisions made on what a page showed. An admin acts on the request they
//! saw; if it changed since (approved meanwhile, replaced by a newer one,
//! ended), acting anyway could end access granted a moment ago or reject a
//! request nobody read. [`Seen::check`] refuses such a decision and says what
//! changed.

use time::OffsetDateTime;

use super::DomainError;
use crate::{Actor, Email, Request, RequestId, State, Status};

/// The request an admin saw, and the status it had then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub id: RequestId,
    pub status: Status,
}

/// What happened to a request since it was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// It is no longer open: decided, withdrawn or expired.
    Ended,
    /// It was approved.
    Approved { by: Actor, at: OffsetDateTime },
    /// It ended and a newer request, now in `status`, took its place.
    Replaced {
        status: Status,
        requested_at: OffsetDateTime,
    },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Ended => f.write_str("it is no longer open (decided, withdrawn or expired)"),
            Change::Approved { by, at } => write!(f, "{} approved it at {at}", by.label()),
            Change::Replaced { status, .. } => {
                write!(f, "a newer request, now {}, replaced it", status.as_str())
            }
        }
    }
}

impl Seen {
    /// Whether `open` (the email's open request, as the rules receive it) is
    /// still the request seen, as it was seen. A grant past its expiry counts
    /// as ended, as it does for every decision.
    pub fn check(
        &self,
        open: Option<&Request>,
        email: &Email,
        now: OffsetDateTime,
    ) -> Result<(), DomainError> {
        // A lapsed grant counts as ended, as it does for every decision.
        let open = open.filter(|r| {
            r.is_open() && !matches!(&r.state, State::Active(g) if g.expires_at <= now)
        });
        let change = match open {
            None => Change::Ended,
            Some(r) if r.id != self.id => Change::Replaced {
                status: r.state.status(),
                requested_at: r.requested_at,
            },
            Some(r) => match &r.state {
                State::Active(g) if self.status == Status::Pending => Change::Approved {
                    by: g.approved_by.clone(),
                    at: g.approved_at,
                },
                _ => return Ok(()),
            },
        };
        Err(DomainError::Changed {
            email: email.clone(),
            change,
        })
    }
}

#[cfg(test)]
mod tests {
    use time::Duration;
    use time::macros::datetime;

    use super::*;
    use crate::Rules;

    const NOW: OffsetDateTime = datetime!(2026-11-28 14:00 UTC);

    fn alice() -> Email {
        Email::parse("alice@example.com").unwrap()
    }

    fn carol() -> Email {
        Email::parse("carol@example.com").unwrap()
    }

    fn pending(at: OffsetDateTime) -> Request {
        let t = Rules::default().request(None, &alice(), None, at).unwrap();
        t.last().unwrap().request.clone()
    }

    fn approved(r: &Request, at: OffsetDateTime) -> Request {
        let t = Rules::default()
            .approve(Some(r), &alice(), &carol(), None, at)
            .unwrap();
        t.last().unwrap().request.clone()
    }

    fn seen(r: &Request) -> Seen {
        Seen {
            id: r.id,
            status: r.state.status(),
        }
    }

    fn change(result: Result<(), DomainError>) -> Change {
        match result {
            Err(DomainError::Changed { change, .. }) => change,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_request_as_seen_passes() {
        let r = pending(NOW);
        assert_eq!(seen(&r).check(Some(&r), &alice(), NOW), Ok(()));
        let a = approved(&r, NOW);
        assert_eq!(seen(&a).check(Some(&a), &alice(), NOW), Ok(()));
    }

    #[test]
    fn approved_meanwhile_says_by_whom() {
        let r = pending(NOW);
        let a = approved(&r, NOW + Duration::minutes(1));
        assert_eq!(
            change(seen(&r).check(Some(&a), &alice(), NOW + Duration::minutes(2))),
            Change::Approved {
                by: Actor::User(carol()),
                at: NOW + Duration::minutes(1)
            }
        );
    }

    #[test]
    fn a_newer_request_or_none_is_a_change() {
        let old = approved(&pending(NOW), NOW);
        let newer = pending(NOW + Duration::minutes(5));
        assert_eq!(
            change(seen(&old).check(Some(&newer), &alice(), NOW + Duration::minutes(6))),
            Change::Replaced {
                status: Status::Pending,
                requested_at: NOW + Duration::minutes(5)
            }
        );
        assert_eq!(change(seen(&old).check(None, &alice(), NOW)), Change::Ended);
        let lapsed = NOW + Duration::hours(2);
        assert_eq!(
            change(seen(&old).check(Some(&old), &alice(), lapsed)),
            Change::Ended,
            "expired"
        );
    }
}
