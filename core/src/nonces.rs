//! Single-use challenges, held in memory. A nonce is removed atomically when used, so two
//! requests can never both consume it; expired ones are refused and swept. Not persisted on
//! purpose: a restart forgets every outstanding challenge, so no report made for one can be
//! replayed against the restarted node (a persisted store could bring back a nonce whose
//! removal had not reached the disk), and consuming one costs no write.

use rand::RngCore;
use std::collections::HashMap;
use std::sync::Mutex;

/// Length of a challenge.
pub const NONCE_LEN: usize = 32;

/// Why a challenge is not issued or not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NonceError {
    /// A nonce of another length.
    #[error("nonce must be {NONCE_LEN} bytes, got {0}")]
    Length(usize),
    /// Never issued, already used, or forgotten by a restart.
    #[error("unknown or already used nonce: get a fresh one with GetChallenge")]
    Unknown,
    /// Issued, but its lifetime is over.
    #[error("nonce expired at {expired_at} (now {now}): get a fresh one with GetChallenge")]
    Expired {
        /// When it expired (Unix seconds).
        expired_at: u64,
        /// Now.
        now: u64,
    },
    /// The table of outstanding challenges is full.
    #[error("too many outstanding challenges ({0}); retry later")]
    TooMany(usize),
}

pub struct NonceStore {
    /// Nonce -> expiry (Unix seconds).
    outstanding: Mutex<HashMap<[u8; NONCE_LEN], u64>>,
    ttl_secs: u64,
    max_outstanding: usize,
}

impl NonceStore {
    pub fn new(ttl_secs: u64, max_outstanding: usize) -> NonceStore {
        NonceStore {
            outstanding: Mutex::new(HashMap::new()),
            ttl_secs,
            max_outstanding,
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; NONCE_LEN], u64>> {
        self.outstanding.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Issues a nonce valid until `now + ttl`.
    pub fn issue(&self, now: u64) -> Result<([u8; NONCE_LEN], u64), NonceError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let expires_at = now + self.ttl_secs;
        let mut map = self.map();
        if map.len() >= self.max_outstanding {
            return Err(NonceError::TooMany(map.len()));
        }
        map.insert(nonce, expires_at);
        Ok((nonce, expires_at))
    }

    /// Consumes `nonce`: succeeds once, for an unexpired nonce this node issued.
    pub fn consume(&self, nonce: &[u8], now: u64) -> Result<(), NonceError> {
        let nonce: &[u8; NONCE_LEN] = nonce
            .try_into()
            .map_err(|_| NonceError::Length(nonce.len()))?;
        let expired_at = self.map().remove(nonce).ok_or(NonceError::Unknown)?;
        if now > expired_at {
            return Err(NonceError::Expired { expired_at, now });
        }
        Ok(())
    }

    /// Removes expired nonces; returns how many. Also gives back the room of a past burst: a
    /// hash table never shrinks on its own, and the tombstones that removals leave make it
    /// double after some ten fill-and-drain cycles even when it never holds more (BENCHMARKS.md).
    pub fn sweep(&self, now: u64) -> usize {
        let mut map = self.map();
        let before = map.len();
        map.retain(|_, expires_at| now <= *expires_at);
        if map.capacity() > 4 * map.len() {
            let keep = 2 * map.len();
            map.shrink_to(keep);
        }
        before - map.len()
    }

    pub fn outstanding(&self) -> usize {
        self.map().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_use_and_expiry() {
        let s = NonceStore::new(60, 10);
        let (n, exp) = s.issue(1000).unwrap();
        assert_eq!(exp, 1060);
        s.consume(&n, 1010).unwrap();
        assert_eq!(s.consume(&n, 1010), Err(NonceError::Unknown));
        let (n, _) = s.issue(1000).unwrap();
        assert_eq!(
            s.consume(&n, 1061),
            Err(NonceError::Expired {
                expired_at: 1060,
                now: 1061
            })
        );
        // An expired nonce is gone too, not left for a second try.
        assert_eq!(s.consume(&n, 1000), Err(NonceError::Unknown));
        assert_eq!(s.consume(&[0; 32], 1000), Err(NonceError::Unknown));
        assert_eq!(s.consume(&[0; 31], 1000), Err(NonceError::Length(31)));
    }

    #[test]
    fn a_drained_table_is_shrunk_by_the_sweep() {
        let s = NonceStore::new(60, 100_000);
        let issued: Vec<_> = (0..10_000).map(|_| s.issue(1000).unwrap().0).collect();
        for n in &issued {
            s.consume(n, 1000).unwrap();
        }
        assert!(s.map().capacity() >= 10_000);
        s.sweep(1000);
        assert!(s.map().capacity() < 100, "{}", s.map().capacity());
    }

    #[test]
    fn bounded_and_swept() {
        let s = NonceStore::new(60, 2);
        s.issue(1000).unwrap();
        s.issue(1030).unwrap();
        assert_eq!(s.issue(1000), Err(NonceError::TooMany(2)));
        assert_eq!(s.sweep(1061), 1);
        assert_eq!(s.outstanding(), 1);
        s.issue(1061).unwrap();
        assert_eq!(s.sweep(1122), 2);
        assert_eq!(s.outstanding(), 0);
    }
}
