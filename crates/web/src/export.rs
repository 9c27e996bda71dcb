//! History as files: CSV for spreadsheets and JSON lines for tools, one
//! event per line, oldest first, with the same fields as `audit export`
//! plus the resource.

use jit_service::HistoryEntry;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, Duration, OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// The exact instant, in UTC, as `audit export` writes it.
fn instant(at: OffsetDateTime) -> String {
    // Stored times are within years 1..=9999, which always format.
    at.format(&Rfc3339).unwrap_or_else(|_| at.to_string())
}

/// Which end of a range a date stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// A date means its first moment.
    Start,
    /// A date means the end of that day, so `to=2026-11-30` includes it.
    End,
}

/// A filter's `from` or `to`: a date (`2026-11-30`, the whole day), a UTC
/// time (`2026-11-30T14:00`, seconds optional, `T` or a space) or an RFC
/// 3339 instant with its offset; `None` if it is none of these.
pub fn parse_instant(value: &str, edge: Edge) -> Option<OffsetDateTime> {
    let normal = value.replacen(' ', "T", 1);
    let date = Date::parse(&normal, format_description!("[year]-[month]-[day]"))
        .ok()
        .map(|d| match edge {
            Edge::Start => d.midnight().assume_utc(),
            Edge::End => d.midnight().assume_utc() + Duration::DAY,
        });
    let local = || {
        [
            format_description!("[year]-[month]-[day]T[hour]:[minute]"),
            format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
        ]
        .into_iter()
        .find_map(|f| PrimitiveDateTime::parse(&normal, &f).ok())
        .map(PrimitiveDateTime::assume_utc)
    };
    let exact = || {
        OffsetDateTime::parse(&normal, &Rfc3339)
            .ok()
            .map(|t| t.to_offset(UtcOffset::UTC))
    };
    date.or_else(local).or_else(exact)
}

/// The CSV columns, in order.
const COLUMNS: [&str; 9] = [
    "seq",
    "at",
    "actor",
    "action",
    "subject",
    "resource",
    "request_id",
    "details",
    "hash",
];

/// RFC 4180 CSV with a header row and CRLF line ends. A cell that a
/// spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, a
/// tab or a carriage return) is prefixed with `'`, so a reason such as
/// `=HYPERLINK(…)` is shown as text, never evaluated.
pub fn csv(entries: &[HistoryEntry]) -> String {
    let mut out = String::new();
    line(&mut out, COLUMNS.iter().copied());
    for entry in entries {
        let (r, e) = (&entry.record, &entry.record.event);
        line(
            &mut out,
            [
                r.seq.to_string().as_str(),
                &instant(e.at),
                &e.actor.to_string(),
                e.action.as_str(),
                e.subject.as_str(),
                entry.resource.as_str(),
                &e.request_id.to_string(),
                &e.details.to_string(),
                &r.hash,
            ],
        );
    }
    out
}

fn line<'a>(out: &mut String, cells: impl IntoIterator<Item = &'a str>) {
    for (i, c) in cells.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&cell(c));
    }
    out.push_str("\r\n");
}

/// One CSV cell: defused if it could be a formula, quoted if it holds a
/// separator, a quote, a line break or edge spaces.
fn cell(value: &str) -> String {
    let defused;
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        defused = format!("'{value}");
        defused.as_str()
    } else {
        value
    };
    let needs_quotes =
        value.contains([',', '"', '\n', '\r']) || value.starts_with(' ') || value.ends_with(' ');
    if needs_quotes {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// One event as JSON: a line of the JSON lines download, an item of the
/// API's history.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct EventJson {
    /// Its place in the audit trail.
    seq: u64,
    at: String,
    /// `user:<email>`, `system` or `zero`.
    actor: String,
    action: &'static str,
    /// Whose access it is about.
    subject: String,
    resource: String,
    request_id: String,
    #[schema(value_type = Object)]
    details: serde_json::Value,
    hash: String,
}

