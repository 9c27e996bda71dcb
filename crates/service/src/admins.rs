//! Who is asking, and whether they are an admin.

use std::collections::BTreeSet;
use std::ops::Deref;
use std::sync::Arc;

use jit_domain::{Email, Profile};

use crate::ServiceError;

/// A signed-in person, as the web edge read them from a verified assertion:
/// who they are, shared with the assertion (a request copies nothing), and
/// the route they came through. Reads as its profile (`caller.email`,
/// `caller.person()`).
#[derive(Debug, Clone)]
pub struct Caller {
    pub profile: Arc<Profile>,
    /// Which of Pomerium's routes the request came through.
    pub route: Route,
}

impl Deref for Caller {
    type Target = Profile;

    fn deref(&self) -> &Profile {
        &self.profile
    }
}

/// The Pomerium route a request came through. Pomerium's admin route guards
/// only the `/admin` path prefix, so in open admin mode (no lists) being on
/// that route is the only proof of admin rights the app has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// A path under `/admin`, guarded by Pomerium's admin route policy.
    Admin,
    /// Any other path: any authenticated user can reach it.
    Public,
}

/// Who may use the admin pages, checked in the app in addition to
/// Pomerium's route policy. With no emails and no groups configured
/// ("open" mode, like the Go original) anyone Pomerium lets through the
/// admin route is an admin there, and nobody is anywhere else.
#[derive(Debug, Clone, Default)]
pub struct Admins {
    emails: BTreeSet<Email>,
    groups: BTreeSet<String>,
}

impl Admins {
    pub fn new(
        emails: impl IntoIterator<Item = Email>,
        groups: impl IntoIterator<Item = String>,
    ) -> Self {
        Self {
            emails: emails.into_iter().collect(),
            groups: groups.into_iter().collect(),
        }
    }

    /// The listed admin emails (`ADMIN_EMAILS`): whom to mail for resources
    /// the admins approve.
    pub fn emails(&self) -> impl Iterator<Item = &Email> {
        self.emails.iter()
    }

    /// True when no admin list is configured: Pomerium's admin route decides.
    pub fn is_open(&self) -> bool {
        self.emails.is_empty() && self.groups.is_empty()
    }

    pub fn allows(&self, caller: &Caller) -> bool {
        self.check(caller).is_ok()
    }

    pub(crate) fn check(&self, caller: &Caller) -> Result<(), ServiceError> {
        if self.is_open() {
            return match caller.route {
                Route::Admin => Ok(()),
                Route::Public => Err(ServiceError::AdminRouteOnly),
            };
        }
        let listed = self.emails.contains(&caller.email)
            || caller.groups.iter().any(|g| self.groups.contains(g));
        if listed {
            Ok(())
        } else {
            Err(ServiceError::NotAdmin)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(email: &str, groups: &[&str], route: Route) -> Caller {
        Caller {
            profile: Arc::new(Profile {
                email: Email::parse(email).unwrap(),
                groups: groups.iter().map(|g| (*g).to_owned()).collect(),
                claims: Arc::default(),
            }),
            route,
        }
    }

    #[test]
    fn open_mode_grants_admin_rights_only_on_the_admin_route() {
        let open = Admins::default();
        assert!(open.allows(&caller("bob@example.com", &[], Route::Admin)));
        assert!(matches!(
            open.check(&caller("bob@example.com", &[], Route::Public)),
            Err(ServiceError::AdminRouteOnly)
        ));
    }

    #[test]
    fn lists_decide_on_every_route() {
        let admins = Admins::new(
            [Email::parse("carol@example.com").unwrap()],
            ["security".to_owned()],
        );
        for route in [Route::Admin, Route::Public] {
            assert!(admins.allows(&caller("carol@example.com", &[], route)));
            assert!(admins.allows(&caller("dan@example.com", &["security"], route)));
            assert!(matches!(
                admins.check(&caller("bob@example.com", &["dev"], route)),
                Err(ServiceError::NotAdmin)
            ));
        }
    }
}
