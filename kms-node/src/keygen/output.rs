//! What a participant prints when its key generation ends ([`KeyGenOutput`]), and what
//! governance checks before it records the share set ([`check_keygen`]): every participant's
//! evidence is genuine and binds its result, and all results are one group.

use serde::{Deserialize, Serialize};
use snpkms_api::binding::{keygen_result_report_data, KeygenResult};
use snpkms_threshold::GroupKeys;
use snpkms_verifier::{CertificateBundle, UnixTime, VerifiedReport, Verifier, VerifyError};
use std::collections::BTreeMap;

/// One node's verifying share, as the output lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyingShare {
    /// The node's index.
    pub index: u16,
    /// `s_i·G`, compressed, `0x…` (33 bytes).
    pub verifying_share: String,
}

/// What `snpkms node keygen` prints: this participant's result, bound into its evidence.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyGenOutput {
    /// The session id, `0x…`.
    pub session: String,
    /// SHA-256 of every participant's round-1 package, `0x…`: equal for all participants of
    /// one consistent key generation.
    pub transcript: String,
    /// This participant's index.
    pub index: u16,
    /// The threshold t.
    pub threshold: u16,
    /// The group key `s·G`, compressed, `0x…`.
    pub group_key: String,
    /// Every node's verifying share, in index order.
    pub verifying_shares: Vec<VerifyingShare>,
    /// This node's signing address (from its share), `0x…`: what the share set lists as its
    /// signer.
    pub signing_address: String,
    /// The security configuration the share is sealed under, `0x…`.
    pub config_digest: String,
    /// Evidence binding all the above (report, hex).
    pub report: String,
    /// The certificate table that came with `report`, hex.
    pub cert_table: String,
}

