//! History people can read.
//!
//! - `GET /admin/history`: everyone's, for approvers; `GET /history`: your
//!   own. Both filter by `person` (approvers only), `resource`, `action`,
//!   `from` and `to`, show a timeline of the grants held, and page the
//!   events newest first, [`PAGE`] at a time (`?before=<seq>` older,
//!   `?after=<seq>` newer).
//! - `GET /admin/history.csv`, `/admin/history.jsonl`: every event the
//!   filters select, oldest first, as a download.
//! - `GET /admin/history/timeline.svg`: the timeline as an image.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use jit_domain::{Action, Actor, Request, ResourceName, State as RequestState};
use jit_service::{Caller, HistoryCursor, HistoryEntry, HistoryFilter, Whose};
use time::macros::format_description;
use time::{Duration, OffsetDateTime};

use super::{Chrome, sentence_case};
use crate::auth::SignedIn;
use crate::export::{self, Edge};
use crate::input::{Input, Params, optional_email};
use crate::text::Breakable;
use crate::timeline::{self, Outcome, Placement, Window};
use crate::when::When;
use crate::{AppState, WebError};

/// Events per page.
const PAGE: usize = 50;
/// Most events one download holds; a wider range must be narrowed.
const EXPORT_MAX: usize = 50_000;
/// Most grants one timeline draws.
const TIMELINE_GRANTS: usize = 2_000;
/// The timeline's span when the filters give no start.
const DEFAULT_SPAN: Duration = Duration::days(7);

/// The filters and the page, from the query string.
#[derive(Debug)]
pub(crate) struct HistoryParams {
    filter: HistoryFilter,
    cursor: HistoryCursor,
    /// The filters as given (trimmed), for the form and for links.
    given: Vec<(&'static str, String)>,
}

#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct RawHistoryParams {
    person: Option<String>,
    resource: Option<String>,
    action: Option<String>,
    from: Option<String>,
    to: Option<String>,
    before: Option<String>,
    after: Option<String>,
}

impl Input for HistoryParams {
    type Raw = RawHistoryParams;
    fn parse(raw: RawHistoryParams) -> Result<Self, WebError> {
        let given: Vec<(&'static str, String)> = [
            ("person", &raw.person),
            ("resource", &raw.resource),
            ("action", &raw.action),
            ("from", &raw.from),
            ("to", &raw.to),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((k, present(v)?)))
        .collect();
        let filter = filter(&raw.person, &raw.resource, &raw.action, &raw.from, &raw.to)?;
        let seq = |field: &'static str, v: String| {
            v.parse::<u64>().map_err(|_| {
                WebError::field(
                    field,
                    "it must be an event number, as in the page's Newer and Older links",
                )
            })
        };
        let cursor = match (present(&raw.before), present(&raw.after)) {
            (Some(_), Some(_)) => {
                return Err(WebError::field(
                    "after",
                    "give `before` (older events) or `after` (newer events), not both",
                ));
            }
            (Some(b), None) => HistoryCursor::Before(seq("before", b)?),
            (None, Some(a)) => HistoryCursor::After(seq("after", a)?),
            (None, None) => HistoryCursor::Newest,
        };
        Ok(HistoryParams {
            filter,
            cursor,
            given,
        })
    }
}

/// The filters every history takes (and the JSON API's lists): each
/// optional, each wrong one named.
pub(crate) fn filter(
    person: &Option<String>,
    resource: &Option<String>,
    action_given: &Option<String>,
    from: &Option<String>,
    to: &Option<String>,
) -> Result<HistoryFilter, WebError> {
    let from = present(from)
        .map(|v| instant("from", &v, Edge::Start))
        .transpose()?;
    let to = present(to)
        .map(|v| instant("to", &v, Edge::End))
        .transpose()?;
    if let (Some(f), Some(t)) = (from, to)
        && f >= t
    {
        return Err(WebError::field(
            "to",
            "it must be after `from`; leave it empty for no end",
        ));
    }
    Ok(HistoryFilter {
        person: optional_email("person", person.clone())?,
        resources: present(resource)
            .map(|v| {
                ResourceName::parse(&v).map(|r| vec![r]).map_err(|e| {
                    WebError::field(
                        "resource",
                        format!("{e}; write a resource's name, such as `default`"),
                    )
                })
            })
            .transpose()?,
        action: present(action_given).map(|v| action(&v)).transpose()?,
        from,
        to,
    })
}

