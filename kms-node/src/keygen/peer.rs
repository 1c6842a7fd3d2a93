//! The checks on another participant's messages: its round-1 message must come with genuine
//! evidence (the node's trust roots and guest policy, a VCEK from its host or the KDS) that
//! binds every field of it, from a KMS the registry allows (`isKmsAllowed` with the digest it
//! names, at the node's pinned view); its round-2 package must open with this participant's
//! ephemeral key for this session, sender and recipient.

use super::KeyGenError;
use crate::adapters::Registry;
use crate::kds::KdsSource;
use snpkms_api::binding;
use snpkms_api::pb;
use snpkms_api::seal::{self, EphemeralKeyPair, Sealed};
use snpkms_core::{Authorizer, EvidenceVerifier};
use snpkms_verifier::{BootInfo, UnixTime};
use zeroize::Zeroizing;

/// A peer's checked round-1 message.
pub struct CheckedRound1 {
    pub ephemeral_public_key: [u8; 32],
    pub package: Vec<u8>,
    /// The chip the peer runs on (for the log).
    pub chip_id: [u8; 64],
}

/// What every round-1 message of the session must agree on.
pub struct Expected<'a> {
    pub session: &'a [u8; 32],
    pub index: u16,
    pub threshold: u16,
    pub participants: u16,
}

fn fixed<const N: usize>(
    bytes: &[u8],
    node: u16,
    field: &'static str,
) -> Result<[u8; N], KeyGenError> {
    bytes.try_into().map_err(|_| KeyGenError::Malformed {
        node,
        message: format!("{field} is {} bytes, {N} expected", bytes.len()),
    })
}

/// Checks peer `expected.index`'s round-1 message.
pub async fn check_round1(
    message: &pb::KeyGenRound1,
    expected: &Expected<'_>,
    evidence: &EvidenceVerifier,
    certificates: &KdsSource,
    registry: &Registry,
    now: UnixTime,
) -> Result<CheckedRound1, KeyGenError> {
    let node = expected.index;
    let named = (
        message.session.as_slice(),
        message.index,
        message.threshold,
        message.participants,
    );
    let wanted = (
        expected.session.as_slice(),
        u32::from(node),
        u32::from(expected.threshold),
        u32::from(expected.participants),
    );
    if named != wanted {
        return Err(KeyGenError::Malformed {
            node,
            message: format!(
                "it runs session 0x{} as participant {} of {} with threshold {}, not session 0x{} as {} of {} with threshold {}",
                hex::encode(named.0), named.1, named.3, named.2,
                hex::encode(wanted.0), wanted.1, wanted.3, wanted.2
            ),
        });
    }
    let digest: [u8; 32] = fixed(&message.config_digest, node, "config_digest")?;
    let ephemeral: [u8; 32] = fixed(&message.ephemeral_public_key, node, "ephemeral_public_key")?;
    let supplied = message.evidence.as_ref().ok_or(KeyGenError::Malformed {
        node,
        message: "no evidence".into(),
    })?;
    let report = evidence
        .verify_or_fetch(&supplied.report, &supplied.cert_table, now, certificates)
        .await
        .map_err(|source| KeyGenError::Evidence { node, source })?;
    let bound = binding::keygen_round1_report_data(
        expected.session,
        node,
        expected.threshold,
        expected.participants,
        &digest,
        &ephemeral,
        &message.package,
    );
    if report.report_data != bound {
        return Err(KeyGenError::NotBound { node });
    }
    let decision = registry
        .is_kms_allowed(&BootInfo::for_kms(&report), digest)
        .await
        .map_err(|source| KeyGenError::Registry(source.to_string()))?;
    if !decision.allowed {
        return Err(KeyGenError::Denied {
            node,
            reason: decision.reason,
            block: decision.block.number,
            config_digest: format!("0x{}", hex::encode(digest)),
        });
    }
    Ok(CheckedRound1 {
        ephemeral_public_key: ephemeral,
        package: message.package.clone(),
        chip_id: report.chip_id,
    })
}

/// Seals this participant's round-2 package for `to`.
pub fn seal_round2(
    session: &[u8; 32],
    from: u16,
    to: u16,
    recipient: &[u8; 32],
    package: &[u8],
) -> Result<pb::KeyGenRound2, KeyGenError> {
    let sealed = seal::seal(
        recipient,
        seal::KEYGEN_ROUND2_INFO,
        &seal::keygen_round2_aad(session, from, to),
        package,
    )
    .map_err(|e| KeyGenError::Malformed {
        node: to,
        message: format!("its ephemeral key: {e}"),
    })?;
    Ok(pb::KeyGenRound2 {
        from: from.into(),
        to: to.into(),
        encapsulated_key: sealed.encapsulated_key,
        sealed_package: sealed.ciphertext,
    })
}

/// Opens peer `from`'s round-2 package for this participant `me`.
pub fn open_round2(
    message: pb::KeyGenRound2,
    session: &[u8; 32],
    from: u16,
    me: u16,
    ephemeral: &EphemeralKeyPair,
) -> Result<Zeroizing<Vec<u8>>, KeyGenError> {
    if (message.from, message.to) != (u32::from(from), u32::from(me)) {
        return Err(KeyGenError::Malformed {
            node: from,
            message: format!(
                "its round-2 package is from {} to {}, not from {from} to {me}",
                message.from, message.to
            ),
        });
    }
    ephemeral
        .open(
            seal::KEYGEN_ROUND2_INFO,
            &seal::keygen_round2_aad(session, from, me),
            &Sealed {
                encapsulated_key: message.encapsulated_key,
                ciphertext: message.sealed_package,
            },
        )
        .map_err(|e| KeyGenError::Malformed {
            node: from,
            message: format!("its round-2 package does not open with this participant's key: {e}"),
        })
}