impl EventJson {
    pub(crate) fn of(entry: &HistoryEntry) -> EventJson {
        let (r, e) = (&entry.record, &entry.record.event);
        EventJson {
            seq: r.seq,
            at: instant(e.at),
            actor: e.actor.to_string(),
            action: e.action.as_str(),
            subject: e.subject.to_string(),
            resource: entry.resource.to_string(),
            request_id: e.request_id.to_string(),
            details: e.details.clone(),
            hash: r.hash.clone(),
        }
    }
}

/// JSON lines: one object per event, newline-terminated.
pub fn jsonl(entries: &[HistoryEntry]) -> String {
    let mut out = String::new();
    for entry in entries {
        // A struct of strings, numbers and a JSON value always serializes.
        out.push_str(&serde_json::to_string(&EventJson::of(entry)).unwrap_or_default());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use jit_domain::{Action, Actor, AuditEvent, Email, RequestId, ResourceName};
    use jit_service::AuditRecord;
    use serde_json::json;
    use time::macros::datetime;

    use super::*;

    fn entry(details: serde_json::Value) -> HistoryEntry {
        HistoryEntry {
            record: AuditRecord {
                seq: 7,
                event: AuditEvent {
                    at: datetime!(2026-11-30 14:05:06.789 UTC),
                    actor: Actor::User(Email::parse("carol@x.test").unwrap()),
                    action: Action::Approved,
                    subject: Email::parse("alice@x.test").unwrap(),
                    request_id: "5f0c7c3e-8d52-4c1b-9a55-2f3a8f0e9b11"
                        .parse::<RequestId>()
                        .unwrap(),
                    details,
                },
                hash: "ab".repeat(32),
            },
            resource: ResourceName::parse("prod-db").unwrap(),
        }
    }

    #[test]
    fn cells_are_quoted_only_when_needed() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(cell(" edge"), "\" edge\"");
        assert_eq!(cell(""), "");
    }

    #[test]
    fn formulas_are_defused() {
        for (raw, shown) in [
            ("=1+1", "'=1+1"),
            ("+SUM(A1)", "'+SUM(A1)"),
            ("-2", "'-2"),
            ("@cmd", "'@cmd"),
            ("\t=x", "'\t=x"),
            (
                "=HYPERLINK(\"http://evil\",\"x\")",
                "\"'=HYPERLINK(\"\"http://evil\"\",\"\"x\"\")\"",
            ),
        ] {
            assert_eq!(cell(raw), shown, "{raw}");
        }
        assert_eq!(cell("a=b"), "a=b", "only a leading sign is a formula");
    }

    #[test]
    fn csv_has_a_header_and_one_crlf_line_per_event() {
        let e = entry(json!({ "reason": "=cmd|' /C calc'!A0", "duration": "1h" }));
        let out = csv(&[e.clone(), e]);
        let lines: Vec<&str> = out.split_terminator("\r\n").collect();
        assert_eq!(
            lines[0],
            "seq,at,actor,action,subject,resource,request_id,details,hash"
        );
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[1],
            format!(
                "7,2026-11-30T14:05:06.789Z,user:carol@x.test,approved,alice@x.test,prod-db,\
                 5f0c7c3e-8d52-4c1b-9a55-2f3a8f0e9b11,\
                 \"{{\"\"reason\"\":\"\"=cmd|' /C calc'!A0\"\",\"\"duration\"\":\"\"1h\"\"}}\",{}",
                "ab".repeat(32)
            )
        );
    }

    #[test]
    fn json_lines_parse_back_one_object_per_line() {
        let out = jsonl(&[entry(json!({ "reason": "line\nbreak" })), entry(json!({}))]);
        assert!(out.ends_with('\n'));
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["reason"], serde_json::Value::Null);
        assert_eq!(lines[0]["details"]["reason"], "line\nbreak");
        assert_eq!(lines[0]["resource"], "prod-db");
        assert_eq!(lines[0]["at"], "2026-11-30T14:05:06.789Z");
        assert_eq!(lines[1]["seq"], 7);
    }
}
