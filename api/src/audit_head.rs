//! How the KMS root key vouches for the head of a node's key-release log: a signature over
//! `keccak256("snpkms audit head" || uint64_be records || chain hash)`. The digest has no
//! EIP-191 prefix, so no head signature is ever an app-key signature (whose digest always has
//! one) and the other way round.

use crate::app_key_signature::{keccak256, recover_digest, sign_digest, SignatureError};
use k256::ecdsa::SigningKey;
use serde::{Deserialize, Serialize};

/// Domain prefix of the signed head.
pub const HEAD_PREFIX: &[u8] = b"snpkms audit head";

/// A log head: how many records, and the hash chaining them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    /// Records covered.
    pub records: u64,
    /// The chain hash after the last of them.
    #[serde(with = "hex_32")]
    pub hash: [u8; 32],
}

/// A head with the KMS root key's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedAuditHead {
    /// The head.
    #[serde(flatten)]
    pub head: AuditHead,
    /// `r || s || v`, 65 bytes, hex.
    #[serde(with = "hex_vec")]
    pub signature: Vec<u8>,
}

impl AuditHead {
    /// The digest the root key signs.
    pub fn digest(&self) -> [u8; 32] {
        let mut msg = Vec::with_capacity(HEAD_PREFIX.len() + 40);
        msg.extend_from_slice(HEAD_PREFIX);
        msg.extend_from_slice(&self.records.to_be_bytes());
        msg.extend_from_slice(&self.hash);
        keccak256(&msg)
    }

    /// Signs the head with the KMS root key.
    pub fn sign(self, root: &SigningKey) -> Result<SignedAuditHead, SignatureError> {
        Ok(SignedAuditHead {
            head: self,
            signature: sign_digest(root, &self.digest())?.to_vec(),
        })
    }
}

impl SignedAuditHead {
    /// The address of the key that signed it, to compare with the KMS root signing address.
    pub fn signer(&self) -> Result<[u8; 20], SignatureError> {
        recover_digest(&self.head.digest(), &self.signature)
    }
}

mod hex_vec {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        hex::decode(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

mod hex_32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(&s)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| serde::de::Error::custom("expected 32 bytes of hex"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_recovers_to_its_signer_and_no_other_head_does() {
        let key = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let me = crate::app_key_signature::address_of(key.verifying_key());
        let head = AuditHead {
            records: 42,
            hash: [9; 32],
        };
        let signed = head.sign(&key).unwrap();
        assert_eq!(signed.signer().unwrap(), me);
        for other in [
            AuditHead {
                records: 41,
                ..head
            },
            AuditHead {
                hash: [8; 32],
                ..head
            },
        ] {
            let forged = SignedAuditHead {
                head: other,
                signature: signed.signature.clone(),
            };
            assert_ne!(forged.signer().ok(), Some(me));
        }
        let json = serde_json::to_string(&signed).unwrap();
        assert_eq!(
            serde_json::from_str::<SignedAuditHead>(&json).unwrap(),
            signed
        );
    }
}
