//! Who made the request, as vouched for by Pomerium's signed assertion.

use std::collections::BTreeMap;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::VerifyError;

/// The verified identity from an `X-Pomerium-Jwt-Assertion`. Every field comes
/// from a claim that passed signature and claim checks; nothing comes from
/// unsigned headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub(crate) user: String,
    pub(crate) email: String,
    pub(crate) name: String,
    // Shared, so each request's caller takes them without a copy.
    pub(crate) groups: Arc<[String]>,
    pub(crate) session_id: String,
    pub(crate) token_id: String,
    pub(crate) issued_at: OffsetDateTime,
    pub(crate) expires_at: OffsetDateTime,
    pub(crate) claims: Arc<BTreeMap<String, Vec<String>>>,
}

impl Identity {
    /// The IdP user ID (`sub`, or `user` when `sub` is absent or empty). Never empty.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The email address, for callers that need one. Pomerium sends `""` when
    /// the IdP has none (e.g. service accounts), which is refused here.
    pub fn email(&self) -> Result<&str, VerifyError> {
        self.email_if_present().ok_or(VerifyError::MissingEmail)
    }

    /// The email address, or `None` when the assertion's `email` is empty or absent.
    pub fn email_if_present(&self) -> Option<&str> {
        Some(self.email.as_str()).filter(|e| !e.is_empty())
    }

    /// Display name; may be empty.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Group IDs and names, as Pomerium lists them (possibly filtered by `jwt_groups_filter`).
    pub fn groups(&self) -> &Arc<[String]> {
        &self.groups
    }

    /// Pomerium session ID (`sid`); empty if absent.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// Assertion ID (`jti`); empty if absent. Unique per minted assertion, so
    /// usable in audit records to tie an action to one request's token.
    pub fn token_id(&self) -> &str {
        &self.token_id
    }

    /// When Pomerium minted the assertion (`iat`).
    pub fn issued_at(&self) -> OffsetDateTime {
        self.issued_at
    }

    /// When the assertion stops being valid (`exp`, before leeway).
    pub fn expires_at(&self) -> OffsetDateTime {
        self.expires_at
    }

    /// The assertion's other claims that are a string or a list of strings
    /// (a string claim is a list of one), by name: what an IdP adds, such as
    /// `team`. Claims of other types are not kept.
    pub fn claims(&self) -> &Arc<BTreeMap<String, Vec<String>>> {
        &self.claims
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(email: &str) -> Identity {
        Identity {
            user: "u".into(),
            email: email.into(),
            name: String::new(),
            groups: Arc::new([]),
            session_id: String::new(),
            token_id: String::new(),
            issued_at: OffsetDateTime::UNIX_EPOCH,
            expires_at: OffsetDateTime::UNIX_EPOCH,
            claims: Arc::default(),
        }
    }

    #[test]
    fn email_is_required_only_when_asked_for() {
        assert_eq!(identity("a@example.com").email(), Ok("a@example.com"));
        assert_eq!(identity("").email(), Err(VerifyError::MissingEmail));
        assert_eq!(identity("").email_if_present(), None);
    }
}
