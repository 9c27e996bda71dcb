//! The one place times are formatted for people: the absolute UTC time,
//! always with the date ("2026-11-28 14:02 UTC"), a relative part ("3 min
//! ago", "in 54 min") and the exact RFC 3339 instant for `<time datetime>`
//! and tooltips. Time still to come is rounded up, so a grant with 1 min
//! 59 s left reads "in 2 min", never "in 1 min"; time gone by is rounded
//! down.

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// One instant, formatted for a page relative to the moment it is rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct When {
    /// "3 min ago", "in 54 min", "just now".
    pub rel: String,
    /// "2026-11-28 14:02 UTC", the same on every page and row.
    pub abs: String,
    /// RFC 3339 in UTC, for machines.
    pub iso: String,
}

impl When {
    pub fn new(at: OffsetDateTime, now: OffsetDateTime) -> When {
        let at = at.to_offset(UtcOffset::UTC);
        let now = now.to_offset(UtcOffset::UTC);
        When {
            rel: relative(at, now),
            abs: absolute(at),
            iso: rfc3339(at),
        }
    }

    /// An RFC 3339 text as stored in audit details, if it is one.
    pub fn parse(text: &str, now: OffsetDateTime) -> Option<When> {
        OffsetDateTime::parse(text, &Rfc3339)
            .ok()
            .map(|at| When::new(at, now))
    }
}

/// "2026-11-28 14:02 UTC, in 54 min": both parts in one line of text.
impl std::fmt::Display for When {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.abs, self.rel)
    }
}

/// RFC 3339 in UTC, whole seconds.
pub fn rfc3339(at: OffsetDateTime) -> String {
    let at = at
        .to_offset(UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(at);
    // Formatting fails only for years outside 0..=9999, which no stored time has.
    at.format(&Rfc3339).unwrap_or_else(|_| at.to_string())
}

/// "2026-11-28 14:02 UTC" (`at` in UTC), as a [`Stamp`] writes it.
pub(crate) fn absolute(at: OffsetDateTime) -> String {
    Stamp::of(at).as_str().to_owned()
}

/// [`absolute`]'s text where it is made, without an allocation, and drawn
/// as it is: digits, `-`, `:`, spaces and `UTC` need no escaping (the
/// index page shows the time on every page; its copy and its pass through
/// askama's escaper were 300 of `GET /`'s 49,000 instructions, callgrind).
#[derive(Debug)]
pub(crate) enum Stamp {
    /// Years 0 to 9999: every time stored.
    Usual([u8; 20]),
    Other(String),
}

impl Stamp {
    /// Every page shows the time it was drawn and the admin page one per
    /// row, so the digits are put in place rather than formatted (`format!`
    /// with padding was 2,400 instructions of `GET /`'s 70,000, callgrind).
    pub(crate) fn of(at: OffsetDateTime) -> Stamp {
        let Ok(year @ 0..=9999) = u32::try_from(at.year()) else {
            return Stamp::Other(formatted(at));
        };
        let mut text = *b"0000-00-00 00:00 UTC";
        let (date, time) = text.split_at_mut(11);
        put_digits(&mut date[0..4], year);
        put_digits(&mut date[5..7], u32::from(u8::from(at.month())));
        put_digits(&mut date[8..10], u32::from(at.day()));
        put_digits(&mut time[0..2], u32::from(at.hour()));
        put_digits(&mut time[3..5], u32::from(at.minute()));
        Stamp::Usual(text)
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            Stamp::Usual(text) => std::str::from_utf8(text).expect("ASCII digits"),
            Stamp::Other(text) => text,
        }
    }
}

/// What askama's `HtmlSafe` asks for; pages use the fast path below.
impl std::fmt::Display for Stamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Written into the page without `fmt`'s machinery.
impl askama::FastWritable for Stamp {
    fn write_into(
        &self,
        dest: &mut dyn std::fmt::Write,
        _: &dyn askama::Values,
    ) -> askama::Result<()> {
        Ok(dest.write_str(self.as_str())?)
    }
}

