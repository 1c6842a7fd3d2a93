//! Single-use challenges that cost the node no memory until they are used. A nonce is
//! `generation (4) || expires_at (8) || random (4) || MAC (16)`, the MAC (HMAC-SHA256, cut to
//! 16 bytes) under the key of its generation, a random key made in memory. Issuing one stores
//! nothing, so no number of GetChallenge calls fills anything. Using one records it in its
//! generation's set of used nonces, so it is accepted once.
//!
//! Generations turn over when the current one is a TTL old or the used sets reach the bound: a
//! nonce is accepted only under the current or the previous generation, whose used sets are
//! kept whole, so single use never depends on the clock, which the host controls (a clock set
//! back cannot bring a used nonce back, as forgetting used nonces at their expiry would). The
//! previous generation is dropped a TTL after it ended (monotonic clock), and the wall-clock
//! expiry the client is told is checked too. Not persisted on purpose: a restart
//! makes new keys, so no report made for an earlier challenge is accepted afterwards.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Length of a challenge.
pub const NONCE_LEN: usize = 32;
const MAC_LEN: usize = 16;
const BODY_LEN: usize = NONCE_LEN - MAC_LEN;

/// Why a challenge is not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NonceError {
    /// A nonce of another length.
    #[error("nonce must be {NONCE_LEN} bytes, got {0}")]
    Length(usize),
    /// Never issued by this node, already used, or from before a restart or two generations
    /// ago.
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
}

struct Generation {
    id: u32,
    key: [u8; 32],
    started: Instant,
    /// When it stopped issuing nonces.
    ended: Option<Instant>,
    used: HashSet<[u8; NONCE_LEN]>,
}

impl Generation {
    fn new(id: u32) -> Generation {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Generation {
            id,
            key,
            started: Instant::now(),
            ended: None,
            used: HashSet::new(),
        }
    }

    fn mac(&self, body: &[u8]) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        mac.update(body);
        mac
    }
}

struct Generations {
    current: Generation,
    previous: Option<Generation>,
}

/// Issues and consumes challenges.
pub struct NonceStore {
    state: Mutex<Generations>,
    ttl_secs: u64,
    /// Used nonces remembered at most (both generations together).
    max_used: usize,
}

impl NonceStore {
    /// Challenges valid `ttl_secs`; at most `max_used` used ones remembered, after which
    /// generations turn over sooner (outstanding challenges two generations old are then
    /// refused, and their clients ask again).
    pub fn new(ttl_secs: u64, max_used: usize) -> NonceStore {
        NonceStore {
            state: Mutex::new(Generations {
                current: Generation::new(0),
                previous: None,
            }),
            ttl_secs,
            max_used: max_used.max(2),
        }
    }

