//! PPL `date` values: reading what people and tools write, writing one canonical form.

use std::fmt;

use time::format_description::BorrowedFormatItem;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// How `date` values without an offset are read (by the JIT decoder and the evaluator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// The offset assumed for dates written without one, such as the docs' example
    /// `2150-01-02T16:20:00`. Defaults to UTC. Which zone Pomerium Zero/Enterprise applies
    /// to such dates is **unconfirmed** (the matcher is closed source), hence configurable.
    pub naive_offset: UtcOffset,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            naive_offset: UtcOffset::UTC,
        }
    }
}

/// `2150-01-02T16:20:00`, optionally with a fraction; no offset.
const NAIVE: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]");

/// Reads an RFC 3339 date (any offset, optional fraction) or an offset-less
/// `YYYY-MM-DDTHH:MM:SS[.fff]`, which is read at `options.naive_offset`.
pub(crate) fn parse(text: &str, options: &DecodeOptions) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok().or_else(|| {
        PrimitiveDateTime::parse(text, NAIVE)
            .ok()
            .map(|naive| naive.assume_offset(options.naive_offset))
    })
}

/// Writes the one form this crate emits, RFC 3339 with `Z` (`2026-11-28T15:04:05Z`), for
/// an instant the caller has already made UTC, whole-second and of a four-digit year.
pub(crate) fn write_canonical(utc: OffsetDateTime, out: &mut impl fmt::Write) -> fmt::Result {
    let (year, month, day) = utc.to_calendar_date();
    let (hour, minute, second) = utc.to_hms();
    write!(
        out,
        "{year:04}-{:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z",
        u8::from(month)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{datetime, offset};

    #[test]
    fn reads_rfc3339_and_naive_dates() {
        let utc = DecodeOptions::default();
        let cases = [
            ("2026-11-28T15:04:05Z", datetime!(2026-11-28 15:04:05 UTC)),
            (
                "2026-11-28T15:04:05.25Z",
                datetime!(2026-11-28 15:04:05.25 UTC),
            ),
            (
                "2026-11-28T16:04:05+01:00",
                datetime!(2026-11-28 15:04:05 UTC),
            ),
            ("2150-01-02T16:20:00", datetime!(2150-01-02 16:20:00 UTC)),
            (
                "2150-01-02T16:20:00.5",
                datetime!(2150-01-02 16:20:00.5 UTC),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text, &utc), Some(want), "{text}");
        }
        let berlin = DecodeOptions {
            naive_offset: offset!(+1),
        };
        assert_eq!(
            parse("2150-01-02T16:20:00", &berlin),
            Some(datetime!(2150-01-02 15:20:00 UTC))
        );
        // An explicit offset is never overridden by the option.
        assert_eq!(
            parse("2150-01-02T16:20:00Z", &berlin),
            Some(datetime!(2150-01-02 16:20:00 UTC))
        );
    }

    #[test]
    fn rejects_other_shapes() {
        for text in [
            "",
            "2150-01-02",
            "2150-01-02T16:20",
            "2150-01-02 16:20:00",
            "tomorrow",
            "2150-13-02T16:20:00Z",
            "1767225600",
        ] {
            assert_eq!(parse(text, &DecodeOptions::default()), None, "{text}");
        }
    }

    #[test]
    fn writes_the_go_form() {
        let mut out = String::new();
        write_canonical(datetime!(0987-01-02 03:04:05 UTC), &mut out).unwrap();
        assert_eq!(out, "0987-01-02T03:04:05Z");
        out.clear();
        write_canonical(datetime!(2026-11-28 15:04:05 UTC), &mut out).unwrap();
        assert_eq!(out, "2026-11-28T15:04:05Z");
    }
}
