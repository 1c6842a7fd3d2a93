//! The report signature: ECDSA P-384 / SHA-384 over the raw bytes 0x000..0x2A0.

use crate::error::SignatureError;
use crate::report::ParsedReport;
use p384::ecdsa::signature::Verifier;
use p384::ecdsa::{Signature, VerifyingKey};

/// Verifies the signature over the bytes as received. Hashing a re-encoded struct instead would
/// accept tampered reserved bytes that the struct does not carry. High-S signatures are
/// accepted: genuine AMD firmware makes them.
pub fn verify_report_signature(
    report: &ParsedReport,
    vcek: &VerifyingKey,
) -> Result<(), SignatureError> {
    let (r, s) = report.signature_scalars();
    let signature = Signature::from_scalars(r, s).map_err(|_| SignatureError::Malformed)?;
    vcek.verify(report.signed_bytes(), &signature)
        .map_err(|_| SignatureError::Invalid)
}
