//! Times as people read them: relative ("3 min ago", "in 54 min") next to
//! absolute UTC ("14:02 UTC", with the date when it is not today), and the
//! exact RFC 3339 instant for `<time datetime>` and tooltips.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// One instant, formatted for a page relative to the moment it is rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct When {
    /// "3 min ago", "in 54 min", "just now".
    pub rel: String,
    /// "14:02 UTC" today, "2026-11-28 14:02 UTC" on other days.
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
            abs: absolute(at, now),
            iso: rfc3339(at),
        }
    }
}

/// RFC 3339 in UTC, whole seconds.
pub(crate) fn rfc3339(at: OffsetDateTime) -> String {
    let at = at
        .to_offset(UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(at);
    // Formatting fails only for years outside 0..=9999, which no stored time has.
    at.format(&Rfc3339).unwrap_or_else(|_| at.to_string())
}

fn absolute(at: OffsetDateTime, now: OffsetDateTime) -> String {
    let formatted = if at.date() == now.date() {
        at.format(format_description!("[hour]:[minute] UTC"))
    } else {
        at.format(format_description!(
            "[year]-[month]-[day] [hour]:[minute] UTC"
        ))
    };
    formatted.unwrap_or_else(|_| at.to_string())
}

fn relative(at: OffsetDateTime, now: OffsetDateTime) -> String {
    let seconds = (at - now).whole_seconds();
    match span(seconds.unsigned_abs()) {
        None if seconds > 0 => "in less than a minute".to_owned(),
        None => "just now".to_owned(),
        Some(s) if seconds > 0 => format!("in {s}"),
        Some(s) => format!("{s} ago"),
    }
}

/// A length of time in at most two units, rounded down (so time left is
/// never overstated); `None` under a minute.
fn span(seconds: u64) -> Option<String> {
    let minutes = seconds / 60;
    if minutes == 0 {
        return None;
    }
    if minutes < 60 {
        return Some(format!("{minutes} min"));
    }
    let (hours, minutes) = (minutes / 60, minutes % 60);
    if hours < 24 {
        return Some(if minutes == 0 {
            format!("{hours} h")
        } else {
            format!("{hours} h {minutes} min")
        });
    }
    let (days, hours) = (hours / 24, hours % 24);
    let days = if days == 1 {
        "1 day".to_owned()
    } else {
        format!("{days} days")
    };
    Some(if hours == 0 {
        days
    } else {
        format!("{days} {hours} h")
    })
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
        assert_eq!((w.rel.as_str(), w.abs.as_str()), ("3 min ago", "13:59 UTC"));
        let w = When::new(NOW + Duration::minutes(54) + Duration::seconds(59), NOW);
        assert_eq!((w.rel.as_str(), w.abs.as_str()), ("in 54 min", "14:57 UTC"));
        assert_eq!(When::new(NOW, NOW).rel, "just now");
        assert_eq!(
            When::new(NOW + Duration::seconds(30), NOW).rel,
            "in less than a minute"
        );
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
    }

    #[test]
    fn other_days_carry_the_date_and_offsets_become_utc() {
        let w = When::new(NOW + Duration::hours(12), NOW);
        assert_eq!(w.abs, "2026-11-29 02:02 UTC");
        let paris = datetime!(2026-11-28 15:02:30 +01:00);
        let w = When::new(paris, NOW);
        assert_eq!(
            (w.abs.as_str(), w.iso.as_str(), w.rel.as_str()),
            ("14:02 UTC", "2026-11-28T14:02:30Z", "just now")
        );
    }

    proptest! {
        #[test]
        fn direction_and_shape_hold_for_any_offset(secs in -20_000_000_i64..20_000_000) {
            let w = When::new(NOW + Duration::seconds(secs), NOW);
            prop_assert!(w.abs.ends_with(" UTC"));
            prop_assert!(w.iso.ends_with('Z'));
            if secs >= 60 {
                prop_assert!(w.rel.starts_with("in ") && !w.rel.ends_with(" ago"), "{}", w.rel);
            } else if secs <= -60 {
                prop_assert!(w.rel.ends_with(" ago"), "{}", w.rel);
            }
        }

        #[test]
        fn spans_never_overstate(secs in 0u64..100_000_000) {
            let text = span(secs).unwrap_or_default();
            let mut total = 0u64;
            let words: Vec<&str> = text.split(' ').collect();
            for pair in words.chunks(2) {
                if let [n, unit] = pair {
                    let n: u64 = n.parse().unwrap();
                    total += n * match *unit { "min" => 60, "h" => 3600, "day" | "days" => 86_400, _ => unreachable!() };
                }
            }
            prop_assert!(total <= secs && secs - total < 86_400, "{secs} -> {text}");
        }
    }
}
