//! Who made the request, as vouched for by Pomerium's signed assertion.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use jit_domain::{Email, EmailError, Profile};
use time::OffsetDateTime;

use crate::VerifyError;

/// The verified identity from an `X-Pomerium-Jwt-Assertion`. Every field comes
/// from a claim that passed signature and claim checks; nothing comes from
/// unsigned headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Who, shared by every assertion of one person that the verifier
    /// holds ([`People`]): Pomerium mints many, and the cache keeps each
    /// until it expires.
    pub(crate) person: Arc<Person>,
    /// The person's profile, what every request reads: held here too, so a
    /// cache hit reaches it without a stop at the person. With thousands of
    /// people each stop is a cache miss: the person's was a sixth of the
    /// path from the edge to the handler (perf).
    profile: Option<Result<Arc<Profile>, EmailError>>,
    /// `sid` and then `jti`, in one allocation: the cache holds thousands
    /// of identities, and each string on its own was another block.
    ids: Box<str>,
    /// Where `sid` ends in `ids`.
    session_end: u32,
    /// `iat` and `exp` in Unix seconds, as the claims give them: an
    /// `OffsetDateTime` is twice the size, and the cache holds thousands.
    issued_at: i64,
    expires_at: i64,
}

/// The claims that say who someone is, the same in each of their assertions.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct Person {
    pub(crate) user: String,
    pub(crate) email: String,
    pub(crate) name: String,
    /// The address as the app reads it, with the groups and claims: made
    /// once for all of the person's assertions, and what each request's
    /// caller shares; why the address is not one, or `None` when empty.
    pub(crate) profile: Option<Result<Arc<Profile>, EmailError>>,
    pub(crate) groups: Arc<[String]>,
    pub(crate) claims: Arc<BTreeMap<String, Vec<String>>>,
}

impl Identity {
    /// The IdP user ID (`sub`, or `user` when `sub` is absent or empty). Never empty.
    pub fn user(&self) -> &str {
        &self.person.user
    }

    /// The email address, for callers that need one. Pomerium sends `""` when
    /// the IdP has none (e.g. service accounts), which is refused here.
    pub fn email(&self) -> Result<&str, VerifyError> {
        self.email_if_present().ok_or(VerifyError::MissingEmail)
    }

    /// The email address, or `None` when the assertion's `email` is empty or absent.
    pub fn email_if_present(&self) -> Option<&str> {
        Some(self.person.email.as_str()).filter(|e| !e.is_empty())
    }

    /// The person as the app reads them (the address an [`Email`]), or why
    /// the address is not one; `None` when the assertion's `email` is empty
    /// or absent. One copy, shared by all of the person's assertions.
    pub fn profile(&self) -> Option<&Result<Arc<Profile>, EmailError>> {
        self.profile.as_ref()
    }

    /// Display name; may be empty.
    pub fn name(&self) -> &str {
        &self.person.name
    }

    /// Group IDs and names, as Pomerium lists them (possibly filtered by `jwt_groups_filter`).
    pub fn groups(&self) -> &Arc<[String]> {
        &self.person.groups
    }

    /// Pomerium session ID (`sid`); empty if absent.
    pub fn session_id(&self) -> &str {
        &self.ids[..self.session_end as usize]
    }

    /// Assertion ID (`jti`); empty if absent. Unique per minted assertion, so
    /// usable in audit records to tie an action to one request's token.
    pub fn token_id(&self) -> &str {
        &self.ids[self.session_end as usize..]
    }

    /// An identity of `person` from one assertion; `None` if its `sid` is
    /// longer than 4 GiB (no header is).
    pub(crate) fn new(
        person: Arc<Person>,
        session_id: &str,
        token_id: &str,
        issued_at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Option<Self> {
        Some(Identity {
            profile: person.profile.clone(),
            person,
            session_end: u32::try_from(session_id.len()).ok()?,
            ids: [session_id, token_id].concat().into(),
            issued_at: issued_at.unix_timestamp(),
            expires_at: expires_at.unix_timestamp(),
        })
    }

    /// When Pomerium minted the assertion (`iat`).
    pub fn issued_at(&self) -> OffsetDateTime {
        from_unix(self.issued_at)
    }

    /// When the assertion stops being valid (`exp`, before leeway).
    pub fn expires_at(&self) -> OffsetDateTime {
        from_unix(self.expires_at)
    }

    /// The assertion's other claims that are a string or a list of strings
    /// (a string claim is a list of one), by name: what an IdP adds, such as
    /// `team`. Claims of other types are not kept.
    pub fn claims(&self) -> &Arc<BTreeMap<String, Vec<String>>> {
        &self.person.claims
    }
}

/// A time [`Identity::new`] was given, back from its Unix seconds.
fn from_unix(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).expect("the seconds of a valid time")
}

impl Person {
    pub(crate) fn new(
        user: String,
        email: String,
        name: String,
        groups: Arc<[String]>,
        claims: Arc<BTreeMap<String, Vec<String>>>,
    ) -> Self {
        let profile = (!email.is_empty()).then(|| {
            Email::parse(&email).map(|email| {
                Arc::new(Profile {
                    email,
                    groups: Arc::clone(&groups),
                    claims: Arc::clone(&claims),
                })
            })
        });
        Person {
            user,
            email,
            name,
            profile,
            groups,
            claims,
        }
    }
}

