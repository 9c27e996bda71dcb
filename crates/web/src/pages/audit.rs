//! `GET /admin/audit`: the audit trail, newest first, a page at a time
//! (`?before=<seq>`), optionally about one person (`?email=`), with the
//! latest check of the trail and when it ran (redone only when stale).

use askama::Template;
use axum::extract::State;
use jit_domain::Email;
use jit_service::{AuditCheck, AuditQuery, AuditRecord};
use time::OffsetDateTime;

use super::{Chrome, sentence_case};
use crate::auth::SignedIn;
use crate::input::{Input, Params, optional_email};
use crate::text::{Breakable, Excerpt};
use crate::when::When;
use crate::{AppState, WebError};

/// Events per page.
const PAGE: usize = 50;

super::html_pages!(AuditPage);

#[derive(Debug, Template)]
#[template(path = "audit.html")]
pub(crate) struct AuditPage {
    chrome: Chrome,
    filter: Option<String>,
    chain: Chain,
    rows: Vec<Row>,
    /// Links to the next older page and back to the newest, when useful.
    older: Option<String>,
    newest: Option<String>,
}

#[derive(Debug)]
struct Chain {
    /// When the trail was last checked.
    checked: When,
    state: ChainState,
}

#[derive(Debug)]
enum ChainState {
    Intact { verified: u64, requests: u64 },
    Broken { problem: String },
}

#[derive(Debug)]
struct Row {
    seq: u64,
    when: When,
    actor: Breakable,
    /// The kind, for styling.
    action: &'static str,
    /// What the actor did, in words: "Withdrew", "Gave back".
    word: String,
    subject: Breakable,
    details: Vec<Detail>,
    request_id: String,
}

/// One entry of an event's details, labelled for people.
#[derive(Debug, PartialEq, Eq)]
struct Detail {
    label: String,
    value: Value,
}

#[derive(Debug, PartialEq, Eq)]
enum Value {
    Time(When),
    /// Free text, cut to an excerpt when long.
    Text(Excerpt),
}

impl Detail {
    fn of(key: &str, value: &serde_json::Value, now: OffsetDateTime) -> Detail {
        let text = value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_owned);
        let value = match When::parse(&text, now) {
            Some(at) => Value::Time(at),
            None => Value::Text(Excerpt::of(&text)),
        };
        Detail {
            label: label(key),
            value,
        }
    }
}

/// A details key as people read it: `expires_at` is "Expires".
fn label(key: &str) -> String {
    match key {
        "expires_at" => "Expires".to_owned(),
        "starts_at" => "Starts".to_owned(),
        "duration" => "Duration".to_owned(),
        "reason" => "Reason".to_owned(),
        "source" => "Source".to_owned(),
        other => sentence_case(other.strip_suffix("_at").unwrap_or(other)),
    }
}

/// `?email=` and `?before=`.
#[derive(Debug)]
pub(crate) struct AuditParams {
    email: Option<Email>,
    before: Option<u64>,
}

#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct RawAuditParams {
    email: Option<String>,
    before: Option<String>,
}

impl Input for AuditParams {
    type Raw = RawAuditParams;
    fn parse(raw: RawAuditParams) -> Result<Self, WebError> {
        let before = raw
            .before
            .filter(|b| !b.trim().is_empty())
            .map(|b| {
                b.trim()
                    .parse::<u64>()
                    .map_err(|_| WebError::field("before", "it must be an event number"))
            })
            .transpose()?;
        Ok(AuditParams {
            email: optional_email("email", raw.email)?,
            before,
        })
    }
}

pub(crate) async fn page(
    State(app): State<AppState>,
    SignedIn(admin): SignedIn,
    Params(params): Params<AuditParams>,
) -> Result<AuditPage, WebError> {
    let query = AuditQuery {
        subject: params.email.clone(),
        before: params.before,
        limit: PAGE + 1,
    };
    let mut records = app.service.audit_events(&admin, query).await?;
    let check = app.service.audit_check(&admin).await?;
    let more = records.len() > PAGE;
    records.truncate(PAGE);
    let now = OffsetDateTime::now_utc();
    let link = |before: Option<u64>| {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if let Some(e) = &params.email {
            pairs.push(("email", e.to_string()));
        }
        if let Some(b) = before {
            pairs.push(("before", b.to_string()));
        }
        let query = serde_urlencoded::to_string(pairs).unwrap_or_default();
        if query.is_empty() {
            "/admin/audit".to_owned()
        } else {
            format!("/admin/audit?{query}")
        }
    };
    Ok(AuditPage {
        chrome: Chrome::signed_in(&app, &admin, "audit"),
        filter: params.email.as_ref().map(Email::to_string),
        chain: Chain::of(&check, now),
        older: records
            .last()
            .filter(|_| more)
            .map(|last| link(Some(last.seq))),
        newest: params.before.map(|_| link(None)),
        rows: records.iter().map(|r| Row::of(r, now)).collect(),
    })
}

impl Chain {
    fn of(check: &AuditCheck, now: OffsetDateTime) -> Chain {
        let report = &check.report;
        Chain {
            checked: When::new(check.at, now),
            state: match report.problem() {
                None => ChainState::Intact {
                    verified: report.verified,
                    requests: report.requests_checked,
                },
                Some(problem) => ChainState::Broken { problem },
            },
        }
    }
}

impl Row {
    fn of(record: &AuditRecord, now: OffsetDateTime) -> Row {
        let e = &record.event;
        let details = match &e.details {
            serde_json::Value::Object(map) => {
                map.iter().map(|(k, v)| Detail::of(k, v, now)).collect()
            }
            serde_json::Value::Null => Vec::new(),
            other => vec![Detail::of("details", other, now)],
        };
        Row {
            seq: record.seq,
            when: When::new(e.at, now),
            actor: Breakable(e.actor.label()),
            action: e.action.as_str(),
            word: sentence_case(e.action.word()),
            subject: Breakable(e.subject.to_string()),
            details,
            request_id: e.request_id.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn details_read_as_labels_and_dated_times() {
        let now = datetime!(2026-11-30 23:00 UTC);
        let d = Detail::of("expires_at", &"2026-11-30T23:55:00Z".into(), now);
        assert_eq!(d.label, "Expires");
        let Value::Time(at) = d.value else {
            panic!("{d:?}")
        };
        assert_eq!(
            (at.abs.as_str(), at.rel.as_str()),
            ("2026-11-30 23:55 UTC", "in 55 min")
        );
        assert_eq!(label("duration"), "Duration");
        assert_eq!(label("reason"), "Reason");
        assert_eq!(label("source"), "Source");
        assert_eq!(label("ticket_url"), "Ticket url");
        assert_eq!(label("decided_at"), "Decided");
        let d = Detail::of("approvals", &serde_json::json!(2), now);
        assert_eq!(d.value, Value::Text(Excerpt::of("2")));
    }

    #[test]
    fn params_name_the_wrong_field() {
        let parse = |q: &str| AuditParams::parse(serde_urlencoded::from_str(q).unwrap());
        assert!(matches!(
            parse("before=abc"),
            Err(WebError::Field {
                field: "before",
                ..
            })
        ));
        assert!(matches!(
            parse("email=nope"),
            Err(WebError::Field { field: "email", .. })
        ));
        let p = parse("email=&before=").unwrap();
        assert!(p.email.is_none() && p.before.is_none());
        let p = parse("email=a%40b.c&before=7").unwrap();
        assert_eq!((p.email.unwrap().as_str(), p.before), ("a@b.c", Some(7)));
    }
}