/// The trimmed value, unless absent or blank.
pub(crate) fn present(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn action(value: &str) -> Result<Action, WebError> {
    value.parse::<Action>().map_err(|_| {
        let known: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        WebError::field(
            "action",
            format!(
                "`{value}` is not an action; write one of {}",
                known.join(", ")
            ),
        )
    })
}

/// A date (`2026-11-30`), a UTC time (`2026-11-30T14:00`) or an RFC 3339
/// instant, as [`export::parse_instant`] reads it.
fn instant(field: &'static str, value: &str, edge: Edge) -> Result<OffsetDateTime, WebError> {
    export::parse_instant(value, edge).ok_or_else(|| {
        WebError::field(
            field,
            format!(
                "`{value}` is not a date or time; write a date as 2026-11-30, or a time in UTC as 2026-11-30T14:00"
            ),
        )
    })
}

super::html_pages!(HistoryPage);

#[derive(Debug, Template)]
#[template(path = "history.html")]
pub(crate) struct HistoryPage {
    chrome: Chrome,
    /// Everyone's history (with the person filter and downloads), or the
    /// caller's own.
    everyone: bool,
    /// Where the filter form goes.
    path: &'static str,
    form: FormValues,
    resources: Vec<Choice>,
    actions: Vec<Choice>,
    filtered: bool,
    /// The timeline's SVG markup, shown as is: [`timeline::svg`] escapes
    /// every text it holds.
    timeline: String,
    rows: Vec<Row>,
    newer: Option<String>,
    older: Option<String>,
    /// The downloads and the timeline file, with the same filters.
    csv: String,
    jsonl: String,
    svg: String,
}

/// The filters as given, shown back in the form.
#[derive(Debug, Default)]
struct FormValues {
    person: String,
    from: String,
    to: String,
}

/// An option of a `<select>`.
#[derive(Debug)]
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

#[derive(Debug)]
struct Row {
    seq: u64,
    when: When,
    actor: Breakable,
    /// The kind, for styling.
    action: &'static str,
    word: String,
    subject: Breakable,
    resource: String,
    details: Vec<(String, String)>,
}

pub(crate) async fn admin_page(
    State(app): State<AppState>,
    SignedIn(caller): SignedIn,
    Params(params): Params<HistoryParams>,
) -> Result<HistoryPage, WebError> {
    page(&app, &caller, Whose::Everyone, params).await
}

pub(crate) async fn own_page(
    State(app): State<AppState>,
    SignedIn(caller): SignedIn,
    Params(params): Params<HistoryParams>,
) -> Result<HistoryPage, WebError> {
    if params.filter.person.is_some() {
        return Err(WebError::field(
            "person",
            "this page shows only your own history; approvers see anyone's at /admin/history",
        ));
    }
    page(&app, &caller, Whose::Own, params).await
}

async fn page(
    app: &AppState,
    caller: &Caller,
    whose: Whose,
    params: HistoryParams,
) -> Result<HistoryPage, WebError> {
    let service = &app.service;
    let history = service
        .history(caller, whose, params.filter.clone(), params.cursor, PAGE)
        .await?;
    let now = OffsetDateTime::now_utc();
    let (path, section) = match whose {
        Whose::Everyone => ("/admin/history", "history"),
        Whose::Own => ("/history", "own-history"),
    };
    let timeline = timeline_svg(app, caller, whose, &params.filter, now, Placement::Inline).await?;
    let link = |base: &str, cursor: HistoryCursor| {
        let mut pairs = params.given.clone();
        match cursor {
            HistoryCursor::Before(s) => pairs.push(("before", s.to_string())),
            HistoryCursor::After(s) => pairs.push(("after", s.to_string())),
            HistoryCursor::Newest => {}
        }
        with_query(base, &pairs)
    };
    let given = |k: &str| {
        params
            .given
            .iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    Ok(HistoryPage {
        chrome: Chrome::signed_in(app, caller, section),
        everyone: whose == Whose::Everyone,
        path,
        form: FormValues {
            person: given("person"),
            from: given("from"),
            to: given("to"),
        },
        resources: resource_choices(app, &given("resource")),
        actions: Action::ALL
            .iter()
            .map(|a| Choice {
                value: a.as_str().to_owned(),
                label: sentence_case(a.word()),
                selected: params.filter.action == Some(*a),
            })
            .collect(),
        filtered: !params.given.is_empty(),
        timeline,
        rows: history.entries.iter().map(|e| Row::of(e, now)).collect(),
        newer: history.newer.map(|c| link(path, c)),
        older: history.older.map(|c| link(path, c)),
        csv: link("/admin/history.csv", HistoryCursor::Newest),
        jsonl: link("/admin/history.jsonl", HistoryCursor::Newest),
        svg: link("/admin/history/timeline.svg", HistoryCursor::Newest),
    })
}

/// Every configured resource by title, and the one asked for if it is no
/// longer configured (its history remains).
fn resource_choices(app: &AppState, asked: &str) -> Vec<Choice> {
    let mut choices: Vec<Choice> = app
        .service
        .resources()
        .map(|r| Choice {
            value: r.name.to_string(),
            label: r.title.clone(),
            selected: r.name.as_str() == asked,
        })
        .collect();
    if !asked.is_empty() && !choices.iter().any(|c| c.selected) {
        choices.push(Choice {
            value: asked.to_owned(),
            label: asked.to_owned(),
            selected: true,
        });
    }
    choices
}

/// `path?query`, or `path` alone when there is nothing to ask.
fn with_query(path: &str, pairs: &[(&str, String)]) -> String {
    let query = serde_urlencoded::to_string(pairs).unwrap_or_default();
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    }
}

/// `GET /admin/history.csv`.
pub(crate) async fn csv(
    State(app): State<AppState>,
    SignedIn(caller): SignedIn,
    Params(params): Params<HistoryParams>,
) -> Result<Response, WebError> {
    let entries = export_entries(&app, &caller, params.filter).await?;
    Ok(download(
        "text/csv; charset=utf-8",
        "csv",
        export::csv(&entries),
    ))
}

/// `GET /admin/history.jsonl`.
pub(crate) async fn jsonl(
    State(app): State<AppState>,
    SignedIn(caller): SignedIn,
    Params(params): Params<HistoryParams>,
) -> Result<Response, WebError> {
    let entries = export_entries(&app, &caller, params.filter).await?;
    Ok(download(
        "application/jsonl; charset=utf-8",
        "jsonl",
        export::jsonl(&entries),
    ))
}

pub(crate) async fn export_entries(
    app: &AppState,
    caller: &Caller,
    filter: HistoryFilter,
) -> Result<Vec<HistoryEntry>, WebError> {
    app.service
        .history_export(caller, Whose::Everyone, filter, EXPORT_MAX)
        .await?
        .ok_or_else(|| {
            WebError::field(
                "from",
                format!(
                    "the filters select more than {EXPORT_MAX} events, too many for one file; \
                     download a shorter range (set `from` and `to`) at a time"
                ),
            )
        })
}

/// An attachment named `pomerium-jit-history-<now>.<extension>`.
pub(crate) fn download(content_type: &'static str, extension: &str, body: String) -> Response {
    let stamp = OffsetDateTime::now_utc()
        .format(format_description!(
            "[year]-[month]-[day]T[hour][minute][second]Z"
        ))
        .unwrap_or_default();
    let disposition = format!("attachment; filename=\"pomerium-jit-history-{stamp}.{extension}\"");
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition)
                    .unwrap_or_else(|_| HeaderValue::from_static("attachment")),
            ),
        ],
        body,
    )
        .into_response()
}

