//! `snpkms node bootstrap`: the birth of a deployment's root secret, inside the first node's TEE.

use crate::config::NodeConfig;
use crate::sealed_secret::SealedUnder;
use crate::security::{ConfigDigest, SecuritySettings};
use crate::store::Store;
use crate::{platform, sealed_secret, NodeError};
use serde::Serialize;
use sha2::{Digest, Sha512};
use snpkms_core::keys::RootSecret;
use snpkms_core::Custody;

/// Domain of the bootstrap evidence: report_data = SHA-512(domain || root signing address ||
/// config digest || TLS public key), so the registry owner can check, before `gov
/// set-kms-info`, that the KMS info was produced inside an attested node running the security
/// configuration it names.
pub const BOOTSTRAP_DOMAIN: &[u8] = b"snpkms/bootstrap/v2";

pub fn kms_info_report_data(
    root_signing_address: &[u8; 20],
    config_digest: &ConfigDigest,
    tls_public_key: &[u8],
) -> [u8; 64] {
    Sha512::new()
        .chain_update(BOOTSTRAP_DOMAIN)
        .chain_update(root_signing_address)
        .chain_update(config_digest.0)
        .chain_update(tls_public_key)
        .finalize()
        .into()
}

/// What the operator hands to the registry owner.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct BootstrapOutput {
    /// The new root's KMS root signing address, `0x…` (20 bytes): what `gov set-kms-info`
    /// registers and every app-key signature recovers to.
    pub root_signing_address: String,
    /// The security configuration the root is sealed under; governance allows it with
    /// `snpkms gov add-kms-config`.
    pub config_digest: String,
    /// The TLS listener's leaf SubjectPublicKeyInfo (DER), `0x…`; just `0x` without `[tls]`.
    pub tls_public_key: String,
    /// Evidence binding the three values above (report and certificate table, hex).
    pub report: String,
    /// The certificate table (VCEK, ASK, ARK) that came with `report`, hex.
    pub cert_table: String,
}

/// Generates the root secret, seals it to this platform and this security configuration, and
/// stores it. Refuses if a store already exists: a second bootstrap would silently replace
/// every app's keys.
pub fn bootstrap(cfg: &NodeConfig) -> Result<BootstrapOutput, NodeError> {
    let settings = SecuritySettings::resolve(cfg)?;
    let digest = settings.digest();
    let platform = platform::open(&cfg.platform)?;
    let tls_public_key =
        crate::tls::TlsIdentity::public_key_of(&crate::tls::TlsIdentity::load(cfg)?);
    let root = RootSecret::generate();
    let address = root.root_signing_address();
    let evidence = platform
        .attest(kms_info_report_data(&address, &digest, &tls_public_key))
        .map_err(platform::PlatformError::from)?;
    let under = SealedUnder {
        config_digest: digest,
        tcb_version: platform::committed_tcb(&evidence.report)?,
    };
    let sealing_key = platform
        .sealing_key(under.tcb_version)
        .map_err(platform::PlatformError::from)?;
    Store::create_with(&cfg.data_dir, |store| {
        sealed_secret::store_custody(store, &sealing_key, under, &Custody::Root(root))
    })?;
    Ok(BootstrapOutput {
        root_signing_address: format!("0x{}", hex::encode(address)),
        config_digest: digest.to_string(),
        tls_public_key: format!("0x{}", hex::encode(&tls_public_key)),
        report: hex::encode(evidence.report),
        cert_table: hex::encode(evidence.cert_table),
    })
}

/// Why bootstrap evidence does not vouch for the KMS info it comes with.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapCheckError {
    /// A field is not hex or has the wrong length (the message names it).
    #[error("malformed bootstrap output: {0}")]
    Malformed(String),
    /// The evidence fails verification (the message names the check): not a genuine report
    /// under the trusted roots and policy.
    #[error("evidence rejected: {0}")]
    Evidence(#[from] snpkms_verifier::VerifyError),
    /// The evidence is genuine but made for other values: the root signing address,
    /// configuration digest or TLS key were changed after the node produced them.
    #[error("the evidence's report_data does not bind this root signing address, configuration digest and TLS key")]
    NotBound,
}

/// What a checked bootstrap vouches for.
#[derive(Debug, Clone)]
pub struct CheckedBootstrap {
    /// The verified report: its measurement, chip and TCB are what governance must still check
    /// against the KMS images it allows.
    pub report: snpkms_verifier::VerifiedReport,
    /// The root signing address the evidence binds.
    pub root_signing_address: [u8; 20],
    /// The security configuration digest the evidence binds.
    pub config_digest: ConfigDigest,
}

/// What governance checks before `gov set-kms-info` and `gov add-kms-config`: the evidence
/// verifies (with `verifier`'s roots and policy) and binds exactly this KMS info and digest.
/// The verified report's measurement must then be an allowed KMS measurement.
pub fn check_bootstrap(
    out: &BootstrapOutput,
    verifier: &snpkms_verifier::Verifier,
    at: snpkms_verifier::UnixTime,
) -> Result<CheckedBootstrap, BootstrapCheckError> {
    let hex = |field: &str, v: &str| {
        hex::decode(v.trim_start_matches("0x"))
            .map_err(|e| BootstrapCheckError::Malformed(format!("{field}: {e}")))
    };
    let address: [u8; 20] = hex("root_signing_address", &out.root_signing_address)?
        .try_into()
        .map_err(|_| {
            BootstrapCheckError::Malformed("root_signing_address is not 20 bytes".into())
        })?;
    let digest = ConfigDigest(
        hex("config_digest", &out.config_digest)?
            .try_into()
            .map_err(|_| BootstrapCheckError::Malformed("config_digest is not 32 bytes".into()))?,
    );
    let tls = hex("tls_public_key", &out.tls_public_key)?;
    // A bare-metal node's host supplies no table: the check then says the VCEK is missing
    // rather than that the table is malformed.
    let table = hex("cert_table", &out.cert_table)?;
    let certs = if table.is_empty() {
        snpkms_verifier::CertificateBundle::default()
    } else {
        snpkms_verifier::CertificateBundle::from_cert_table(&table)
            .map_err(snpkms_verifier::VerifyError::from)?
    };
    let report = verifier.verify(&hex("report", &out.report)?, &certs, at)?;
    if report.report_data != kms_info_report_data(&address, &digest, &tls) {
        return Err(BootstrapCheckError::NotBound);
    }
    Ok(CheckedBootstrap {
        report,
        root_signing_address: address,
        config_digest: digest,
    })
}
