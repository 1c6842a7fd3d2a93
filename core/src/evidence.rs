//! Evidence verification for the node: the pure verifier plus a bounded cache of verified VCEK
//! chains, so the RSA-4096 chain work is paid once per machine and TCB rather than per request.
//! Only successes are cached, keyed by the SHA-256 of the exact certificate bytes, and a
//! cached chain is re-checked for validity at every use.

use snpkms_verifier::{
    CertificateBundle, UnixTime, VerifiedReport, VerifiedVcek, Verifier, VerifyError,
};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The verifier and its cache of verified certificate chains.
pub struct EvidenceVerifier {
    verifier: Verifier,
    cache: Mutex<ChainCache>,
    hits: AtomicU64,
    misses: AtomicU64,
}

struct ChainCache {
    capacity: usize,
    entries: HashMap<[u8; 32], Arc<VerifiedVcek>>,
    order: VecDeque<[u8; 32]>,
}

impl ChainCache {
    fn get(&self, key: &[u8; 32]) -> Option<Arc<VerifiedVcek>> {
        self.entries.get(key).cloned()
    }

    fn insert(&mut self, key: [u8; 32], value: Arc<VerifiedVcek>) {
        if self.capacity == 0 || self.entries.contains_key(&key) {
            return;
        }
        while self.entries.len() >= self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.entries.remove(&old);
                }
                None => break,
            }
        }
        self.entries.insert(key, value);
        self.order.push_back(key);
    }
}

impl EvidenceVerifier {
    /// Keeps up to `cache_capacity` verified chains.
    pub fn new(verifier: Verifier, cache_capacity: usize) -> EvidenceVerifier {
        EvidenceVerifier {
            verifier,
            cache: Mutex::new(ChainCache {
                capacity: cache_capacity,
                entries: HashMap::new(),
                order: VecDeque::new(),
            }),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The verifier (its roots and policy).
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// Verifies a report with the certificate table that came with it, at `at`.
    pub fn verify(
        &self,
        report: &[u8],
        cert_table: &[u8],
        at: UnixTime,
    ) -> Result<VerifiedReport, VerifyError> {
        let parsed = self.verifier.parse(report)?;
        let key: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(cert_table).into();
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key);
        let chain = match cached {
            Some(chain) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                chain
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                let certs = CertificateBundle::from_cert_table(cert_table)?;
                let chain = Arc::new(self.verifier.verify_chain(
                    &certs,
                    self.verifier.product_hint(&parsed)?,
                    at,
                )?);
                self.cache
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key, chain.clone());
                chain
            }
        };
        self.verifier.verify_parsed(&parsed, &chain, at)
    }

    /// (hits, misses) of the chain cache.
    pub fn cache_stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}