    /// The state, with the generations turned over if due.
    fn lock(&self) -> std::sync::MutexGuard<'_, Generations> {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.turn_over_if_due(&mut g);
        g
    }

    fn turn_over_if_due(&self, g: &mut Generations) {
        let ttl = Duration::from_secs(self.ttl_secs);
        // Full counts both generations: nonces stocked in one and spent once it is the
        // previous one must not grow the memory past the bound either.
        let full = g.current.used.len() >= self.max_used / 2 || Self::count(g) >= self.max_used;
        if full || g.current.started.elapsed() >= ttl {
            let next = Generation::new(g.current.id.wrapping_add(1));
            let mut old = std::mem::replace(&mut g.current, next);
            old.ended = Some(Instant::now());
            g.previous = Some(old);
        }
        // Every nonce of the previous generation was issued before it ended: a TTL after
        // that, all are past their time by the monotonic clock too, whatever the wall clock
        // says.
        if g.previous
            .as_ref()
            .and_then(|p| p.ended)
            .is_some_and(|ended| ended.elapsed() >= ttl)
        {
            g.previous = None;
        }
    }

    fn count(g: &Generations) -> usize {
        g.current.used.len() + g.previous.as_ref().map_or(0, |p| p.used.len())
    }

    /// Issues a nonce valid until `now + ttl` (Unix seconds). Stores nothing.
    pub fn issue(&self, now: u64) -> ([u8; NONCE_LEN], u64) {
        let expires_at = now.saturating_add(self.ttl_secs);
        let g = self.lock();
        let mut nonce = [0u8; NONCE_LEN];
        nonce[..4].copy_from_slice(&g.current.id.to_be_bytes());
        nonce[4..12].copy_from_slice(&expires_at.to_be_bytes());
        rand::rngs::OsRng.fill_bytes(&mut nonce[12..BODY_LEN]);
        let tag = g.current.mac(&nonce[..BODY_LEN]).finalize().into_bytes();
        nonce[BODY_LEN..].copy_from_slice(&tag[..MAC_LEN]);
        (nonce, expires_at)
    }

    /// Consumes `nonce`: succeeds once, for an unexpired nonce this node issued in the current
    /// or the previous generation.
    pub fn consume(&self, nonce: &[u8], now: u64) -> Result<(), NonceError> {
        let nonce: &[u8; NONCE_LEN] = nonce
            .try_into()
            .map_err(|_| NonceError::Length(nonce.len()))?;
        let (body, tag) = nonce.split_at(BODY_LEN);
        let id = u32::from_be_bytes(body[..4].try_into().expect("4 bytes"));
        let expired_at = u64::from_be_bytes(body[4..12].try_into().expect("8 bytes"));
        let mut g = self.lock();
        let Generations { current, previous } = &mut *g;
        let generation = if current.id == id {
            current
        } else {
            previous
                .as_mut()
                .filter(|p| p.id == id)
                .ok_or(NonceError::Unknown)?
        };
        generation
            .mac(body)
            .verify_truncated_left(tag)
            .map_err(|_| NonceError::Unknown)?;
        if now > expired_at {
            return Err(NonceError::Expired { expired_at, now });
        }
        if !generation.used.insert(*nonce) {
            return Err(NonceError::Unknown);
        }
        Ok(())
    }

    /// Turns generations over when due, dropping the used set of the one before; returns how
    /// many used nonces were forgotten.
    pub fn sweep(&self) -> usize {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let before = Self::count(&g);
        self.turn_over_if_due(&mut g);
        before.saturating_sub(Self::count(&g))
    }

    /// Used nonces remembered (both generations).
    pub fn remembered(&self) -> usize {
        Self::count(&self.lock())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_use_and_expiry() {
        let s = NonceStore::new(60, 10);
        let (n, exp) = s.issue(1000);
        assert_eq!(exp, 1060);
        s.consume(&n, 1010).unwrap();
        assert_eq!(s.consume(&n, 1010), Err(NonceError::Unknown));
        // A clock set back does not bring it back.
        assert_eq!(s.consume(&n, 0), Err(NonceError::Unknown));
        let (n, _) = s.issue(1000);
        assert_eq!(
            s.consume(&n, 1061),
            Err(NonceError::Expired {
                expired_at: 1060,
                now: 1061
            })
        );
        assert_eq!(s.consume(&[0; 32], 1000), Err(NonceError::Unknown));
        assert_eq!(s.consume(&[0; 31], 1000), Err(NonceError::Length(31)));
    }

    #[test]
    fn a_forged_or_altered_nonce_is_unknown() {
        let s = NonceStore::new(60, 10);
        let (n, _) = s.issue(1000);
        // A later expiry, or any other bit changed, breaks the MAC.
        for i in [4, 11, 12, 16, 31] {
            let mut m = n;
            m[i] ^= 1;
            assert_eq!(s.consume(&m, 1000), Err(NonceError::Unknown), "byte {i}");
        }
        // Another node (or this one before a restart) has other keys.
        let other = NonceStore::new(60, 10);
        assert_eq!(other.consume(&n, 1000), Err(NonceError::Unknown));
        s.consume(&n, 1000).unwrap();
    }

    #[test]
    fn issuing_stores_nothing_and_use_is_bounded() {
        let s = NonceStore::new(60, 4);
        for _ in 0..100_000 {
            s.issue(1000);
        }
        assert_eq!(s.remembered(), 0, "challenges cost nothing until used");
        // Using them turns generations over at half the bound: memory stays bounded, and a
        // nonce two generations old is refused rather than forgotten and accepted again.
        let first = s.issue(1000).0;
        s.consume(&first, 1000).unwrap();
        for _ in 0..10 {
            let (n, _) = s.issue(1000);
            s.consume(&n, 1000).unwrap();
            assert!(s.remembered() <= 4, "{}", s.remembered());
        }
        assert_eq!(s.consume(&first, 1000), Err(NonceError::Unknown));
    }

    #[test]
    fn nonces_stocked_in_one_generation_and_spent_in_the_next_stay_bounded() {
        let s = NonceStore::new(60, 4);
        let stock: Vec<_> = (0..10).map(|_| s.issue(1000).0).collect();
        // Fill the generation they belong to: it becomes the previous one.
        for _ in 0..2 {
            let (n, _) = s.issue(1000);
            s.consume(&n, 1000).unwrap();
        }
        let mut refused = 0;
        for n in &stock {
            match s.consume(n, 1000) {
                Ok(()) => {}
                Err(NonceError::Unknown) => refused += 1,
                Err(e) => panic!("{e}"),
            }
            assert!(s.remembered() <= 4, "{}", s.remembered());
        }
        assert!(refused > 0, "the stock outlived its generation");
    }

    #[test]
    fn a_nonce_of_the_previous_generation_is_still_good() {
        let s = NonceStore::new(60, 4);
        let (old, _) = s.issue(1000);
        let (a, _) = s.issue(1000);
        s.consume(&a, 1000).unwrap();
        let (b, _) = s.issue(1000);
        s.consume(&b, 1000).unwrap(); // the generation is now full: the next lock turns over
        let (c, _) = s.issue(1000);
        assert_ne!(c[..4], old[..4], "a new generation");
        s.consume(&old, 1000).unwrap();
        assert_eq!(s.consume(&old, 1000), Err(NonceError::Unknown));
    }
}
