use std::fmt;

use serde::{Deserialize, Serialize};

/// An email address as Pomerium puts it in the `email` claim and as PPL's
/// `email` criterion matches it: exactly, case included (`is` is a
/// case-sensitive comparison), so the address is never case-folded here.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("the email address is empty")]
    Empty,
    #[error("the email address is longer than {max} characters", max = Email::MAX_LEN)]
    TooLong,
    #[error("the email address contains spaces or control characters")]
    BadCharacter,
    #[error("that is not an email address: it needs exactly one @ with text on both sides")]
    Shape,
}

impl Email {
    /// RFC 5321's limit on a forward path.
    pub const MAX_LEN: usize = 254;

    /// Parses an address, trimming surrounding white space (as a form field
    /// may carry it) but keeping everything else as given.
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(EmailError::Empty);
        }
        if s.len() > Self::MAX_LEN {
            return Err(EmailError::TooLong);
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(EmailError::BadCharacter);
        }
        match s.split_once('@') {
            Some((local, domain))
                if !local.is_empty() && !domain.is_empty() && !domain.contains('@') =>
            {
                Ok(Self(s.to_owned()))
            }
            _ => Err(EmailError::Shape),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after the `@`, as PPL's `domain` criterion reads it.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }
}

impl TryFrom<String> for Email {
    type Error = EmailError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> Self {
        e.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({:?})", self.0)
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_trims() {
        let e = Email::parse("  Alice.Smith+jit@Example.com \n").unwrap();
        assert_eq!(e.as_str(), "Alice.Smith+jit@Example.com");
        assert_eq!(e.domain(), "Example.com");
    }

    #[test]
    fn refuses_bad_shapes() {
        assert_eq!(Email::parse(""), Err(EmailError::Empty));
        assert_eq!(Email::parse("   "), Err(EmailError::Empty));
        assert_eq!(Email::parse("alice"), Err(EmailError::Shape));
        assert_eq!(Email::parse("@example.com"), Err(EmailError::Shape));
        assert_eq!(Email::parse("alice@"), Err(EmailError::Shape));
        assert_eq!(Email::parse("a@b@c"), Err(EmailError::Shape));
        assert_eq!(Email::parse("al ice@x.y"), Err(EmailError::BadCharacter));
        assert_eq!(
            Email::parse("alice@x.y\u{0}"),
            Err(EmailError::BadCharacter)
        );
        let long = format!("{}@x.y", "a".repeat(260));
        assert_eq!(Email::parse(&long), Err(EmailError::TooLong));
    }

    #[test]
    fn keeps_script_tags_verbatim_for_escaping_later() {
        // Odd but legal-looking addresses must survive; the web layer escapes them.
        let e = Email::parse("<script>alert(1)</script>@evil.test").unwrap();
        assert_eq!(e.as_str(), "<script>alert(1)</script>@evil.test");
    }

    #[test]
    fn serde_parses() {
        let e: Email = serde_json::from_str("\"bob@x.y\"").unwrap();
        assert_eq!(e.as_str(), "bob@x.y");
        assert!(serde_json::from_str::<Email>("\"bob\"").is_err());
    }
}
