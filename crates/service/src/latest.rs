//! The snapshot's table of the latest request per resource and person.
//!
//! Keyed by the request's own resource and email, so an entry holds no
//! copy of either (at 10,000 people the copies were 20,000 allocations per
//! reload), and a lookup borrows them instead of building a key. Hashed
//! with foldhash, seeded per process: SipHash over the two strings was 1.4%
//! of `GET /`'s CPU time (perf), for a page looking up each resource.

use std::hash::BuildHasher;
use std::sync::Arc;

use foldhash::fast::RandomState;
use hashbrown::HashTable;
use jit_domain::{Email, Request, ResourceName};

#[derive(Debug, Clone, Default)]
pub(crate) struct Latest {
    /// Each request with the store generation it reflects.
    table: HashTable<(u64, Arc<Request>)>,
    hasher: RandomState,
}

impl Latest {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            table: HashTable::with_capacity(capacity),
            hasher: RandomState::default(),
        }
    }

    pub(crate) fn get(
        &self,
        resource: &ResourceName,
        email: &Email,
    ) -> Option<&(u64, Arc<Request>)> {
        self.table.find(
            key_hash(&self.hasher, resource, email),
            is_for(resource, email),
        )
    }

    /// Puts `request` in as of `generation`, in place of the entry for the
    /// same resource and person.
    pub(crate) fn insert(&mut self, generation: u64, request: Arc<Request>) {
        let hasher = &self.hasher;
        let entry = self.table.entry(
            key_hash(hasher, &request.resource, &request.email),
            is_for(&request.resource, &request.email),
            |(_, r)| key_hash(hasher, &r.resource, &r.email),
        );
        entry.insert((generation, request));
    }

    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &(u64, Arc<Request>)> {
        self.table.iter()
    }
}

fn key_hash(hasher: &RandomState, resource: &ResourceName, email: &Email) -> u64 {
    hasher.hash_one((resource.as_str(), email.as_str()))
}

fn is_for<'a>(
    resource: &'a ResourceName,
    email: &'a Email,
) -> impl Fn(&(u64, Arc<Request>)) -> bool + 'a {
    move |(_, r)| r.resource == *resource && r.email == *email
}

#[cfg(test)]
mod tests {
    use jit_domain::{Ask, Rules};
    use time::OffsetDateTime;

    use super::*;

    fn request(resource: &str, email: &str) -> Arc<Request> {
        let rules = Rules {
            resource: ResourceName::parse(resource).unwrap(),
            ..Rules::default()
        };
        let email = Email::parse(email).unwrap();
        let moves = rules
            .request(None, &email, Ask::default(), OffsetDateTime::now_utc())
            .unwrap();
        Arc::new(moves.last().unwrap().request.clone())
    }

    #[test]
    fn one_entry_per_resource_and_person_the_last_put_in() {
        let mut latest = Latest::default();
        let first = request("app", "a@example.com");
        latest.insert(1, first.clone());
        latest.insert(1, request("db", "a@example.com"));
        latest.insert(1, request("app", "b@example.com"));
        let again = request("app", "a@example.com");
        latest.insert(2, again.clone());
        assert_eq!(latest.len(), 3);
        let app = ResourceName::parse("app").unwrap();
        let a = Email::parse("a@example.com").unwrap();
        let (generation, found) = latest.get(&app, &a).unwrap();
        assert_eq!(*generation, 2);
        assert!(Arc::ptr_eq(found, &again));
        assert!(
            latest
                .get(&app, &Email::parse("c@example.com").unwrap())
                .is_none()
        );
        // Grows past its first capacity and keeps every entry findable.
        for i in 0..1000 {
            latest.insert(3, request("app", &format!("p{i}@example.com")));
        }
        assert_eq!(latest.len(), 1003);
        assert!(latest.get(&app, &a).is_some());
    }
}