/// Nothing in it is markup (tested).
impl askama::filters::HtmlSafe for Stamp {}

/// [`absolute`] as `fmt` writes it, for any year.
fn formatted(at: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute()
    )
}

/// `n`'s last `slot.len()` decimal digits, zero-padded, into `slot`.
fn put_digits(slot: &mut [u8], mut n: u32) {
    for digit in slot.iter_mut().rev() {
        *digit = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

fn relative(at: OffsetDateTime, now: OffsetDateTime) -> String {
    let seconds = (at - now).whole_seconds();
    if seconds > 0 {
        // Under a minute left still reads as a minute's worth: rounded up.
        format!("in {}", span(seconds.unsigned_abs(), Round::Up))
    } else if seconds > -60 {
        "just now".to_owned()
    } else {
        format!("{} ago", span(seconds.unsigned_abs(), Round::Down))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Round {
    /// Time left: never understated, so nobody is surprised by an early end.
    Up,
    /// Time gone by: never overstated.
    Down,
}

/// A length of time in at most two units (minutes and hours under a day,
/// days and hours beyond), rounded to the smaller unit shown.
fn span(seconds: u64, round: Round) -> String {
    let to = |n: u64, unit: u64| match round {
        Round::Up => n.div_ceil(unit),
        Round::Down => n / unit,
    };
    let minutes = to(seconds, 60);
    if minutes < 60 {
        return format!("{minutes} min");
    }
    if minutes < 24 * 60 {
        let (hours, minutes) = (minutes / 60, minutes % 60);
        return if minutes == 0 {
            format!("{hours} h")
        } else {
            format!("{hours} h {minutes} min")
        };
    }
    let (days, hours) = {
        let hours = to(seconds, 3600);
        (hours / 24, hours % 24)
    };
    let days = if days == 1 {
        "1 day".to_owned()
    } else {
        format!("{days} days")
    };
    if hours == 0 {
        days
    } else {
        format!("{days} {hours} h")
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use time::Duration;
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-11-28 14:02:30 UTC);

    #[test]
    fn reads_like_the_examples() {
        let w = When::new(NOW - Duration::minutes(3), NOW);
        assert_eq!(
            (w.rel.as_str(), w.abs.as_str()),
            ("3 min ago", "2026-11-28 13:59 UTC")
        );
        let w = When::new(NOW + Duration::minutes(54), NOW);
        assert_eq!(
            (w.rel.as_str(), w.abs.as_str()),
            ("in 54 min", "2026-11-28 14:56 UTC")
        );
        assert_eq!(When::new(NOW, NOW).rel, "just now");
        assert_eq!(When::new(NOW - Duration::seconds(59), NOW).rel, "just now");
        assert_eq!(When::new(NOW + Duration::seconds(30), NOW).rel, "in 1 min");
        assert_eq!(
            When::new(NOW + Duration::minutes(90), NOW).rel,
            "in 1 h 30 min"
        );
        assert_eq!(When::new(NOW - Duration::hours(2), NOW).rel, "2 h ago");
        assert_eq!(
            When::new(NOW + Duration::hours(25), NOW).rel,
            "in 1 day 1 h"
        );
        assert_eq!(When::new(NOW - Duration::days(3), NOW).rel, "3 days ago");
        assert_eq!(
            When::new(NOW + Duration::minutes(125), NOW).to_string(),
            "2026-11-28 16:07 UTC (in 2 h 5 min)"
        );
    }

    #[test]
    fn time_left_is_rounded_up() {
        let fresh = |s| When::new(NOW + Duration::seconds(s), NOW).rel;
        assert_eq!(fresh(119), "in 2 min", "a fresh 2-minute grant");
        assert_eq!(fresh(120), "in 2 min");
        assert_eq!(fresh(121), "in 3 min");
        assert_eq!(fresh(2 * 3600 + 5 * 60 - 1), "in 2 h 5 min");
        assert_eq!(fresh(24 * 3600 - 1), "in 1 day");
        assert_eq!(fresh(24 * 3600 + 1), "in 1 day 1 h");
        assert_eq!(
            When::new(NOW - Duration::seconds(119), NOW).rel,
            "1 min ago",
            "the past is rounded down"
        );
    }

    #[test]
    fn every_time_carries_the_date_and_offsets_become_utc() {
        let w = When::new(NOW + Duration::hours(12), NOW);
        assert_eq!(w.abs, "2026-11-29 02:02 UTC");
        let paris = datetime!(2026-11-28 15:02:30 +01:00);
        let w = When::new(paris, NOW);
        assert_eq!(
            (w.abs.as_str(), w.iso.as_str(), w.rel.as_str()),
            ("2026-11-28 14:02 UTC", "2026-11-28T14:02:30Z", "just now")
        );
        assert_eq!(When::parse("2026-11-28T15:02:30+01:00", NOW), Some(w));
        assert_eq!(When::parse("1h", NOW), None);
    }

    /// Seconds in a span's text.
    fn seconds_in(text: &str) -> u64 {
        let words: Vec<&str> = text.split(' ').collect();
        words
            .chunks(2)
            .map(|pair| {
                let n: u64 = pair[0].parse().unwrap();
                n * match pair[1] {
                    "min" => 60,
                    "h" => 3600,
                    "day" | "days" => 86_400,
                    other => unreachable!("{other}"),
                }
            })
            .sum()
    }

    #[derive(askama::Template)]
    #[template(source = "<p>{{ now }}</p>", ext = "html")]
    struct Drawn {
        now: Stamp,
    }

    proptest! {
        /// A stamp is marked safe: escaping its text changes nothing, and a
        /// page draws it as the text is.
        #[test]
        fn a_stamp_is_drawn_as_its_text(secs in -377_000_000_000_i64..253_402_300_800) {
            use askama::Template;
            let at = OffsetDateTime::from_unix_timestamp(secs).expect("in range");
            let text = absolute(at);
            let escaped = askama::filters::escape(&text, askama::filters::Html)
                .expect("escapes")
                .to_string();
            prop_assert_eq!(&escaped, &text);
            let page = Drawn { now: Stamp::of(at) }.render().expect("renders");
            prop_assert_eq!(page, format!("<p>{text}</p>"));
        }

        /// Any instant from year -9977 to 9999 (outside 0..=9999, `absolute` is `formatted`).
        #[test]
        fn the_absolute_time_is_what_fmt_writes(secs in -377_000_000_000_i64..253_402_300_800) {
            let at = OffsetDateTime::from_unix_timestamp(secs).expect("in range");
            prop_assert_eq!(absolute(at), formatted(at));
        }

        #[test]
        fn direction_and_shape_hold_for_any_offset(secs in -20_000_000_i64..20_000_000) {
            let w = When::new(NOW + Duration::seconds(secs), NOW);
            prop_assert!(w.abs.starts_with("20") && w.abs.ends_with(" UTC"), "{}", w.abs);
            prop_assert!(w.iso.ends_with('Z'));
            if secs > 0 {
                prop_assert!(w.rel.starts_with("in ") && !w.rel.ends_with(" ago"), "{}", w.rel);
            } else if secs <= -60 {
                prop_assert!(w.rel.ends_with(" ago"), "{}", w.rel);
            }
        }

        #[test]
        fn time_left_is_never_understated(secs in 1u64..100_000_000) {
            let text = span(secs, Round::Up);
            let shown = seconds_in(&text);
            let unit = if secs > 86_400 - 60 { 3600 } else { 60 };
            prop_assert!(shown >= secs && shown - secs < unit, "{secs} -> {text}");
        }

        #[test]
        fn time_gone_by_is_never_overstated(secs in 60u64..100_000_000) {
            let text = span(secs, Round::Down);
            let shown = seconds_in(&text);
            let unit = if secs >= 86_400 { 3600 } else { 60 };
            prop_assert!(shown <= secs && secs - shown < unit, "{secs} -> {text}");
        }
    }
}
