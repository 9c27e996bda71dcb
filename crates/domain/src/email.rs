use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// An email address, the one email type of the workspace.
///
/// Pomerium's PPL `email` criterion (`is`) compares the session's `email`
/// claim with the rule's text exactly: case-sensitive, no trimming. So the
/// address is kept byte-exact and never case-folded: `Bob@Example.com` and
/// `bob@example.com` are two different addresses here, as they are to
/// Pomerium.
///
/// Where the text comes from decides how it is read:
/// - [`Email::parse`], exact: Pomerium's signed assertion, a policy rule, the
///   store. Text that is not exactly a usable address is refused, never
///   repaired: repairing a policy rule's ` bob@example.com ` (which matches
///   nobody) into `bob@example.com` would grant access the console never gave.
/// - [`Email::from_input`]: what a person typed (a form field, a CLI flag),
///   with surrounding white space trimmed first.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
// Shared text: the same address is held by a request, its requester and
// its approvals, and the pages keep every open request in memory.
pub struct Email(Arc<str>);

#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
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

    /// Parses an address exactly as given: the result's text is `raw`, byte
    /// for byte, or an error says why `raw` is not a usable address.
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        if raw.is_empty() {
            return Err(EmailError::Empty);
        }
        if raw.len() > Self::MAX_LEN {
            return Err(EmailError::TooLong);
        }
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(EmailError::BadCharacter);
        }
        match raw.split_once('@') {
            Some((local, domain))
                if !local.is_empty() && !domain.is_empty() && !domain.contains('@') =>
            {
                Ok(Self(raw.into()))
            }
            _ => Err(EmailError::Shape),
        }
    }

    /// Parses an address a person typed: surrounding white space (which a
    /// pasted form value often carries) is trimmed, everything else is kept.
    /// Never use it for text read from Pomerium or a policy.
    pub fn from_input(raw: &str) -> Result<Self, EmailError> {
        Self::parse(raw.trim())
    }

    pub fn as_str(&self) -> &str {
        &self.0
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
        e.0.as_ref().to_owned()
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
    fn parse_is_exact() {
        let e = Email::parse("Alice.Smith+jit@Example.com").unwrap();
        assert_eq!(e.as_str(), "Alice.Smith+jit@Example.com");
        assert_ne!(e, Email::parse("alice.smith+jit@example.com").unwrap());
        // Text from Pomerium or a policy is never repaired into someone's address.
        for raw in [
            " bob@example.com ",
            "bob@example.com\n",
            "\tbob@example.com",
        ] {
            assert_eq!(Email::parse(raw), Err(EmailError::BadCharacter), "{raw:?}");
        }
    }

    #[test]
    fn typed_input_is_trimmed_and_nothing_else() {
        let e = Email::from_input("  Alice.Smith+jit@Example.com \n").unwrap();
        assert_eq!(e.as_str(), "Alice.Smith+jit@Example.com");
        assert_eq!(Email::from_input("   "), Err(EmailError::Empty));
        assert_eq!(
            Email::from_input(" al ice@x.y "),
            Err(EmailError::BadCharacter)
        );
    }

    #[test]
    fn refuses_bad_shapes() {
        assert_eq!(Email::parse(""), Err(EmailError::Empty));
        assert_eq!(Email::parse("   "), Err(EmailError::BadCharacter));
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
        assert!(serde_json::from_str::<Email>("\" bob@x.y\"").is_err());
    }
}
