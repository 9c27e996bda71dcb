//! What every list of the API shares: the filters of the history page,
//! a `limit`, and opaque cursors. A cursor is the base64url of the last
//! row's sort key, tagged with the kind of list that gave it, so a cursor
//! from another list (or made up) is refused rather than misread.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jit_domain::{RequestId, Status};
use jit_service::{HistoryCursor, HistoryFilter, RequestCursor, RequestFilter};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::WebError;
use crate::input::Input;
use crate::pages::history::{filter, present};

/// Rows per page unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 50;
/// The most rows one page holds.
const MAX_LIMIT: usize = 200;

/// A page of a list: its items, newest first, and where the next one
/// starts.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` (with the same filters) for the next, older page;
    /// `null` on the last page.
    pub next: Option<String>,
}

/// The query of a list of requests.
#[derive(Debug, Default, serde::Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct RawRequestQuery {
    /// Only this person's requests (an email).
    person: Option<String>,
    /// Only requests for this resource (its name, such as `default`).
    resource: Option<String>,
    /// Only requests in this state: `pending`, `active`, `expired`,
    /// `revoked`, `rejected` or `cancelled`.
    status: Option<String>,
    /// Only requests asked from then on: a date (`2026-11-30`) or a UTC time
    /// (`2026-11-30T14:00`, or RFC 3339 with an offset).
    from: Option<String>,
    /// Only requests asked before then; a date means the end of that day.
    to: Option<String>,
    /// The `next` of the previous page.
    cursor: Option<String>,
    /// Rows per page, 1 to 200 (default 50).
    limit: Option<String>,
}

/// A list of requests: which, and which page.
#[derive(Debug)]
pub(crate) struct RequestQuery {
    pub filter: RequestFilter,
    pub after: Option<RequestCursor>,
    pub limit: usize,
}

impl Input for RequestQuery {
    type Raw = RawRequestQuery;
    fn parse(raw: RawRequestQuery) -> Result<Self, WebError> {
        let common = filter(&raw.person, &raw.resource, &None, &raw.from, &raw.to)?;
        let status = present(&raw.status)
            .map(|v| {
                v.parse::<Status>().map_err(|_| {
                    let known: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
                    WebError::field(
                        "status",
                        format!("`{v}` is not a status; write one of {}", known.join(", ")),
                    )
                })
            })
            .transpose()?;
        Ok(RequestQuery {
            filter: RequestFilter {
                person: common.person,
                resources: common.resources,
                status,
                from: common.from,
                to: common.to,
            },
            after: present(&raw.cursor)
                .map(|c| request_cursor(&c))
                .transpose()?,
            limit: limit(&raw.limit)?,
        })
    }
}

/// The query of a list of history events.
#[derive(Debug, Default, serde::Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct RawHistoryQuery {
    /// Only events about this person's access (an email).
    person: Option<String>,
    /// Only events about this resource (its name, such as `default`).
    resource: Option<String>,
    /// Only events of this action: `requested`, `approved`, `rejected`,
    /// `revoked`, `expired`, `cancelled`, `gave-back`, … as in exports.
    action: Option<String>,
    /// Only events from then on: a date (`2026-11-30`) or a UTC time
    /// (`2026-11-30T14:00`, or RFC 3339 with an offset).
    from: Option<String>,
    /// Only events before then; a date means the end of that day.
    to: Option<String>,
    /// The `next` of the previous page.
    cursor: Option<String>,
    /// Rows per page, 1 to 200 (default 50).
    limit: Option<String>,
}

/// A list of history events: which, and which page.
#[derive(Debug)]
pub(crate) struct HistoryQuery {
    pub filter: HistoryFilter,
    pub cursor: HistoryCursor,
    pub limit: usize,
}

impl Input for HistoryQuery {
    type Raw = RawHistoryQuery;
    fn parse(raw: RawHistoryQuery) -> Result<Self, WebError> {
        Ok(HistoryQuery {
            filter: filter(&raw.person, &raw.resource, &raw.action, &raw.from, &raw.to)?,
            cursor: present(&raw.cursor)
                .map(|c| history_cursor(&c))
                .transpose()?
                .unwrap_or_default(),
            limit: limit(&raw.limit)?,
        })
    }
}

