use std::fmt;
use std::str::FromStr;

use time::Duration;

/// How long an approved grant lasts: whole minutes, at least one minute.
///
/// Written and read as a compact string such as `45m`, `1h`, `1h30m` or `2d`,
/// the form used by the settings and the admin form.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GrantDuration(Duration);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("the duration is empty; write it like 30m, 1h, 1h30m or 2d")]
    Empty,
    #[error("`{0}` is not a duration; write it like 30m, 1h, 1h30m or 2d")]
    Syntax(String),
    #[error("the duration must be at least one minute")]
    TooShort,
    #[error("the duration is longer than the allowed maximum of {max}")]
    TooLong { max: GrantDuration },
}

impl GrantDuration {
    /// The Go original's fixed grant length.
    pub const ONE_HOUR: Self = Self(Duration::HOUR);

    pub fn from_minutes(minutes: u32) -> Result<Self, DurationError> {
        if minutes == 0 {
            return Err(DurationError::TooShort);
        }
        Ok(Self(Duration::minutes(i64::from(minutes))))
    }

    pub fn as_duration(self) -> Duration {
        self.0
    }

    pub fn whole_minutes(self) -> i64 {
        self.0.whole_minutes()
    }
}

impl FromStr for GrantDuration {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err(DurationError::Empty);
        }
        let syntax = || DurationError::Syntax(s.chars().take(32).collect());
        let mut minutes: u64 = 0;
        let mut digits = String::new();
        let mut seen_unit = false;
        for c in s.chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let per_unit = match c {
                'm' => 1,
                'h' => 60,
                'd' => 24 * 60,
                _ => return Err(syntax()),
            };
            let n: u64 = digits.parse().map_err(|_| syntax())?;
            digits.clear();
            seen_unit = true;
            minutes = n
                .checked_mul(per_unit)
                .and_then(|m| minutes.checked_add(m))
                .ok_or_else(syntax)?;
        }
        if !digits.is_empty() || !seen_unit {
            return Err(syntax());
        }
        // Ten years is far beyond any sane grant and keeps arithmetic in range.
        let minutes = u32::try_from(minutes)
            .ok()
            .filter(|m| *m <= 10 * 366 * 24 * 60)
            .ok_or_else(syntax)?;
        Self::from_minutes(minutes)
    }
}

impl fmt::Display for GrantDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.0.whole_minutes();
        let (d, h, m) = (total / (24 * 60), total / 60 % 24, total % 60);
        let mut out = String::new();
        if d > 0 {
            out.push_str(&format!("{d}d"));
        }
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if m > 0 || out.is_empty() {
            out.push_str(&format!("{m}m"));
        }
        f.write_str(&out)
    }
}

impl fmt::Debug for GrantDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GrantDuration({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_common_forms() {
        assert_eq!(
            "1h".parse::<GrantDuration>().unwrap(),
            GrantDuration::ONE_HOUR
        );
        assert_eq!("90m".parse::<GrantDuration>().unwrap().whole_minutes(), 90);
        assert_eq!(
            "1h30m".parse::<GrantDuration>().unwrap().whole_minutes(),
            90
        );
        assert_eq!("2d".parse::<GrantDuration>().unwrap().whole_minutes(), 2880);
        assert_eq!(" 5m ".parse::<GrantDuration>().unwrap().whole_minutes(), 5);
    }

    #[test]
    fn refuses_nonsense() {
        for bad in [
            "",
            "1",
            "h",
            "1x",
            "-1h",
            "1.5h",
            "0m",
            "99999999999999999999m",
            "1h 2m",
        ] {
            assert!(bad.parse::<GrantDuration>().is_err(), "{bad:?} parsed");
        }
        assert_eq!("0m".parse::<GrantDuration>(), Err(DurationError::TooShort));
    }

    proptest! {
        #[test]
        fn display_round_trips(minutes in 1u32..1_000_000) {
            let d = GrantDuration::from_minutes(minutes).unwrap();
            prop_assert_eq!(d.to_string().parse::<GrantDuration>().unwrap(), d);
        }
    }
}