/// Why key-generation outputs are not one share set that governance may record.
#[derive(Debug, thiserror::Error)]
pub enum KeyGenCheckError {
    /// No output given.
    #[error("no key-generation output given")]
    Empty,
    /// A field is not hex or has the wrong length.
    #[error("participant {index}: malformed output: {message}")]
    Malformed {
        /// The output's index.
        index: u16,
        /// What is wrong.
        message: String,
    },
    /// A participant's evidence fails verification.
    #[error("participant {index}: evidence rejected: {source}")]
    Evidence {
        /// The output's index.
        index: u16,
        /// The verifier's reason.
        #[source]
        source: VerifyError,
    },
    /// A participant's evidence is genuine but made for another result.
    #[error("participant {index}: the evidence's report_data does not bind this output")]
    NotBound {
        /// The output's index.
        index: u16,
    },
    /// Two outputs disagree (session, transcript, threshold, group key or shares): the
    /// participants did not run one key generation, or saw different messages.
    #[error("participants {0} and {1} disagree on {2}: not one key generation")]
    Disagree(u16, u16, &'static str),
    /// The outputs do not cover every node the share set names, exactly once.
    #[error("the outputs cover participants {given:?} but the share set names {named:?}")]
    Coverage {
        /// The outputs' indices.
        given: Vec<u16>,
        /// The share set's indices.
        named: Vec<u16>,
    },
    /// Two participants run on one chip: one broken chip would give away two shares.
    #[error("participants {0} and {1} run on the same chip: a share set needs a chip per share")]
    SameChip(u16, u16),
    /// The share set is not one polynomial through the group key.
    #[error("the share set: {0}")]
    Group(#[from] snpkms_threshold::ThresholdError),
}

/// One checked participant.
#[derive(Debug, Clone)]
pub struct CheckedMember {
    /// Its index.
    pub index: u16,
    /// Its verifying share, compressed.
    pub verifying_share: [u8; 33],
    /// Its signing address.
    pub signer: [u8; 20],
    /// Its security-configuration digest.
    pub config_digest: [u8; 32],
    /// Its verified report: the measurement, chip and TCB governance checks.
    pub report: VerifiedReport,
}

/// A checked share set: what `gov set-threshold-group` records.
#[derive(Debug, Clone)]
pub struct CheckedGroup {
    /// The threshold.
    pub threshold: u16,
    /// The group key, compressed.
    pub group_key: [u8; 33],
    /// Every member, in index order.
    pub members: Vec<CheckedMember>,
}

fn decode<const N: usize>(
    index: u16,
    field: &str,
    value: &str,
) -> Result<[u8; N], KeyGenCheckError> {
    let bytes = decode_vec(index, field, value)?;
    bytes
        .try_into()
        .map_err(|v: Vec<u8>| KeyGenCheckError::Malformed {
            index,
            message: format!("{field} is {} bytes, {N} expected", v.len()),
        })
}

fn decode_vec(index: u16, field: &str, value: &str) -> Result<Vec<u8>, KeyGenCheckError> {
    hex::decode(value.trim_start_matches("0x")).map_err(|e| KeyGenCheckError::Malformed {
        index,
        message: format!("{field}: {e}"),
    })
}

/// The fields an output's evidence must bind, decoded.
struct Decoded {
    session: [u8; 32],
    transcript: [u8; 32],
    group_key: [u8; 33],
    shares: Vec<(u16, [u8; 33])>,
    signer: [u8; 20],
    config_digest: [u8; 32],
}

fn decoded(out: &KeyGenOutput) -> Result<Decoded, KeyGenCheckError> {
    let i = out.index;
    Ok(Decoded {
        session: decode(i, "session", &out.session)?,
        transcript: decode(i, "transcript", &out.transcript)?,
        group_key: decode(i, "group_key", &out.group_key)?,
        shares: out
            .verifying_shares
            .iter()
            .map(|s| Ok((s.index, decode(i, "verifying_share", &s.verifying_share)?)))
            .collect::<Result<_, KeyGenCheckError>>()?,
        signer: decode(i, "signing_address", &out.signing_address)?,
        config_digest: decode(i, "config_digest", &out.config_digest)?,
    })
}

/// Checks a key generation's outputs, one per participant: each one's evidence verifies with
/// `verifier` and binds its output; all name the same session, transcript, threshold, group key
/// and verifying shares; they cover every index of the share set once; no two run on one chip
/// (a chip id of zeros, masked by the guest policy, is not compared); and the shares are one
/// polynomial through the group key. What is left to governance: whether each report's
/// measurement, chip and TCB are ones it allows (the participants checked each other with
/// `isKmsAllowed` during the key generation; `snpkms node check-keygen` checks again).
pub fn check_keygen(
    outputs: &[KeyGenOutput],
    verifier: &Verifier,
    at: UnixTime,
) -> Result<CheckedGroup, KeyGenCheckError> {
    let first = outputs.first().ok_or(KeyGenCheckError::Empty)?;
    let reference = decoded(first)?;
    let mut members = BTreeMap::new();
    let mut chips: BTreeMap<[u8; 64], u16> = BTreeMap::new();
    for out in outputs {
        let i = out.index;
        let d = decoded(out)?;
        let differs = |what| KeyGenCheckError::Disagree(first.index, i, what);
        if d.session != reference.session {
            return Err(differs("the session"));
        }
        if d.transcript != reference.transcript {
            return Err(differs("the round-1 messages they saw (transcript)"));
        }
        if out.threshold != first.threshold {
            return Err(differs("the threshold"));
        }
        if d.group_key != reference.group_key || d.shares != reference.shares {
            return Err(differs("the group key or the verifying shares"));
        }
        let table = decode_vec(i, "cert_table", &out.cert_table)?;
        let certs = if table.is_empty() {
            CertificateBundle::default()
        } else {
            CertificateBundle::from_cert_table(&table).map_err(|e| KeyGenCheckError::Evidence {
                index: i,
                source: e.into(),
            })?
        };
        let report = verifier
            .verify(&decode_vec(i, "report", &out.report)?, &certs, at)
            .map_err(|source| KeyGenCheckError::Evidence { index: i, source })?;
        let bound = keygen_result_report_data(&KeygenResult {
            session: &d.session,
            transcript: &d.transcript,
            index: i,
            threshold: out.threshold,
            signing_address: &d.signer,
            config_digest: &d.config_digest,
            group_key: &d.group_key,
            verifying_shares: &d.shares,
        });
        if report.report_data != bound {
            return Err(KeyGenCheckError::NotBound { index: i });
        }
        if report.chip_id != [0; 64] {
            if let Some(other) = chips.insert(report.chip_id, i) {
                return Err(KeyGenCheckError::SameChip(other, i));
            }
        }
        let share = d
            .shares
            .iter()
            .find(|(index, _)| *index == i)
            .map(|(_, share)| *share)
            .ok_or_else(|| KeyGenCheckError::Coverage {
                given: outputs.iter().map(|o| o.index).collect(),
                named: d.shares.iter().map(|(index, _)| *index).collect(),
            })?;
        let member = CheckedMember {
            index: i,
            verifying_share: share,
            signer: d.signer,
            config_digest: d.config_digest,
            report,
        };
        if members.insert(i, member).is_some() {
            return Err(KeyGenCheckError::Disagree(
                i,
                i,
                "who is which participant (an index given twice)",
            ));
        }
    }
    let mut named: Vec<u16> = reference.shares.iter().map(|(index, _)| *index).collect();
    named.sort_unstable();
    let given: Vec<u16> = members.keys().copied().collect();
    if named != given {
        return Err(KeyGenCheckError::Coverage { given, named });
    }
    GroupKeys::new(first.threshold, &reference.group_key, &reference.shares)?;
    Ok(CheckedGroup {
        threshold: first.threshold,
        group_key: reference.group_key,
        members: members.into_values().collect(),
    })
}
