//! How domain values are laid out in rows, and read back with every field
//! checked: times as unix milliseconds, actors in their `Display` form.

use std::cell::RefCell;
use std::fmt::Display;
use std::str::FromStr;

use jit_domain::{
    Actor, Approval, Ask, Email, ExtensionAsk, Grant, GrantDuration, Reason, Request, RequestId,
    ResourceName, ResourceNameError, State, Status, Ticket,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::StoreError;

/// The column list of [`RequestRow`], for `SELECT`s.
macro_rules! select_requests {
    ($($tail:literal)*) => {
        concat!(
            "SELECT id, email, reason, requested_at, requested_by, status, approved_by, \
             approved_at, starts_at, expires_at, ended_by, ended_at, resource, \
             requested_duration, requested_start, ticket, approvals, extension, extensions, \
             comment FROM requests ",
            $($tail),*
        )
    };
}
pub(crate) use select_requests;

/// A time as stored: whole milliseconds since the epoch, rounded down.
pub(crate) fn millis(t: OffsetDateTime) -> i64 {
    // |nanos| < 2^69 in `time`'s range, so the quotient fits an i64.
    (t.unix_timestamp_nanos().div_euclid(1_000_000)) as i64
}

pub(crate) fn from_millis(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

/// One row of `requests`. Its JSON form is what an audit event commits to
/// (see `crate::audit`): the field names are part of the hashed format.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RequestRow {
    pub id: String,
    pub email: String,
    pub reason: Option<String>,
    pub requested_at: i64,
    pub requested_by: String,
    pub status: String,
    pub approved_by: Option<String>,
    pub approved_at: Option<i64>,
    pub starts_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub ended_by: Option<String>,
    pub ended_at: Option<i64>,
    // Columns added with resources: states committed before them lack these
    // and read as what the migration gave their rows.
    #[serde(default = "default_resource")]
    pub resource: String,
    #[serde(default)]
    pub requested_duration: Option<i64>,
    #[serde(default)]
    pub requested_start: Option<i64>,
    #[serde(default)]
    pub ticket: Option<String>,
    #[serde(default = "no_approvals")]
    pub approvals: String,
    #[serde(default)]
    pub extension: Option<String>,
    #[serde(default)]
    pub extensions: i64,
    #[serde(default)]
    pub comment: Option<String>,
}

fn default_resource() -> String {
    ResourceName::DEFAULT.to_owned()
}

fn no_approvals() -> String {
    "[]".to_owned()
}

/// An approval in the `approvals` column's JSON.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ApprovalJson {
    by: String,
    at: i64,
}

/// The `extension` column's JSON.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ExtensionJson {
    duration: u32,
    reason: Option<String>,
    asked_at: i64,
}

impl From<&Request> for RequestRow {
    fn from(r: &Request) -> Self {
        let grant = r.state.grant();
        let ended_by = match &r.state {
            State::Revoked { by, .. }
            | State::Rejected { by, .. }
            | State::Cancelled { by, .. } => Some(by.to_string()),
            State::Pending | State::Active(_) | State::Expired(_) => None,
        };
        RequestRow {
            id: r.id.to_string(),
            email: r.email.to_string(),
            reason: r.reason().map(|x| x.as_str().to_owned()),
            requested_at: millis(r.requested_at),
            requested_by: r.requested_by.to_string(),
            status: r.state.status().as_str().to_owned(),
            approved_by: grant.map(|g| g.approved_by.to_string()),
            approved_at: grant.map(|g| millis(g.approved_at)),
            starts_at: grant.and_then(|g| g.starts_at).map(millis),
            expires_at: grant.map(|g| millis(g.expires_at)),
            ended_by,
            ended_at: r.state.ended_at().map(millis),
            resource: r.resource.as_str().to_owned(),
            requested_duration: r.ask.duration.map(|d| d.whole_minutes()),
            requested_start: r.ask.starts_at.map(millis),
            ticket: r.ask.ticket.as_ref().map(|t| t.as_str().to_owned()),
            approvals: serde_json::to_string(
                &r.approvals
                    .iter()
                    .map(|a| ApprovalJson {
                        by: a.by.to_string(),
                        at: millis(a.at),
                    })
                    .collect::<Vec<_>>(),
            )
            .expect("strings and integers serialize"),
            extension: r.extension.as_ref().map(|x| {
                serde_json::to_string(&ExtensionJson {
                    duration: u32::try_from(x.duration.whole_minutes()).unwrap_or(u32::MAX),
                    reason: x.reason.as_ref().map(|r| r.as_str().to_owned()),
                    asked_at: millis(x.asked_at),
                })
                .expect("strings and integers serialize")
            }),
            extensions: i64::from(r.extensions),
            comment: r.comment.as_ref().map(|c| c.as_str().to_owned()),
        }
    }
}