/// `GET /admin/history/timeline.svg`.
pub(crate) async fn timeline_file(
    State(app): State<AppState>,
    SignedIn(caller): SignedIn,
    Params(params): Params<HistoryParams>,
) -> Result<Response, WebError> {
    let now = OffsetDateTime::now_utc();
    let svg = timeline_svg(
        &app,
        &caller,
        Whose::Everyone,
        &params.filter,
        now,
        Placement::File,
    )
    .await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("image/svg+xml; charset=utf-8"),
        )],
        svg,
    )
        .into_response())
}

/// The timeline over the filters' range: `from` (else [`DEFAULT_SPAN`]
/// before the end) to `to` (else now, or [`DEFAULT_SPAN`] after a `from`
/// that is still to come).
async fn timeline_svg(
    app: &AppState,
    caller: &Caller,
    whose: Whose,
    filter: &HistoryFilter,
    now: OffsetDateTime,
    placement: Placement,
) -> Result<String, WebError> {
    let to = filter.to.unwrap_or_else(|| match filter.from {
        Some(from) if from >= now => from + DEFAULT_SPAN,
        _ => now,
    });
    let from = filter.from.unwrap_or(to - DEFAULT_SPAN);
    let range = HistoryFilter {
        from: Some(from),
        to: Some(to),
        ..filter.clone()
    };
    let grants = app
        .service
        .grant_history(caller, whose, range, TIMELINE_GRANTS)
        .await?;
    let windows: Vec<Window> = grants.iter().filter_map(window).collect();
    Ok(timeline::svg(&windows, from, to, now, placement))
}

