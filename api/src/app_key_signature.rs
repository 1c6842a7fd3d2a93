//! How the KMS root key vouches for an app's signing key, byte for byte what the registry's
//! `verifyAppKey` checks: an EIP-191 personal signature over
//! `keccak256("snpkms app key" || app_id || app_signing_address || uint32 epoch)`.

use k256::ecdsa::{RecoveryId, Signature, SigningKey, VerifyingKey};
use sha3::{Digest, Keccak256};

/// Domain prefix of the signed message, the same bytes as in `KmsRegistry.verifyAppKey`.
pub const MESSAGE_PREFIX: &[u8] = b"snpkms app key";

/// Why a KMS signature could not be made or checked.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    /// The signature is not 65 bytes (`r || s || v`); the length given.
    #[error("signature must be 65 bytes (r || s || v), got {0}")]
    Length(usize),
    /// The last byte `v` is not 27 or 28 (the recovery ids this scheme, and `ecrecover`,
    /// accept); the value given.
    #[error("signature v must be 27 or 28, got {0}")]
    RecoveryId(u8),
    /// `r || s` is not a valid signature, or no public key recovers from it for this message.
    #[error("signature does not recover to a public key")]
    Recover,
    /// The signing key could not sign the digest (not expected with a valid key).
    #[error("signing failed")]
    Sign,
}

/// Keccak-256 (Ethereum's, not SHA3-256).
pub fn keccak256(data: &[u8]) -> [u8; 32] {
    Keccak256::digest(data).into()
}

/// The Ethereum address of a secp256k1 public key.
pub fn address_of(key: &VerifyingKey) -> [u8; 20] {
    let point = key.to_encoded_point(false);
    let hash = keccak256(&point.as_bytes()[1..]);
    let mut address = [0u8; 20];
    address.copy_from_slice(&hash[12..]);
    address
}

/// `keccak256("snpkms app key" || app_id || app_signing_address || epoch_be32)`: the message the
/// registry rebuilds on-chain, before the EIP-191 prefix.
pub fn message_hash(app_id: &[u8; 20], app_signing_address: &[u8; 20], epoch: u32) -> [u8; 32] {
    let mut msg = Vec::with_capacity(MESSAGE_PREFIX.len() + 44);
    msg.extend_from_slice(MESSAGE_PREFIX);
    msg.extend_from_slice(app_id);
    msg.extend_from_slice(app_signing_address);
    msg.extend_from_slice(&epoch.to_be_bytes());
    keccak256(&msg)
}

/// The EIP-191 digest actually signed.
pub fn digest(app_id: &[u8; 20], app_signing_address: &[u8; 20], epoch: u32) -> [u8; 32] {
    let mut msg = b"\x19Ethereum Signed Message:\n32".to_vec();
    msg.extend_from_slice(&message_hash(app_id, app_signing_address, epoch));
    keccak256(&msg)
}

/// Signs an app key with the KMS root key: the 65-byte Ethereum signature `r || s || v`
/// (`v` = 27 or 28) over [`digest`], which `KmsRegistry.verifyAppKey` accepts.
pub fn sign(
    root: &SigningKey,
    app_id: &[u8; 20],
    app_signing_address: &[u8; 20],
    epoch: u32,
) -> Result<[u8; 65], SignatureError> {
    sign_digest(root, &digest(app_id, app_signing_address, epoch))
}

/// The 65-byte Ethereum signature `r || s || v` of `root` over a 32-byte digest.
pub(crate) fn sign_digest(
    root: &SigningKey,
    digest: &[u8; 32],
) -> Result<[u8; 65], SignatureError> {
    let (sig, recid) = root
        .sign_prehash_recoverable(digest)
        .map_err(|_| SignatureError::Sign)?;
    let mut out = [0u8; 65];
    out[..64].copy_from_slice(&sig.to_bytes());
    out[64] = 27 + recid.to_byte();
    Ok(out)
}

/// The address whose key made `signature` (`r || s || v`) over `digest`.
pub(crate) fn recover_digest(
    digest: &[u8; 32],
    signature: &[u8],
) -> Result<[u8; 20], SignatureError> {
    if signature.len() != 65 {
        return Err(SignatureError::Length(signature.len()));
    }
    let v = signature[64];
    let recid = v
        .checked_sub(27)
        .and_then(RecoveryId::from_byte)
        .filter(|r| !r.is_x_reduced())
        .ok_or(SignatureError::RecoveryId(v))?;
    let sig = Signature::from_slice(&signature[..64]).map_err(|_| SignatureError::Recover)?;
    let key = VerifyingKey::recover_from_prehash(digest, &sig, recid)
        .map_err(|_| SignatureError::Recover)?;
    Ok(address_of(&key))
}

/// The address that produced `signature`, to compare with the registered KMS root address.
pub fn recover(
    app_id: &[u8; 20],
    app_signing_address: &[u8; 20],
    epoch: u32,
    signature: &[u8],
) -> Result<[u8; 20], SignatureError> {
    recover_digest(&digest(app_id, app_signing_address, epoch), signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The vector of contracts/README.md, computed there independently with `cast`.
    #[test]
    fn matches_the_contract_vector() {
        let mut sk = [0u8; 32];
        sk[31] = 1;
        let root = SigningKey::from_slice(&sk).unwrap();
        assert_eq!(
            hex::encode(address_of(root.verifying_key())),
            "7e5f4552091a69125d5dfcb7b8c2659029395bdf"
        );
        let (app, signer) = ([0x11u8; 20], [0x22u8; 20]);
        assert_eq!(
            hex::encode(message_hash(&app, &signer, 7)),
            "808f25fcc74ecc7338e4c43d5015b2deccb620f1b89fb1a54348de74208e5b60"
        );
        assert_eq!(
            hex::encode(digest(&app, &signer, 7)),
            "22ab6c2819ece03601054edbb5731402b6225786c02eda4eb10320e0c31baeec"
        );
        let sig = sign(&root, &app, &signer, 7).unwrap();
        assert_eq!(
            hex::encode(sig),
            "7dbeadf2427e35090903b403571ff8b2e882ac8f541afe90a44897bab3a7e9da4d87d1aacb7c98fdc1019cd6ecb54d6d418d6ff29a940570868773e45cc873181c"
        );
        assert_eq!(
            recover(&app, &signer, 7, &sig).unwrap(),
            address_of(root.verifying_key())
        );
        assert_ne!(
            recover(&app, &signer, 8, &sig).unwrap(),
            address_of(root.verifying_key())
        );
    }

    #[test]
    fn malformed_signatures_are_errors() {
        let (app, signer) = ([0x11u8; 20], [0x22u8; 20]);
        assert_eq!(
            recover(&app, &signer, 7, &[0; 64]),
            Err(SignatureError::Length(64))
        );
        let mut sig = [1u8; 65];
        sig[64] = 29;
        assert_eq!(
            recover(&app, &signer, 7, &sig),
            Err(SignatureError::RecoveryId(29))
        );
        sig[64] = 0;
        assert_eq!(
            recover(&app, &signer, 7, &sig),
            Err(SignatureError::RecoveryId(0))
        );
    }
}