impl RequestRow {
    /// Every column by name, as people read it and distinct for distinct
    /// values: text quoted, times in RFC 3339 (raw milliseconds if out of
    /// range), `NULL` for nothing.
    pub fn cells(&self) -> [(&'static str, String); 20] {
        let quoted = |v: &str| format!("{v:?}");
        let text = |v: &Option<String>| v.as_deref().map_or_else(|| "NULL".into(), quoted);
        let time = |v: Option<i64>| {
            v.map_or_else(
                || "NULL".into(),
                |ms| {
                    from_millis(ms)
                        .and_then(|t| t.format(&Rfc3339).ok())
                        .unwrap_or_else(|| ms.to_string())
                },
            )
        };
        [
            ("id", quoted(&self.id)),
            ("email", quoted(&self.email)),
            ("reason", text(&self.reason)),
            ("requested_at", time(Some(self.requested_at))),
            ("requested_by", quoted(&self.requested_by)),
            ("status", quoted(&self.status)),
            ("approved_by", text(&self.approved_by)),
            ("approved_at", time(self.approved_at)),
            ("starts_at", time(self.starts_at)),
            ("expires_at", time(self.expires_at)),
            ("ended_by", text(&self.ended_by)),
            ("ended_at", time(self.ended_at)),
            ("resource", quoted(&self.resource)),
            (
                "requested_duration",
                self.requested_duration
                    .map_or_else(|| "NULL".into(), |m| format!("{m} min")),
            ),
            ("requested_start", time(self.requested_start)),
            ("ticket", text(&self.ticket)),
            ("approvals", self.approvals.clone()),
            ("extension", text(&self.extension)),
            ("extensions", self.extensions.to_string()),
            ("comment", text(&self.comment)),
        ]
    }

    pub fn into_request(self) -> Result<Request, StoreError> {
        self.into_request_sharing(&mut SharedNames::default())
    }

    /// [`RequestRow::into_request`], sharing names with the rows read
    /// before it through `names`.
    pub fn into_request_sharing(self, names: &mut SharedNames) -> Result<Request, StoreError> {
        let bad =
            |column: &'static str, value: &dyn Display, problem: String| StoreError::Corrupt {
                table: "requests",
                key: self.id.clone(),
                column,
                value: value.to_string().chars().take(200).collect(),
                problem,
            };
        let text = |column: &'static str, v: &Option<String>| -> Result<String, StoreError> {
            v.clone().ok_or_else(|| {
                bad(
                    column,
                    &"NULL",
                    format!("must be set for a {} request", self.status),
                )
            })
        };
        let when = |column: &'static str, v: Option<i64>| -> Result<OffsetDateTime, StoreError> {
            let ms = v.ok_or_else(|| {
                bad(
                    column,
                    &"NULL",
                    format!("must be set for a {} request", self.status),
                )
            })?;
            from_millis(ms).ok_or_else(|| bad(column, &ms, "is not a representable time".into()))
        };
        let email = |column: &'static str, v: &str| {
            Email::parse(v).map_err(|e| bad(column, &v, e.to_string()))
        };
        let person = email("email", &self.email)?;
        let names = RefCell::new(names);
        let shared_actor = |column: &'static str, v: &str| {
            names
                .borrow_mut()
                .actor(v, &person)
                .map_err(|e| bad(column, &v, e))
        };
        let actor = |column: &'static str, v: &Option<String>| -> Result<Actor, StoreError> {
            shared_actor(column, &text(column, v)?)
        };
        let grant = || -> Result<Grant, StoreError> {
            Ok(Grant {
                approved_by: actor("approved_by", &self.approved_by)?,
                approved_at: when("approved_at", self.approved_at)?,
                starts_at: self
                    .starts_at
                    .map(|s| when("starts_at", Some(s)))
                    .transpose()?,
                expires_at: when("expires_at", self.expires_at)?,
            })
        };
        let ended = || -> Result<(Actor, OffsetDateTime), StoreError> {
            Ok((
                actor("ended_by", &self.ended_by)?,
                when("ended_at", self.ended_at)?,
            ))
        };
        let status = Status::from_str(&self.status).map_err(|e| bad("status", &self.status, e))?;
        let state = match status {
            Status::Pending => State::Pending,
            Status::Active => State::Active(grant()?),
            Status::Expired => State::Expired(grant()?),
            Status::Revoked => {
                let (by, at) = ended()?;
                State::Revoked {
                    grant: Box::new(grant()?),
                    by,
                    at,
                }
            }
            Status::Rejected => {
                let (by, at) = ended()?;
                State::Rejected { by, at }
            }
            Status::Cancelled => {
                let (by, at) = ended()?;
                State::Cancelled { by, at }
            }
        };
        let reason = |column: &'static str, v: &Option<String>| match v {
            None => Ok(None),
            Some(r) => Reason::parse(r).map_err(|e| bad(column, r, e.to_string())),
        };
        let minutes = |column: &'static str, m: i64| {
            u32::try_from(m)
                .ok()
                .and_then(|m| GrantDuration::from_minutes(m).ok())
                .ok_or_else(|| bad(column, &m, "is not a positive number of minutes".into()))
        };
        let approvals: Vec<ApprovalJson> = serde_json::from_str(&self.approvals)
            .map_err(|e| bad("approvals", &self.approvals, e.to_string()))?;
        let approvals = approvals
            .into_iter()
            .map(|a| {
                Ok(Approval {
                    by: names
                        .borrow()
                        .approver(&a.by)
                        .map_or_else(|| email("approvals", &a.by), Ok)?,
                    at: when("approvals", Some(a.at))?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let extension = match &self.extension {
            None => None,
            Some(text) => {
                let x: ExtensionJson = serde_json::from_str(text)
                    .map_err(|e| bad("extension", text, e.to_string()))?;
                Some(ExtensionAsk {
                    duration: minutes("extension", i64::from(x.duration))?,
                    reason: reason("extension", &x.reason)?,
                    asked_at: when("extension", Some(x.asked_at))?,
                })
            }
        };
        let resource = names
            .borrow_mut()
            .resource(&self.resource)
            .map_err(|e| bad("resource", &self.resource, e.to_string()))?;
        Ok(Request {
            id: RequestId::from_str(&self.id).map_err(|e| bad("id", &self.id, e.to_string()))?,
            resource,
            email: person.clone(),
            ask: Ask {
                reason: reason("reason", &self.reason)?,
                duration: self
                    .requested_duration
                    .map(|m| minutes("requested_duration", m))
                    .transpose()?,
                starts_at: self
                    .requested_start
                    .map(|s| when("requested_start", Some(s)))
                    .transpose()?,
                ticket: match &self.ticket {
                    None => None,
                    Some(t) => Ticket::parse(t).map_err(|e| bad("ticket", t, e.to_string()))?,
                },
            },
            requested_at: when("requested_at", Some(self.requested_at))?,
            requested_by: shared_actor("requested_by", &self.requested_by)?,
            state,
            approvals,
            extension: extension.map(Box::new),
            extensions: u32::try_from(self.extensions)
                .map_err(|_| bad("extensions", &self.extensions, "is out of range".into()))?,
            comment: reason("comment", &self.comment)?,
        })
    }
}

/// Reads `rows` into requests that share names ([`SharedNames`]).
pub(crate) fn into_requests(
    rows: impl IntoIterator<Item = RequestRow>,
) -> impl Iterator<Item = Result<Request, StoreError>> {
    let mut names = SharedNames::default();
    rows.into_iter()
        .map(move |row| row.into_request_sharing(&mut names))
}

/// What rows read one after another can share rather than each hold a
/// copy of: the resource's name, the last actor read (the approver of a run
/// of grants, also named in each one's approvals). A requester who is the
/// person asking shares that address.
/// The pages keep every open request in memory, so at 10,000 people each
/// copy saved is some 300 KB.
#[derive(Debug, Default)]
pub(crate) struct SharedNames {
    resource: Option<ResourceName>,
    actor: Option<Actor>,
}

impl SharedNames {
    fn resource(&mut self, text: &str) -> Result<ResourceName, ResourceNameError> {
        match &self.resource {
            Some(r) if r.as_str() == text => Ok(r.clone()),
            _ => Ok(self.resource.insert(ResourceName::parse(text)?).clone()),
        }
    }

    /// The last actor read, if it is the person `email` names.
    fn approver(&self, email: &str) -> Option<Email> {
        match &self.actor {
            Some(Actor::User(e)) if e.as_str() == email => Some(e.clone()),
            _ => None,
        }
    }

    /// The actor `text` names; `person`'s own address when it is theirs.
    fn actor(&mut self, text: &str, person: &Email) -> Result<Actor, String> {
        let requester = Actor::User(person.clone());
        if requester.is_written_as(text) {
            return Ok(requester);
        }
        match &self.actor {
            Some(a) if a.is_written_as(text) => Ok(a.clone()),
            _ => Ok(self.actor.insert(Actor::from_str(text)?).clone()),
        }
    }
}

/// `r` exactly as the store will hold it (times cut to milliseconds), so
/// what a write returns equals what a later read yields.
pub(crate) fn as_stored(r: &Request) -> Result<Request, StoreError> {
    RequestRow::from(r).into_request()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use time::macros::datetime;

    use super::*;

    fn time_in_range() -> impl Strategy<Value = OffsetDateTime> {
        // Years 1..=9999, any nanosecond.
        (-62_135_596_800i64..253_402_300_799, 0u32..1_000_000_000).prop_map(|(s, n)| {
            OffsetDateTime::from_unix_timestamp(s).unwrap() + time::Duration::nanoseconds(n.into())
        })
    }

    fn actor() -> impl Strategy<Value = Actor> {
        prop_oneof![
            Just(Actor::System),
            Just(Actor::Zero),
            email().prop_map(Actor::User),
        ]
    }

    fn grant() -> impl Strategy<Value = Grant> {
        (
            actor(),
            time_in_range(),
            proptest::option::of(time_in_range()),
            time_in_range(),
        )
            .prop_map(|(approved_by, approved_at, starts_at, expires_at)| Grant {
                approved_by,
                approved_at,
                starts_at,
                expires_at,
            })
    }

    fn state() -> impl Strategy<Value = State> {
        prop_oneof![
            Just(State::Pending),
            grant().prop_map(State::Active),
            grant().prop_map(State::Expired),
            (grant(), actor(), time_in_range()).prop_map(|(grant, by, at)| State::Revoked {
                grant: Box::new(grant),
                by,
                at
            }),
            (actor(), time_in_range()).prop_map(|(by, at)| State::Rejected { by, at }),
            (actor(), time_in_range()).prop_map(|(by, at)| State::Cancelled { by, at }),
        ]
    }

    fn email() -> impl Strategy<Value = Email> {
        "[a-z]{1,8}@[a-z]{1,8}\\.test".prop_map(|e| Email::parse(&e).unwrap())
    }

    fn reason() -> impl Strategy<Value = Option<Reason>> {
        proptest::option::of("[ -~]{1,40}").prop_map(|s| s.and_then(|s| Reason::parse(&s).unwrap()))
    }

    fn minutes() -> impl Strategy<Value = GrantDuration> {
        (1u32..=u32::MAX).prop_map(|m| GrantDuration::from_minutes(m).unwrap())
    }

    fn ask() -> impl Strategy<Value = Ask> {
        (
            reason(),
            proptest::option::of(minutes()),
            proptest::option::of(time_in_range()),
            proptest::option::of("[ -~]{1,30}"),
        )
            .prop_map(|(reason, duration, starts_at, ticket)| Ask {
                reason,
                duration,
                starts_at,
                ticket: ticket.and_then(|t| Ticket::parse(&t).unwrap()),
            })
    }

    fn extension() -> impl Strategy<Value = ExtensionAsk> {
        (minutes(), reason(), time_in_range()).prop_map(|(duration, reason, asked_at)| {
            ExtensionAsk {
                duration,
                reason,
                asked_at,
            }
        })
    }

    /// Any request, with every field the resource model added arbitrary too.
    fn request() -> impl Strategy<Value = Request> {
        (
            "[a-z0-9][a-z0-9_-]{0,62}".prop_map(|n| ResourceName::parse(&n).unwrap()),
            email(),
            ask(),
            (time_in_range(), actor(), state()),
            proptest::collection::vec(
                (email(), time_in_range()).prop_map(|(by, at)| Approval { by, at }),
                0..4,
            ),
            proptest::option::of(extension()),
            any::<u32>(),
            reason(),
        )
            .prop_map(
                |(
                    resource,
                    email,
                    ask,
                    (requested_at, requested_by, state),
                    approvals,
                    extension,
                    extensions,
                    comment,
                )| Request {
                    id: RequestId::new(),
                    resource,
                    email,
                    ask,
                    requested_at,
                    requested_by,
                    state,
                    approvals,
                    extension: extension.map(Box::new),
                    extensions,
                    comment,
                },
            )
    }

    fn truncated(t: OffsetDateTime) -> OffsetDateTime {
        t.replace_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000)
            .unwrap()
    }

    /// `r` with every time cut to the millisecond, and nothing else changed.
    fn truncated_request(r: &Request) -> Request {
        let grant = |g: &Grant| Grant {
            approved_at: truncated(g.approved_at),
            starts_at: g.starts_at.map(truncated),
            expires_at: truncated(g.expires_at),
            ..g.clone()
        };
        let state = match &r.state {
            State::Pending => State::Pending,
            State::Active(g) => State::Active(grant(g)),
            State::Expired(g) => State::Expired(grant(g)),
            State::Revoked { grant: g, by, at } => State::Revoked {
                grant: Box::new(grant(g)),
                by: by.clone(),
                at: truncated(*at),
            },
            State::Rejected { by, at } => State::Rejected {
                by: by.clone(),
                at: truncated(*at),
            },
            State::Cancelled { by, at } => State::Cancelled {
                by: by.clone(),
                at: truncated(*at),
            },
        };
        Request {
            ask: Ask {
                starts_at: r.ask.starts_at.map(truncated),
                ..r.ask.clone()
            },
            requested_at: truncated(r.requested_at),
            state,
            approvals: r
                .approvals
                .iter()
                .map(|a| Approval {
                    by: a.by.clone(),
                    at: truncated(a.at),
                })
                .collect(),
            extension: r.extension.as_ref().map(|x| {
                Box::new(ExtensionAsk {
                    asked_at: truncated(x.asked_at),
                    ..(**x).clone()
                })
            }),
            ..r.clone()
        }
    }

    proptest! {
        #[test]
        fn millis_round_trip_truncates(t in time_in_range()) {
            prop_assert_eq!(from_millis(millis(t)), Some(truncated(t)));
        }

        #[test]
        fn requests_round_trip(r in request()) {
            let back = as_stored(&r).unwrap();
            prop_assert_eq!(&back, &truncated_request(&r));
            prop_assert_eq!(as_stored(&back).unwrap(), back);
        }

        /// Sharing names between rows changes no value read.
        #[test]
        fn rows_read_together_read_as_each_alone(rs in proptest::collection::vec(request(), 1..8)) {
            let rows: Vec<RequestRow> = rs.iter().map(RequestRow::from).collect();
            let alone: Vec<Request> =
                rows.iter().map(|r| r.clone().into_request().unwrap()).collect();
            let together: Vec<Request> = into_requests(rows).map(Result::unwrap).collect();
            prop_assert_eq!(together, alone);
        }
    }

    /// Rows read together hold one copy of a resource's name, of an
    /// approver's address across their grants and approvals, and of a
    /// requester's own.
    #[test]
    fn rows_read_together_share_names() {
        let at = datetime!(2026-11-28 12:00 UTC);
        let boss = Email::parse("boss@x.test").unwrap();
        let approver = Actor::User(boss.clone());
        let active = |email: &str| {
            let email = Email::parse(email).unwrap();
            Request {
                requested_by: Actor::User(email.clone()),
                email,
                state: State::Active(Grant {
                    approved_by: approver.clone(),
                    approved_at: at,
                    starts_at: None,
                    expires_at: at + time::Duration::hours(1),
                }),
                approvals: vec![Approval {
                    by: boss.clone(),
                    at,
                }],
                ..pending(at)
            }
        };
        let rows = [active("a@x.test"), active("b@x.test")].map(|r| RequestRow::from(&r));
        let [a, b]: [Request; 2] = into_requests(rows)
            .map(Result::unwrap)
            .collect::<Vec<_>>()
            .try_into()
            .unwrap();
        let same = |x: &str, y: &str| std::ptr::eq(x, y);
        assert!(same(a.resource.as_str(), b.resource.as_str()));
        let approved_by = |r: &Request| match &r.state.grant().unwrap().approved_by {
            Actor::User(e) => e.as_str().as_ptr(),
            other => panic!("{other:?}"),
        };
        assert_eq!(approved_by(&a), approved_by(&b));
        assert_eq!(a.approvals[0].by.as_str().as_ptr(), approved_by(&a));
        match &a.requested_by {
            Actor::User(e) => assert!(same(e.as_str(), a.email.as_str())),
            other => panic!("{other:?}"),
        }
        // Read alone, each holds its own.
        let [a, b] = [&a, &b].map(|r| RequestRow::from(r).into_request().unwrap());
        assert!(!same(a.resource.as_str(), b.resource.as_str()));
    }

    fn pending(at: OffsetDateTime) -> Request {
        Request {
            id: RequestId::new(),
            resource: ResourceName::default(),
            email: Email::parse("a@x.test").unwrap(),
            ask: Ask::default(),
            requested_at: at,
            requested_by: Actor::System,
            state: State::Pending,
            approvals: Vec::new(),
            extension: None,
            extensions: 0,
            comment: None,
        }
    }

    #[test]
    fn whole_millisecond_times_round_trip_exactly() {
        let at = datetime!(2026-11-28 12:00:00.123 UTC);
        let r = Request {
            state: State::Rejected {
                by: Actor::System,
                at,
            },
            ..pending(at)
        };
        assert_eq!(as_stored(&r).unwrap(), r);
    }

    #[test]
    fn corrupt_rows_name_the_column() {
        let r = pending(datetime!(2026-11-28 12:00 UTC));
        let mut row = RequestRow::from(&r);
        row.status = "active".into();
        match row.clone().into_request() {
            Err(StoreError::Corrupt {
                column: "approved_by",
                value,
                ..
            }) => assert_eq!(value, "NULL"),
            other => panic!("{other:?}"),
        }
        row.status = "pending".into();
        row.requested_by = "root".into();
        match row.into_request() {
            Err(StoreError::Corrupt {
                column: "requested_by",
                value,
                ..
            }) => assert_eq!(value, "root"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn corrupt_new_columns_are_named_too() {
        let good = RequestRow::from(&pending(datetime!(2026-11-28 12:00 UTC)));
        type Edit = fn(&mut RequestRow);
        let edits: [(&str, Edit); 7] = [
            ("resource", |r| r.resource = "Prod DB".into()),
            ("requested_duration", |r| r.requested_duration = Some(0)),
            ("ticket", |r| r.ticket = Some("a\u{7}".into())),
            ("approvals", |r| r.approvals = "[{\"by\":\"x\"}]".into()),
            ("approvals", |r| {
                r.approvals = r#"[{"by":"not an email","at":0}]"#.into();
            }),
            ("extension", |r| {
                r.extension = Some(r#"{"duration":0,"reason":null,"asked_at":0}"#.into());
            }),
            ("extensions", |r| r.extensions = -1),
        ];
        for (column, edit) in edits {
            let mut row = good.clone();
            edit(&mut row);
            match row.into_request() {
                Err(StoreError::Corrupt { column: c, .. }) => assert_eq!(c, column),
                other => panic!("{column}: {other:?}"),
            }
        }
    }
}
