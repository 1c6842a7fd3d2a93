//! Evidence verification for the node: the pure verifier plus a bounded cache of verified VCEK
//! chains, so the RSA-4096 chain work is paid once per machine and TCB rather than per request.
//! Only successes are cached, keyed by the SHA-256 of the exact certificate bytes (or, for a
//! VCEK the node had to fetch, of what it was fetched for), and a cached chain is re-checked
//! for validity at every use.
//!
//! The certificates come with the evidence when the host supplies them (GCP, hosts that load
//! them into the firmware, AWS's VLEK); when the table has no VCEK (stock QEMU on bare metal),
//! the node's [`CertificateSource`] gets it (AMD's KDS, mirrors, the offline store), and what
//! it gets is verified like a supplied certificate before it is used or kept.

use crate::ports::{CertSourceError, CertificateSource, VcekRefusal};
use sha2::Digest;
use snpkms_verifier::{
    CertError, CertificateBundle, Endorser, UnixTime, VerifiedReport, VerifiedVcek, Verifier,
    VerifyError,
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
        if self.capacity == 0 {
            return;
        }
        // A newer chain under the same key (a VCEK fetched again after the old one expired).
        if let Some(entry) = self.entries.get_mut(&key) {
            *entry = value;
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

    /// Verifies a report at `at` with the certificate table that came with it or, when that
    /// has no VCEK for a VCEK-signed report, with the VCEK `source` gets for it.
    pub async fn verify_or_fetch<S: CertificateSource>(
        &self,
        report: &[u8],
        cert_table: &[u8],
        at: UnixTime,
        source: &S,
    ) -> Result<VerifiedReport, EvidenceError> {
        // The usual case first and unchanged: the host supplied the certificates (the chain
        // cache is keyed by the table's hash, so a warm request parses nothing more).
        if !cert_table.is_empty() {
            match self.verify(report, cert_table, at) {
                Err(VerifyError::Certificate(CertError::MissingVcek)) => {}
                other => return Ok(other?),
            }
        }
        // A fetched VCEK is checked on its own against the pinned ASK: whatever else the
        // table holds (an ASK, an ARK) is the guest's and must not decide whether a stored
        // certificate other guests need is taken.
        let parsed = self.verifier.parse(report)?;
        let id = self.verifier.vcek_id(&parsed)?;
        let key: [u8; 32] = <sha2::Sha256 as sha2::Digest>::new()
            .chain_update(b"fetched VCEK")
            .chain_update([id.product.chain_id()])
            .chain_update(&id.hwid)
            .chain_update(id.tcb.encode(id.product))
            .finalize()
            .into();
        // A cached chain past its validity is fetched again (the KDS may have a newer VCEK);
        // one that fails for another reason fails below, as it would fresh.
        let cached = self
            .cached(&key)
            .filter(|chain| chain.check_validity(at.0).is_ok());
        let chain = match cached {
            Some(chain) => chain,
            None => {
                let hint = Some(id.product);
                let check = |der: &[u8]| -> Result<VerifiedVcek, VcekRefusal> {
                    let bad = |e: VerifyError| VcekRefusal::Certificate(e);
                    let certs = CertificateBundle {
                        vcek: CertificateBundle::from_endorsement(der)
                            .map_err(|e| bad(e.into()))?
                            .vcek,
                        ..CertificateBundle::default()
                    };
                    let chain = self
                        .verifier
                        .verify_chain(&certs, Endorser::Vcek, hint, at)
                        .map_err(bad)?;
                    chain.check_is(&id).map_err(|e| bad(e.into()))?;
                    // Before anything is kept: a forged report naming a real chip must not
                    // make the node store (or cache) that chip's VCEK at any TCB it likes.
                    snpkms_verifier::verify_report_signature(&parsed, chain.key())
                        .map_err(|e| VcekRefusal::Report(e.into()))?;
                    Ok(chain)
                };
                let chain = match source.vcek(&id, &check).await {
                    Ok(chain) => Arc::new(chain),
                    Err(CertSourceError::Report(e)) => return Err(EvidenceError::Invalid(e)),
                    Err(e) => return Err(e.into()),
                };
                self.cache
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key, chain.clone());
                chain
            }
        };
        Ok(self.verifier.verify_parsed(&parsed, &chain, at)?)
    }

    /// Verifies a report with the certificate table that came with it, at `at` (no fetching:
    /// a table without the VCEK fails).
    pub fn verify(
        &self,
        report: &[u8],
        cert_table: &[u8],
        at: UnixTime,
    ) -> Result<VerifiedReport, VerifyError> {
        let parsed = self.verifier.parse(report)?;
        let endorser = self.verifier.endorser(&parsed)?;
        // One table may hold a VCEK and a VLEK: the chain verified depends on which signed.
        let key: [u8; 32] = <sha2::Sha256 as sha2::Digest>::new()
            .chain_update([endorser as u8])
            .chain_update(cert_table)
            .finalize()
            .into();
        let chain = match self.cached(&key) {
            Some(chain) => chain,
            None => {
                let certs = CertificateBundle::from_cert_table(cert_table)?;
                let chain = Arc::new(self.verifier.verify_chain(
                    &certs,
                    endorser,
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

    /// The cached chain under `key`, counted as a hit or a miss.
    fn cached(&self, key: &[u8; 32]) -> Option<Arc<VerifiedVcek>> {
        let found = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// (hits, misses) of the chain cache.
    pub fn cache_stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}

/// Why evidence was not accepted: it failed verification, or the VCEK it needs could not be
/// had.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    /// The evidence (or a certificate fetched for it) failed a check.
    #[error(transparent)]
    Invalid(#[from] VerifyError),
    /// The VCEK could not be fetched, or what came back does not verify.
    #[error(transparent)]
    Certificates(#[from] CertSourceError),
}

impl From<snpkms_verifier::CertError> for EvidenceError {
    fn from(e: snpkms_verifier::CertError) -> Self {
        EvidenceError::Invalid(e.into())
    }
}
