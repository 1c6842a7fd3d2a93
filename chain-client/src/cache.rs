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

/// Bound on cached decisions; BootInfos come from verified hardware, but memory is not free.
const MAX_ENTRIES: usize = 10_000;

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
    ) {
        if pinned != Some(entry.block) {
            return;
        }
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.retain(|_, e| e.inserted.elapsed() <= ttl);
            if self.entries.len() >= MAX_ENTRIES {
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
