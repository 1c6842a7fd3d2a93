//! The report signature: ECDSA P-384 / SHA-384 over the raw bytes 0x000..0x2A0.
//!
//! Verified with aws-lc-rs, which does it about 5x faster than RustCrypto's `p384` on the
//! machines measured (BENCHMARKS.md), and verification is most of a key release's CPU. The
//! RustCrypto path is kept as [`verify_report_signature_reference`]: the differential tests
//! and the `report_verify` fuzz target check that both libraries decide alike on every input.

use crate::error::{CertError, SignatureError};
use crate::report::ParsedReport;
use aws_lc_rs::signature::{ParsedPublicKey, ECDSA_P384_SHA384_FIXED};
use p384::ecdsa::signature::Verifier;
use p384::ecdsa::{Signature, VerifyingKey};

/// A VCEK's (or VLEK's) public key, held in the forms both libraries verify with, so a cached
/// verified chain never parses it again.
#[derive(Clone)]
pub struct ReportKey {
    fast: ParsedPublicKey,
    reference: VerifyingKey,
}

impl ReportKey {
    /// From a P-384 public key already decoded (and so known to be a point on the curve).
    pub fn new(key: VerifyingKey) -> Result<ReportKey, CertError> {
        let point = key.to_encoded_point(false);
        let fast = ParsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, point.as_bytes())
            .map_err(|e| CertError::VcekKey(format!("aws-lc-rs refuses the key: {e}")))?;
        Ok(ReportKey {
            fast,
            reference: key,
        })
    }

    /// The key as RustCrypto holds it.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.reference
    }
}

impl std::fmt::Debug for ReportKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let point = self.reference.to_encoded_point(false);
        f.debug_tuple("ReportKey")
            .field(&hex::encode(point.as_bytes()))
            .finish()
    }
}

/// r and s, each checked to be a scalar in 1..n (so a malformed signature is named as such
/// whichever library then verifies it).
fn scalars(report: &ParsedReport) -> Result<Signature, SignatureError> {
    let (r, s) = report.signature_scalars();
    Signature::from_scalars(r, s).map_err(|_| SignatureError::Malformed)
}

/// Verifies the signature over the bytes as received. Hashing a re-encoded struct instead would
/// accept tampered reserved bytes that the struct does not carry. High-S signatures are
/// accepted: genuine AMD firmware makes them.
pub fn verify_report_signature(
    report: &ParsedReport,
    key: &ReportKey,
) -> Result<(), SignatureError> {
    scalars(report)?;
    let (r, s) = report.signature_scalars();
    let mut fixed = [0u8; 96];
    fixed[..48].copy_from_slice(&r);
    fixed[48..].copy_from_slice(&s);
    key.fast
        .verify_sig(report.signed_bytes(), &fixed)
        .map_err(|_| SignatureError::Invalid)
}

/// The same check with RustCrypto's `p384`: the reference the fast path is tested against.
pub fn verify_report_signature_reference(
    report: &ParsedReport,
    key: &ReportKey,
) -> Result<(), SignatureError> {
    let signature = scalars(report)?;
    key.reference
        .verify(report.signed_bytes(), &signature)
        .map_err(|_| SignatureError::Invalid)
}