/// One copy of each [`Person`] the verifier holds identities for. Each
/// cached assertion held its own strings, groups and claims, about 450 of
/// its 500 bytes of heap, repeated for every assertion of the same person;
/// now about 200 bytes (the identity, `sid` and `jti`).
#[derive(Debug, Default)]
pub(crate) struct People(Mutex<PeopleSet>);

#[derive(Debug, Default)]
struct PeopleSet {
    known: HashSet<Arc<Person>>,
    /// Size at which people no identity refers to any more are dropped:
    /// twice the number left by the last sweep, so sweeps cost O(1) per
    /// new person and the set stays within twice what is in use.
    sweep_at: usize,
}

impl People {
    /// `identity`, holding the copy of its person already known if there
    /// is one. Runs once per verified assertion, after its signature check.
    pub(crate) fn share(&self, mut identity: Identity) -> Identity {
        // Entries are whole Arcs; a panic elsewhere cannot leave one half-written.
        let mut set = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(known) = set.known.get(&*identity.person) {
            identity.profile = known.profile.clone();
            identity.person = Arc::clone(known);
            return identity;
        }
        if set.known.len() >= set.sweep_at {
            set.known.retain(|p| Arc::strong_count(p) > 1);
            set.sweep_at = (set.known.len() * 2).max(64);
        }
        set.known.insert(Arc::clone(&identity.person));
        identity
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.lock().unwrap().known.len()
    }
}

#[cfg(test)]
impl Identity {
    /// An identity with no name, groups or claims, for tests.
    pub(crate) fn for_test(user: &str, email: &str, session_id: &str, token_id: &str) -> Self {
        let person = Arc::new(Person::new(
            user.into(),
            email.into(),
            String::new(),
            Arc::new([]),
            Arc::default(),
        ));
        let epoch = OffsetDateTime::UNIX_EPOCH;
        Identity::new(person, session_id, token_id, epoch, epoch).expect("short ids")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(email: &str) -> Identity {
        Identity::for_test("u", email, "", "")
    }

    proptest::proptest! {
        #[test]
        fn session_and_token_ids_come_back_apart(sid in ".*", jti in ".*") {
            let id = Identity::for_test("u", "e", &sid, &jti);
            proptest::prop_assert_eq!((id.session_id(), id.token_id()), (&*sid, &*jti));
        }
    }

    #[test]
    fn email_is_required_only_when_asked_for() {
        assert_eq!(identity("a@example.com").email(), Ok("a@example.com"));
        assert_eq!(identity("").email(), Err(VerifyError::MissingEmail));
        assert_eq!(identity("").email_if_present(), None);
        let address = |id: Identity| id.profile().cloned().map(|p| p.map(|p| p.email.clone()));
        assert_eq!(address(identity("")), None);
        assert_eq!(
            address(identity("a@example.com")),
            Some(Ok(Email::parse("a@example.com").unwrap()))
        );
        assert_eq!(
            address(identity("a b@x")),
            Some(Err(EmailError::BadCharacter))
        );
    }

    #[test]
    fn a_persons_profile_is_made_once_for_all_their_assertions() {
        let people = People::default();
        let first = people.share(Identity::for_test("u1", "a@example.com", "s1", "t1"));
        let second = people.share(Identity::for_test("u1", "a@example.com", "s2", "t2"));
        let profile = |id: &Identity| match id.profile() {
            Some(Ok(profile)) => Arc::clone(profile),
            other => panic!("{other:?}"),
        };
        assert!(
            Arc::ptr_eq(&profile(&first), &profile(&second)),
            "one profile, shared"
        );
    }

    #[test]
    fn a_persons_assertions_share_one_person() {
        let people = People::default();
        let first = people.share(Identity::for_test("u1", "a@example.com", "s1", "t1"));
        let second = people.share(Identity::for_test("u1", "a@example.com", "s2", "t2"));
        assert!(Arc::ptr_eq(&first.person, &second.person));
        assert_eq!(
            (second.session_id(), second.token_id()),
            ("s2", "t2"),
            "the assertion's own claims are its own"
        );
        let other = people.share(Identity::for_test("u1", "b@example.com", "s1", "t3"));
        assert!(!Arc::ptr_eq(&first.person, &other.person));
        assert_eq!(people.len(), 2);
    }

    #[test]
    fn people_no_identity_holds_are_dropped() {
        let people = People::default();
        let kept = people.share(Identity::for_test("kept", "", "", ""));
        for n in 0..1000 {
            drop(people.share(Identity::for_test(&format!("u{n}"), "", "", "")));
        }
        assert!(people.len() <= 64, "{} people held", people.len());
        let again = people.share(Identity::for_test("kept", "", "", "t"));
        assert!(
            Arc::ptr_eq(&kept.person, &again.person),
            "one still in use is kept"
        );
    }

    #[test]
    fn an_identity_is_small() {
        // The cache holds one per assertion; who it is lives in `Person`
        // (the profile's pointer is held here too, see `profile`).
        assert!(size_of::<Identity>() <= 64, "{}", size_of::<Identity>());
    }
}
