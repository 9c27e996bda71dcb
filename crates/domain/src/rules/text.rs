//! Free text people write (reasons, comments, tickets) and the rules a
//! resource sets on it.

use std::fmt;

use super::DomainError;

/// Text a person wrote for others to read: a requester's justification or
/// an approver's comment. Trimmed, at most [`Reason::MAX_LEN`] characters,
/// no control characters but line breaks and tabs.
#[derive(Clone, PartialEq, Eq)]
pub struct Reason(Box<str>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReasonError {
    #[error("the text is longer than {max} characters", max = Reason::MAX_LEN)]
    TooLong,
    #[error("the text contains control characters")]
    BadCharacter,
}

impl Reason {
    pub const MAX_LEN: usize = 500;

    /// `Ok(None)` for an empty or blank text.
    pub fn parse(raw: &str) -> Result<Option<Self>, ReasonError> {
        clean(raw, Self::MAX_LEN, true).map(|s| s.map(|s| Self(s.into())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reason({:?})", self.0)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A reference to a ticket in another system (`OPS-1234`, a URL): one
/// line, trimmed, at most [`Ticket::MAX_LEN`] characters.
#[derive(Clone, PartialEq, Eq)]
pub struct Ticket(Box<str>);

impl Ticket {
    pub const MAX_LEN: usize = 200;

    /// `Ok(None)` for an empty or blank ticket.
    pub fn parse(raw: &str) -> Result<Option<Self>, ReasonError> {
        clean(raw, Self::MAX_LEN, false).map(|s| s.map(|s| Self(s.into())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ticket({:?})", self.0)
    }
}

impl fmt::Display for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn clean(raw: &str, max: usize, multiline: bool) -> Result<Option<&str>, ReasonError> {
    let s = raw.trim();
    if s.is_empty() {
        return Ok(None);
    }
    if s.chars().count() > max {
        return Err(ReasonError::TooLong);
    }
    let allowed = |c: char| multiline && matches!(c, '\n' | '\r' | '\t');
    if s.chars().any(|c| c.is_control() && !allowed(c)) {
        return Err(ReasonError::BadCharacter);
    }
    Ok(Some(s))
}

/// A regular expression the whole text must match, with the source kept to
/// show people what is expected.
#[derive(Clone)]
pub struct Pattern {
    source: String,
    regex: regex_lite::Regex,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{pattern}` is not a valid regular expression: {problem}")]
pub struct PatternError {
    pub pattern: String,
    pub problem: String,
}

impl Pattern {
    pub fn new(source: &str) -> Result<Self, PatternError> {
        // Anchored here, so `[A-Z]+-[0-9]+` cannot match inside a longer text.
        regex_lite::Regex::new(&format!("^(?:{source})$"))
            .map(|regex| Self {
                source: source.to_owned(),
                regex,
            })
            .map_err(|e| PatternError {
                pattern: source.to_owned(),
                problem: e.to_string(),
            })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Pattern {}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({:?})", self.source)
    }
}

/// What a resource asks of a request's reason.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReasonRule {
    pub required: bool,
    /// At least this many characters, when given.
    pub min_chars: usize,
    /// The whole reason must match, when given.
    pub pattern: Option<Pattern>,
    /// Shown when the pattern does not match ("name the incident, like INC-123").
    pub hint: Option<String>,
}

impl ReasonRule {
    pub(crate) fn check(&self, reason: Option<&Reason>) -> Result<(), DomainError> {
        let Some(r) = reason else {
            return if self.required {
                Err(DomainError::Reason(
                    "a reason is required: say what you need this access for".into(),
                ))
            } else {
                Ok(())
            };
        };
        if r.as_str().chars().count() < self.min_chars {
            return Err(DomainError::Reason(format!(
                "the reason is too short: write at least {} characters",
                self.min_chars
            )));
        }
        if let Some(p) = &self.pattern
            && !p.is_match(r.as_str())
        {
            return Err(DomainError::Reason(match &self.hint {
                Some(h) => format!("the reason does not have the expected form: {h}"),
                None => format!("the reason must match `{}`", p.as_str()),
            }));
        }
        Ok(())
    }
}

/// The ticket field of a resource's request form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketRule {
    /// The field's label ("Incident", "Change ticket").
    pub label: String,
    pub required: bool,
    pub pattern: Option<Pattern>,
}

impl TicketRule {
    pub(crate) fn check(&self, ticket: Option<&Ticket>) -> Result<(), DomainError> {
        match ticket {
            None if self.required => Err(DomainError::Ticket(format!(
                "the {} field is required",
                self.label
            ))),
            None => Ok(()),
            Some(t) => match &self.pattern {
                Some(p) if !p.is_match(t.as_str()) => Err(DomainError::Ticket(format!(
                    "the {} `{}` does not have the expected form `{}`",
                    self.label,
                    t.as_str().chars().take(60).collect::<String>(),
                    p.as_str()
                ))),
                _ => Ok(()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_trimmed_bounded_and_clean() {
        assert_eq!(Reason::parse("  \n ").unwrap(), None);
        assert_eq!(Reason::parse(" a\nb ").unwrap().unwrap().as_str(), "a\nb");
        assert_eq!(Reason::parse(&"x".repeat(501)), Err(ReasonError::TooLong));
        assert_eq!(Reason::parse("a\u{7}"), Err(ReasonError::BadCharacter));
        assert_eq!(Ticket::parse("a\nb"), Err(ReasonError::BadCharacter));
        assert_eq!(Ticket::parse(" OPS-1 ").unwrap().unwrap().as_str(), "OPS-1");
    }

    #[test]
    fn patterns_match_the_whole_text() {
        let p = Pattern::new("[A-Z]+-[0-9]+").unwrap();
        assert!(p.is_match("OPS-12"));
        assert!(!p.is_match("see OPS-12"));
        assert!(!p.is_match("OPS-12 now"));
        // An alternation is anchored as a whole.
        let p = Pattern::new("a|b").unwrap();
        assert!(p.is_match("a") && !p.is_match("ab"));
        let err = Pattern::new("(").unwrap_err();
        assert_eq!(err.pattern, "(");
    }

    #[test]
    fn reason_rules_say_what_is_missing() {
        let rule = ReasonRule {
            required: true,
            min_chars: 10,
            pattern: Some(Pattern::new("INC-[0-9]+: .*").unwrap()),
            hint: Some("start with the incident, like `INC-12: …`".into()),
        };
        let r = |s: &str| Reason::parse(s).unwrap();
        assert!(matches!(rule.check(None), Err(DomainError::Reason(m)) if m.contains("required")));
        assert!(
            matches!(rule.check(r("short").as_ref()), Err(DomainError::Reason(m)) if m.contains("at least 10"))
        );
        assert!(
            matches!(rule.check(r("no incident here").as_ref()), Err(DomainError::Reason(m)) if m.contains("INC-12"))
        );
        assert_eq!(rule.check(r("INC-7: db is down").as_ref()), Ok(()));
        assert_eq!(ReasonRule::default().check(None), Ok(()));
    }

    #[test]
    fn ticket_rules_name_their_field() {
        let rule = TicketRule {
            label: "Change ticket".into(),
            required: true,
            pattern: Some(Pattern::new("CHG[0-9]{4}").unwrap()),
        };
        assert!(
            matches!(rule.check(None), Err(DomainError::Ticket(m)) if m.contains("Change ticket"))
        );
        let t = |s: &str| Ticket::parse(s).unwrap();
        assert!(rule.check(t("CHG12").as_ref()).is_err());
        assert_eq!(rule.check(t("CHG1234").as_ref()), Ok(()));
    }
}
