//! Single-use challenges. A nonce is removed atomically when used, so two requests can never
//! both consume it; expired ones are refused and swept.

use crate::store::StoreError;
use rand::RngCore;
use std::sync::atomic::{AtomicUsize, Ordering};

pub const NONCE_LEN: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NonceError {
    #[error("nonce must be {NONCE_LEN} bytes, got {0}")]
    Length(usize),
    #[error("unknown or already used nonce: get a fresh one with GetChallenge")]
    Unknown,
    #[error("nonce expired at {expired_at} (now {now}): get a fresh one with GetChallenge")]
    Expired { expired_at: u64, now: u64 },
    #[error("too many outstanding challenges ({0}); retry later")]
    TooMany(usize),
}

pub struct NonceStore {
    tree: sled::Tree,
    ttl_secs: u64,
    max_outstanding: usize,
    outstanding: AtomicUsize,
}

impl NonceStore {
    pub fn new(tree: sled::Tree, ttl_secs: u64, max_outstanding: usize) -> NonceStore {
        let outstanding = AtomicUsize::new(tree.len());
        NonceStore {
            tree,
            ttl_secs,
            max_outstanding,
            outstanding,
        }
    }

    /// Issues a nonce valid until `now + ttl`.
    pub fn issue(&self, now: u64) -> Result<([u8; NONCE_LEN], u64), NonceStoreError> {
        let n = self.outstanding.load(Ordering::Relaxed);
        if n >= self.max_outstanding {
            return Err(NonceError::TooMany(n).into());
        }
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let expires_at = now + self.ttl_secs;
        self.tree.insert(nonce, &expires_at.to_be_bytes())?;
        self.outstanding.fetch_add(1, Ordering::Relaxed);
        Ok((nonce, expires_at))
    }

    /// Consumes `nonce`: succeeds once, for an unexpired nonce this node issued.
    pub fn consume(&self, nonce: &[u8], now: u64) -> Result<(), NonceStoreError> {
        if nonce.len() != NONCE_LEN {
            return Err(NonceError::Length(nonce.len()).into());
        }
        let Some(value) = self.tree.remove(nonce)? else {
            return Err(NonceError::Unknown.into());
        };
        self.outstanding.fetch_sub(1, Ordering::Relaxed);
        let expired_at = expiry(&value);
        if now > expired_at {
            return Err(NonceError::Expired { expired_at, now }.into());
        }
        Ok(())
    }

    /// Removes expired nonces; returns how many.
    pub fn sweep(&self, now: u64) -> Result<usize, StoreError> {
        let mut removed = 0;
        for item in self.tree.iter() {
            let (key, value) = item?;
            if now > expiry(&value) && self.tree.remove(&key)?.is_some() {
                self.outstanding.fetch_sub(1, Ordering::Relaxed);
                removed += 1;
            }
        }
        Ok(removed)
    }

    pub fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Relaxed)
    }
}

fn expiry(value: &[u8]) -> u64 {
    // Values are written only by `issue`; anything else is treated as long expired.
    value.try_into().map(u64::from_be_bytes).unwrap_or(0)
}

#[derive(Debug, thiserror::Error)]
pub enum NonceStoreError {
    #[error(transparent)]
    Nonce(#[from] NonceError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sled::Error> for NonceStoreError {
    fn from(e: sled::Error) -> Self {
        NonceStoreError::Store(e.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(max: usize) -> (tempfile::TempDir, NonceStore) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new()
            .temporary(true)
            .path(dir.path())
            .open()
            .unwrap();
        let tree = db.open_tree("nonces").unwrap();
        (dir, NonceStore::new(tree, 60, max))
    }

    fn nonce_err(r: Result<(), NonceStoreError>) -> NonceError {
        match r {
            Err(NonceStoreError::Nonce(e)) => e,
            other => panic!("expected a nonce error, got {other:?}"),
        }
    }

    #[test]
    fn single_use_and_expiry() {
        let (_d, s) = store(10);
        let (n, exp) = s.issue(1000).unwrap();
        assert_eq!(exp, 1060);
        s.consume(&n, 1010).unwrap();
        assert_eq!(nonce_err(s.consume(&n, 1010)), NonceError::Unknown);
        let (n, _) = s.issue(1000).unwrap();
        assert_eq!(
            nonce_err(s.consume(&n, 1061)),
            NonceError::Expired {
                expired_at: 1060,
                now: 1061
            }
        );
        assert_eq!(nonce_err(s.consume(&[0; 32], 1000)), NonceError::Unknown);
        assert_eq!(nonce_err(s.consume(&[0; 31], 1000)), NonceError::Length(31));
    }

    #[test]
    fn bounded_and_swept() {
        let (_d, s) = store(2);
        s.issue(1000).unwrap();
        s.issue(1000).unwrap();
        assert!(matches!(
            s.issue(1000),
            Err(NonceStoreError::Nonce(NonceError::TooMany(2)))
        ));
        assert_eq!(s.sweep(1061).unwrap(), 2);
        assert_eq!(s.outstanding(), 0);
        s.issue(1061).unwrap();
    }
}
