//! Short-lived caches of Dust listings, one entry per principal.
//!
//! Some tools read the same Dust listing on every call (the agent list for `list_agents`, the
//! agents resource and prompt completions; the knowledge-base list to find a data source's
//! space). A few seconds of reuse turns a burst of calls into one Dust request. Entries are
//! keyed by the principal's `user_id`, the pseudonymous id of its Dust key and workspace
//! ([`crate::auth::Principal::user_id_for_key`]): two keys never share an entry, because two
//! keys may see different agents and spaces. Only successful listings are kept; the cache
//! holds at most `capacity` principals (expired entries go first, then the oldest), and expired
//! entries are swept once per TTL as listings are stored: without the sweep, a listing stayed
//! until the cache was full, so a server that had seen 10,000 principals held 10,000 stale
//! listings (each as large as the workspace's agent list) however few were still in use.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// Principals a cache holds at most: beyond it, the oldest entry makes room.
pub const CACHE_CAPACITY: usize = 10_000;

/// A per-principal cache of one listing, for `ttl`. A zero `ttl` turns it off.
#[derive(Debug)]
pub struct PrincipalCache<T> {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<Entries<T>>,
}

#[derive(Debug)]
struct Entries<T> {
    map: HashMap<String, (Instant, Arc<T>)>,
    /// When expired entries were last swept out.
    swept_at: Instant,
}

impl<T> PrincipalCache<T> {
    #[must_use]
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity: capacity.max(1),
            entries: Mutex::new(Entries {
                map: HashMap::new(),
                swept_at: Instant::now(),
            }),
        }
    }

    /// How long a listing is reused.
    #[must_use]
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The listing of `user_id`, if one younger than the TTL is held.
    pub fn get(&self, user_id: &str) -> Option<Arc<T>> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.lock().ok()?;
        let (at, value) = entries.map.get(user_id)?;
        (at.elapsed() < self.ttl).then(|| value.clone())
    }

    /// Keeps `value` as the listing of `user_id`.
    pub fn put(&self, user_id: &str, value: Arc<T>) {
        if self.ttl.is_zero() {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        let ttl = self.ttl;
        if entries.swept_at.elapsed() >= ttl {
            entries.map.retain(|_, (at, _)| at.elapsed() < ttl);
            entries.swept_at = Instant::now();
        }
        let entries = &mut entries.map;
        if entries.len() >= self.capacity && !entries.contains_key(user_id) {
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
            if entries.len() >= self.capacity
                && let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(k, _)| k.clone())
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(user_id.to_owned(), (Instant::now(), value));
    }

    /// How many principals are held, expired entries not yet evicted included.
    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.map.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_principal_sees_its_own_entry() {
        let cache = PrincipalCache::new(Duration::from_secs(30), 10);
        cache.put("usr_a", Arc::new(vec!["agent-a"]));
        cache.put("usr_b", Arc::new(vec!["agent-b"]));
        assert_eq!(*cache.get("usr_a").unwrap(), vec!["agent-a"]);
        assert_eq!(*cache.get("usr_b").unwrap(), vec!["agent-b"]);
        assert!(cache.get("usr_c").is_none());
    }

    #[test]
    fn an_entry_expires_after_the_ttl() {
        let cache = PrincipalCache::new(Duration::from_millis(40), 10);
        cache.put("usr_a", Arc::new(1));
        assert_eq!(cache.get("usr_a").as_deref(), Some(&1));
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.get("usr_a").is_none());
    }

    /// Expired listings leave as new ones are stored, even far below the capacity.
    #[test]
    fn expired_entries_are_swept_once_per_ttl() {
        let cache = PrincipalCache::new(Duration::from_millis(40), 100);
        cache.put("usr_a", Arc::new(1));
        cache.put("usr_b", Arc::new(2));
        std::thread::sleep(Duration::from_millis(60));
        cache.put("usr_c", Arc::new(3));
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.get("usr_c").as_deref(), Some(&3));
    }

    #[test]
    fn a_zero_ttl_keeps_nothing() {
        let cache = PrincipalCache::new(Duration::ZERO, 10);
        cache.put("usr_a", Arc::new(1));
        assert!(cache.get("usr_a").is_none());
        assert!(cache.is_empty());
    }

    #[test]
    fn the_cache_is_bounded_and_evicts_the_oldest() {
        let cache = PrincipalCache::new(Duration::from_secs(30), 3);
        for (i, user) in ["usr_a", "usr_b", "usr_c"].into_iter().enumerate() {
            cache.put(user, Arc::new(i));
            std::thread::sleep(Duration::from_millis(2));
        }
        cache.put("usr_d", Arc::new(3));
        assert_eq!(cache.len(), 3);
        assert!(cache.get("usr_a").is_none(), "the oldest entry made room");
        assert_eq!(cache.get("usr_d").as_deref(), Some(&3));
        // Refreshing a held principal never evicts another one.
        cache.put("usr_b", Arc::new(10));
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get("usr_c").as_deref(), Some(&2));
    }
}
