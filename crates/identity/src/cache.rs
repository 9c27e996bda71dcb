//! Verified assertions remembered until they expire, so a user's repeated
//! requests with the same assertion skip the signature check.
//!
//! Keyed by SHA-256 of the exact token bytes: a hit means this byte string
//! was fully verified before. (ECDSA signatures are malleable, so a re-signed
//! variant is simply a miss and gets verified on its own.) A shard's table
//! hashes the digest with foldhash, seeded per process, not SipHash: the key
//! is a digest of a token Pomerium signed, and a lookup is on every request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use foldhash::fast::RandomState;

use crate::Identity;

/// SHA-256 of the token.
pub(crate) type TokenDigest = [u8; 32];

/// Shards keep concurrent lookups from queueing on one lock.
const MAX_SHARDS: usize = 16;

#[derive(Debug)]
struct Entry {
    identity: Arc<Identity>,
    /// Unix seconds after which the token is expired (`exp` + leeway).
    valid_until: i64,
    /// Key-set generation the token was verified under; see [`TokenCache::get`].
    generation: u64,
}

/// One shard's entries.
type Shard = HashMap<TokenDigest, Entry, RandomState>;

/// What a lookup found: on a hit, what the reader took from the identity.
#[derive(Debug)]
pub(crate) enum Lookup<T> {
    Hit(T),
    /// Verified before, but now past `exp` + leeway.
    Expired,
    Miss,
}

/// A bounded, sharded map from token digest to verified identity.
#[derive(Debug)]
pub(crate) struct TokenCache {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
}

impl TokenCache {
    /// Holds at most `capacity` entries; 0 disables caching.
    pub(crate) fn new(capacity: usize) -> Self {
        let shard_count = capacity.min(MAX_SHARDS);
        let per_shard = capacity.checked_div(shard_count).unwrap_or(0);
        // Grown as tokens arrive, not reserved: an idle service holds no
        // room for thousands of them.
        let shards = (0..shard_count)
            .map(|_| Mutex::new(Shard::default()))
            .collect();
        TokenCache { shards, per_shard }
    }

    fn shard(&self, key: &TokenDigest) -> Option<MutexGuard<'_, Shard>> {
        let count = self.shards.len();
        // Entries are self-contained; a panic elsewhere cannot leave one half-written.
        (count > 0).then(|| {
            self.shards[usize::from(key[0]) % count]
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        })
    }

    /// Looks the token up at Unix time `now`. Entries verified under an older
    /// key-set `generation` (a key has been withdrawn since) are dropped, so
    /// tokens signed by a removed key must verify afresh. `read` sees a hit's
    /// identity under the shard's lock.
    pub(crate) fn get<T>(
        &self,
        key: &TokenDigest,
        now: i64,
        generation: u64,
        read: impl FnOnce(&Arc<Identity>) -> T,
    ) -> Lookup<T> {
        let Some(mut shard) = self.shard(key) else {
            return Lookup::Miss;
        };
        let Some(entry) = shard.get(key) else {
            return Lookup::Miss;
        };
        if entry.generation != generation {
            shard.remove(key);
            Lookup::Miss
        } else if now > entry.valid_until {
            shard.remove(key);
            Lookup::Expired
        } else {
            Lookup::Hit(read(&entry.identity))
        }
    }

    /// Remembers a verified token until `valid_until`. A full shard first
    /// drops what is expired or stale, then the entry expiring soonest.
    pub(crate) fn insert(
        &self,
        key: TokenDigest,
        identity: Arc<Identity>,
        valid_until: i64,
        generation: u64,
        now: i64,
    ) {
        let Some(mut shard) = self.shard(&key) else {
            return;
        };
        if shard.len() >= self.per_shard && !shard.contains_key(&key) {
            shard.retain(|_, e| e.valid_until >= now && e.generation == generation);
            if shard.len() >= self.per_shard
                && let Some(soonest) = shard
                    .iter()
                    .min_by_key(|(_, e)| e.valid_until)
                    .map(|(k, _)| *k)
            {
                shard.remove(&soonest);
            }
        }
        shard.insert(
            key,
            Entry {
                identity,
                valid_until,
                generation,
            },
        );
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap().len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(user: &str) -> Arc<Identity> {
        Arc::new(Identity::for_test(user, "", "", ""))
    }

    /// Digests whose first byte is 0 all land in one shard, to exercise eviction.
    fn key(n: u8) -> TokenDigest {
        let mut k = [0u8; 32];
        k[1] = n;
        k
    }

    /// The lookup, reading the user of a hit.
    fn get(cache: &TokenCache, key: &TokenDigest, now: i64, generation: u64) -> Lookup<String> {
        cache.get(key, now, generation, |id| id.user().to_owned())
    }

    fn user_of(lookup: Lookup<String>) -> Option<String> {
        match lookup {
            Lookup::Hit(user) => Some(user),
            _ => None,
        }
    }

    #[test]
    fn hit_until_expiry_then_expired() {
        let cache = TokenCache::new(100);
        cache.insert(key(1), identity("a"), 1000, 0, 900);
        assert_eq!(user_of(get(&cache, &key(1), 1000, 0)).as_deref(), Some("a"));
        assert!(matches!(get(&cache, &key(1), 1001, 0), Lookup::Expired));
        assert!(
            matches!(get(&cache, &key(1), 1000, 0), Lookup::Miss),
            "expired entry removed"
        );
    }

    #[test]
    fn a_newer_key_generation_invalidates() {
        let cache = TokenCache::new(100);
        cache.insert(key(1), identity("a"), 1000, 3, 900);
        assert!(matches!(get(&cache, &key(1), 900, 4), Lookup::Miss));
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn bounded_and_evicts_expired_first_then_soonest() {
        let cache = TokenCache::new(32); // 16 shards of 2
        cache.insert(key(1), identity("expired"), 100, 0, 50);
        cache.insert(key(2), identity("late"), 5000, 0, 50);
        cache.insert(key(3), identity("new"), 4000, 0, 200);
        assert!(
            matches!(get(&cache, &key(1), 200, 0), Lookup::Miss),
            "expired one evicted"
        );
        cache.insert(key(4), identity("newest"), 4500, 0, 200);
        assert!(
            matches!(get(&cache, &key(3), 200, 0), Lookup::Miss),
            "soonest expiry evicted"
        );
        assert!(user_of(get(&cache, &key(2), 200, 0)).is_some());
        assert!(user_of(get(&cache, &key(4), 200, 0)).is_some());

        let small = TokenCache::new(3);
        for n in 0..100u16 {
            let mut k = [0u8; 32];
            k[..2].copy_from_slice(&n.to_be_bytes());
            small.insert(k, identity("x"), 1000 + i64::from(n), 0, 0);
        }
        assert!(small.len() <= 3);
    }

    #[test]
    fn zero_capacity_disables() {
        let cache = TokenCache::new(0);
        cache.insert(key(1), identity("a"), 1000, 0, 0);
        assert!(matches!(get(&cache, &key(1), 0, 0), Lookup::Miss));
    }
}