/// The filters of an export: a list's without its page.
#[derive(Debug, Default, serde::Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct RawExportQuery {
    /// Only events about this person's access (an email).
    person: Option<String>,
    /// Only events about this resource.
    resource: Option<String>,
    /// Only events of this action, as in the list.
    action: Option<String>,
    /// Only events from then on.
    from: Option<String>,
    /// Only events before then.
    to: Option<String>,
    /// `jsonl` (JSON lines, the default) or `csv`.
    format: Option<String>,
}

/// An export: which events, in which format.
#[derive(Debug)]
pub(crate) struct ExportQuery {
    pub filter: HistoryFilter,
    pub csv: bool,
}

impl Input for ExportQuery {
    type Raw = RawExportQuery;
    fn parse(raw: RawExportQuery) -> Result<Self, WebError> {
        let csv = match present(&raw.format).as_deref() {
            None | Some("jsonl") => false,
            Some("csv") => true,
            Some(other) => {
                return Err(WebError::field(
                    "format",
                    format!("`{other}` is not a format; write jsonl or csv"),
                ));
            }
        };
        Ok(ExportQuery {
            filter: filter(&raw.person, &raw.resource, &raw.action, &raw.from, &raw.to)?,
            csv,
        })
    }
}

fn limit(value: &Option<String>) -> Result<usize, WebError> {
    let Some(v) = present(value) else {
        return Ok(DEFAULT_LIMIT);
    };
    v.parse::<usize>()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .ok_or_else(|| {
            WebError::field(
                "limit",
                format!("`{v}` is not a page size; write a whole number from 1 to {MAX_LIMIT}"),
            )
        })
}

const REQUESTS: &str = "r1";
const HISTORY: &str = "h1";

fn encode(kind: &str, key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{kind}:{key}"))
}

/// The key a cursor of `kind` holds, or why it is no cursor of that list.
fn decode(kind: &str, cursor: &str) -> Result<String, WebError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| WebError::Cursor)?;
    let text = String::from_utf8(bytes).map_err(|_| WebError::Cursor)?;
    text.strip_prefix(kind)
        .and_then(|rest| rest.strip_prefix(':'))
        .map(str::to_owned)
        .ok_or(WebError::Cursor)
}

pub(crate) fn next_request(cursor: RequestCursor) -> String {
    encode(REQUESTS, &format!("{}:{}", cursor.requested_at, cursor.id))
}

fn request_cursor(cursor: &str) -> Result<RequestCursor, WebError> {
    let key = decode(REQUESTS, cursor)?;
    let (at, id) = key.split_once(':').ok_or(WebError::Cursor)?;
    Ok(RequestCursor {
        requested_at: at.parse().map_err(|_| WebError::Cursor)?,
        id: id.parse::<RequestId>().map_err(|_| WebError::Cursor)?,
    })
}

/// Only older pages are offered: the API reads history newest first.
pub(crate) fn next_history(cursor: HistoryCursor) -> Option<String> {
    match cursor {
        HistoryCursor::Before(seq) => Some(encode(HISTORY, &seq.to_string())),
        HistoryCursor::Newest | HistoryCursor::After(_) => None,
    }
}

fn history_cursor(cursor: &str) -> Result<HistoryCursor, WebError> {
    let seq = decode(HISTORY, cursor)?
        .parse::<u64>()
        .map_err(|_| WebError::Cursor)?;
    Ok(HistoryCursor::Before(seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        let c = RequestCursor {
            requested_at: 1_764_500_000_123,
            id: RequestId::new(),
        };
        assert_eq!(request_cursor(&next_request(c)).unwrap(), c);
        let h = next_history(HistoryCursor::Before(42)).unwrap();
        assert_eq!(history_cursor(&h).unwrap(), HistoryCursor::Before(42));
        for bad in [
            "",
            "x",
            "!!!",
            &h,
            "cjE6MTIz",
            &encode(REQUESTS, "1:not-a-uuid"),
        ] {
            assert!(
                matches!(request_cursor(bad), Err(WebError::Cursor)),
                "{bad}"
            );
        }
        assert!(matches!(
            history_cursor(&next_request(c)),
            Err(WebError::Cursor)
        ));
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(limit(&None).unwrap(), DEFAULT_LIMIT);
        assert_eq!(limit(&Some("200".into())).unwrap(), 200);
        for bad in ["0", "201", "-1", "ten"] {
            assert!(
                matches!(
                    limit(&Some(bad.into())),
                    Err(WebError::Field { field: "limit", .. })
                ),
                "{bad}"
            );
        }
    }
}
