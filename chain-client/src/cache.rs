//! Authorization decisions cached per BootInfo (keccak of the calldata; app and KMS decisions
//! apart), so that a warm decision costs no RPC call.
//!
//! Invariants: an entry is stored only if it was read at the block the follower is pinned to
//! when it is stored, so every event the follower processes after that applies to it (an entry
//! read at a block the follower has moved past would miss the events in between); it is served
//! only while the follower's view is healthy, recent and not stale (the caller checks), and for
//! at most `cache_ttl`; an event that may change it drops it ([`crate::follower`]).

use crate::BlockRef;
use alloy::primitives::{Address, B256};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// Which registry call a decision answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    App,
    Kms,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    pub kind: Kind,
    /// keccak256 of the calldata, which is the whole BootInfo.
    pub digest: B256,
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub allowed: bool,
    pub reason: String,
    /// The block it was read at.
    pub block: BlockRef,
    /// The app it is about (zero for KMS decisions).
    pub app: Address,
    pub inserted: Instant,
}

/// What the events since the last pinned block may have changed.
#[derive(Debug)]
pub(crate) enum Invalidation {
    Nothing,
    All(&'static str),
    Apps(HashSet<Address>),
}

#[derive(Debug, Default)]
pub(crate) struct DecisionCache {
    entries: HashMap<CacheKey, Entry>,
}

impl DecisionCache {
    /// A live entry (younger than `ttl`).
    pub fn get(&self, key: &CacheKey, ttl: Duration) -> Option<&Entry> {
        self.entries
            .get(key)
            .filter(|e| e.inserted.elapsed() <= ttl)
    }

    /// Stores `entry` if it was read at `pinned`, the block the follower is pinned to now.
    pub fn insert_if_current(
        &mut self,
        key: CacheKey,
        entry: Entry,
        pinned: Option<BlockRef>,
        ttl: Duration,
        capacity: usize,
    ) {
        if pinned != Some(entry.block) {
            return;
        }
        // BootInfos come from verified hardware, but memory is not free: at the bound, expired
        // entries go, and if none has, everything (simplest; each BootInfo reads once again).
        let capacity = capacity.max(1);
        if self.entries.len() >= capacity {
            self.entries.retain(|_, e| e.inserted.elapsed() <= ttl);
            if self.entries.len() >= capacity {
                self.entries.clear();
            }
        }
        self.entries.insert(key, entry);
    }

    /// Drops what `invalidation` names; returns how many entries went.
    pub fn apply(&mut self, invalidation: Invalidation) -> usize {
        match invalidation {
            Invalidation::Nothing => 0,
            Invalidation::All(why) => {
                tracing::debug!(why, entries = self.entries.len(), "decision cache cleared");
                let n = self.entries.len();
                self.entries.clear();
                n
            }
            Invalidation::Apps(apps) => {
                let before = self.entries.len();
                self.entries
                    .retain(|k, e| !(k.kind == Kind::App && apps.contains(&e.app)));
                before - self.entries.len()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(block: BlockRef, inserted: Instant) -> Entry {
        Entry {
            allowed: true,
            reason: String::new(),
            block,
            app: Address::ZERO,
            inserted,
        }
    }

    fn key(i: u8) -> CacheKey {
        CacheKey {
            kind: Kind::App,
            digest: B256::from([i; 32]),
        }
    }

    /// At the bound, expired entries go first; if none has expired, the cache starts over.
    #[test]
    fn the_bound_holds_expired_entries_first() {
        let block = BlockRef {
            number: 7,
            hash: B256::from([7; 32]),
        };
        let ttl = Duration::from_secs(60);
        let mut cache = DecisionCache::default();
        let old = Instant::now() - Duration::from_secs(120);
        cache.insert_if_current(key(1), entry(block, old), Some(block), ttl, 2);
        cache.insert_if_current(key(2), entry(block, Instant::now()), Some(block), ttl, 2);
        cache.insert_if_current(key(3), entry(block, Instant::now()), Some(block), ttl, 2);
        assert_eq!(cache.entries.len(), 2, "the expired one made room");
        assert!(cache.get(&key(2), ttl).is_some() && cache.get(&key(3), ttl).is_some());
        cache.insert_if_current(key(4), entry(block, Instant::now()), Some(block), ttl, 2);
        assert_eq!(cache.entries.len(), 1, "nothing expired: started over");
        assert!(cache.get(&key(4), ttl).is_some());
        // Read at another block than the pinned one: not stored.
        let other = BlockRef { number: 8, ..block };
        cache.insert_if_current(key(5), entry(other, Instant::now()), Some(block), ttl, 2);
        assert!(cache.get(&key(5), ttl).is_none());
    }
}