/// A request's grant as the timeline draws it; `None` if it had none.
fn window(r: &Request) -> Option<Window> {
    let g = r.state.grant()?;
    let start = g.starts_at.unwrap_or(g.approved_at);
    let (end, outcome, ended) = match &r.state {
        RequestState::Active(_) => (g.expires_at, Outcome::Active, "until".to_owned()),
        RequestState::Expired(_) => (g.expires_at, Outcome::Expired, "expired".to_owned()),
        RequestState::Revoked { by, at, .. } if *by == Actor::User(r.email.clone()) => {
            (*at, Outcome::GaveBack, "given back".to_owned())
        }
        RequestState::Revoked { by, at, .. } => {
            (*at, Outcome::Revoked, format!("revoked by {}", by.label()))
        }
        RequestState::Pending | RequestState::Rejected { .. } | RequestState::Cancelled { .. } => {
            return None;
        }
    };
    let label = format!(
        "{} on {}: from {} to {} ({ended}); approved by {}",
        r.email,
        r.resource,
        stamp(start),
        stamp(end),
        g.approved_by.label()
    );
    Some(Window {
        group: r.resource.to_string(),
        row: r.email.to_string(),
        start,
        end,
        outcome,
        label,
    })
}

fn stamp(t: OffsetDateTime) -> String {
    When::new(t, t).abs
}

impl Row {
    fn of(entry: &HistoryEntry, now: OffsetDateTime) -> Row {
        let e = &entry.record.event;
        let details = match &e.details {
            serde_json::Value::Object(map) => map
                .iter()
                .map(|(k, v)| {
                    let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                    let text = When::parse(&text, now).map_or(text, |w| w.abs);
                    (sentence_case(k.strip_suffix("_at").unwrap_or(k)), text)
                })
                .collect(),
            serde_json::Value::Null => Vec::new(),
            other => vec![("Details".to_owned(), other.to_string())],
        };
        Row {
            seq: entry.record.seq,
            when: When::new(e.at, now),
            actor: Breakable(e.actor.label()),
            action: e.action.as_str(),
            word: sentence_case(e.action.word()),
            subject: Breakable(e.subject.to_string()),
            resource: entry.resource.to_string(),
            details,
        }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn parse(q: &str) -> Result<HistoryParams, WebError> {
        HistoryParams::parse(serde_urlencoded::from_str(q).unwrap())
    }

    fn field_of(q: &str) -> (&'static str, String) {
        match parse(q) {
            Err(WebError::Field { field, message }) => (field, message),
            other => panic!("{q}: {other:?}"),
        }
    }

    #[test]
    fn filters_parse_into_domain_values() {
        let p = parse(
            "person=+alice%40x.test+&resource=prod-db&action=gave-back&from=2026-11-30&to=2026-11-30T18:30&before=9",
        )
        .unwrap();
        assert_eq!(p.filter.person.unwrap().as_str(), "alice@x.test");
        assert_eq!(p.filter.resources.unwrap()[0].as_str(), "prod-db");
        assert_eq!(p.filter.action, Some(Action::GaveBack));
        assert_eq!(p.filter.from, Some(datetime!(2026-11-30 00:00 UTC)));
        assert_eq!(p.filter.to, Some(datetime!(2026-11-30 18:30 UTC)));
        assert_eq!(p.cursor, HistoryCursor::Before(9));
        let p = parse("person=&resource=+&after=3").unwrap();
        assert_eq!(p.filter, HistoryFilter::default());
        assert_eq!(p.cursor, HistoryCursor::After(3));
        assert!(p.given.is_empty());
    }

    #[test]
    fn dates_mean_whole_days_and_times_are_utc() {
        let to = |v: &str| parse(&format!("to={v}")).unwrap().filter.to.unwrap();
        assert_eq!(to("2026-11-30"), datetime!(2026-12-01 00:00 UTC));
        assert_eq!(
            to("2026-11-30 14:05:06"),
            datetime!(2026-11-30 14:05:06 UTC)
        );
        assert_eq!(
            to("2026-11-30T15:05:00%2B01:00"),
            datetime!(2026-11-30 14:05 UTC)
        );
    }

    #[test]
    fn bad_input_names_its_field_and_says_what_to_write() {
        let (field, message) = field_of("from=yesterday");
        assert_eq!(field, "from");
        assert!(message.contains("write a date as 2026-11-30"), "{message}");
        let (field, message) = field_of("action=deleted");
        assert_eq!(field, "action");
        assert!(message.contains("requested, approved"), "{message}");
        assert_eq!(field_of("person=nobody").0, "person");
        assert_eq!(field_of("resource=Prod%20DB").0, "resource");
        assert_eq!(field_of("to=2026-13-01").0, "to");
        let (field, message) = field_of("from=2026-11-30&to=2026-11-29");
        assert_eq!(field, "to");
        assert!(message.contains("after `from`"), "{message}");
        assert_eq!(field_of("before=x").0, "before");
        assert_eq!(field_of("before=3&after=1").0, "after");
    }
}
