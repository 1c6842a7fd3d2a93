//! Key derivation. Every node holding the same root secret derives the same keys, so a guest
//! gets the same keys from any node and after any restart.
//!
//! App keys: [`AppKeys::derive`] with the root secret as input key material and the salt
//! prefix "snpkms/v1/epoch/" (the scheme is in `snpkms_api::app_keys`).
//!
//! KMS root signing key (epoch-independent, so the on-chain KMS info survives epoch bumps):
//! HKDF-SHA256, salt = "snpkms/v1/kms", info = "kms-root-signing", same counter rule.

use hkdf::Hkdf;
use k256::ecdsa::SigningKey;
use rand::RngCore;
use sha2::Sha256;
use snpkms_api::app_key_signature::address_of;
pub use snpkms_api::app_keys::AppKeys;
use snpkms_api::app_keys::{secp256k1_key, ROOT_EPOCH_SALT};
use zeroize::Zeroizing;

/// Length of the root secret.
pub const ROOT_SECRET_LEN: usize = 32;

/// The root secret. Never logged, never written unsealed, wiped on drop.
pub struct RootSecret(Zeroizing<[u8; ROOT_SECRET_LEN]>);

impl RootSecret {
    /// 32 bytes from the OS CSPRNG (inside the TEE, backed by RDRAND/RDSEED).
    pub fn generate() -> RootSecret {
        let mut bytes = Zeroizing::new([0u8; ROOT_SECRET_LEN]);
        rand::rngs::OsRng.fill_bytes(bytes.as_mut());
        RootSecret(bytes)
    }

    /// A root secret from its bytes (unsealed, or received from a peer).
    pub fn from_bytes(bytes: Zeroizing<[u8; ROOT_SECRET_LEN]>) -> RootSecret {
        RootSecret(bytes)
    }

    /// The bytes, for sealing and onboarding only.
    pub fn expose(&self) -> &[u8; ROOT_SECRET_LEN] {
        &self.0
    }

    /// The KMS root signing key (epoch-independent).
    pub fn root_signing_key(&self) -> SigningKey {
        secp256k1_key(
            &Hkdf::<Sha256>::new(Some(b"snpkms/v1/kms"), self.0.as_ref()),
            b"kms-root-signing",
        )
    }

    /// The Ethereum address of [`RootSecret::root_signing_key`]: what the registry names.
    pub fn root_signing_address(&self) -> [u8; 20] {
        address_of(self.root_signing_key().verifying_key())
    }

    /// The keys of `app_id` at `epoch`.
    pub fn app_keys(&self, app_id: &[u8; 20], epoch: u32) -> AppKeys {
        AppKeys::derive(self.0.as_ref(), ROOT_EPOCH_SALT, app_id, epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's test vector: root secret 0x00..1f, app 0x11 * 20, epoch 0.
    #[test]
    fn derivation_test_vector() {
        let mut root = [0u8; 32];
        for (i, b) in root.iter_mut().enumerate() {
            *b = i as u8;
        }
        let root = RootSecret::from_bytes(Zeroizing::new(root));
        let keys = root.app_keys(&[0x11; 20], 0);
        assert_eq!(hex::encode(keys.disk.as_ref()), DISK);
        assert_eq!(hex::encode(keys.env.as_ref()), ENV);
        assert_eq!(hex::encode(keys.signing.to_bytes()), SIGNING);
        assert_eq!(hex::encode(keys.signing_address()), SIGNING_ADDRESS);
        assert_eq!(hex::encode(root.root_signing_address()), ROOT_ADDRESS);
    }
    const DISK: &str = "10faad8d63aec3159646987c4e49dbdbdef16d453f2846ec630ddbbd81a722b0";
    const ENV: &str = "c66a042b461c6031454b6c253245dc7c5a062fbe4d5612c6549f12397a5bc58a";
    const SIGNING: &str = "bf7c59f9d0b768c739f9137f015515b963e94ff29cb2022a5fca51df9df0626b";
    // Computed independently: HKDF with Python's hmac module, addresses with
    // `cast wallet address --private-key <scalar>`.
    const SIGNING_ADDRESS: &str = "b0693554287e52fd3336012691ce81e47655905a";
    const ROOT_ADDRESS: &str = "f089d645ac8c69bce1fd5fcb257b63540a3278e1";

    #[test]
    fn keys_separate_by_app_epoch_and_purpose() {
        let root = RootSecret::generate();
        let a0 = root.app_keys(&[1; 20], 0);
        let a0_again = root.app_keys(&[1; 20], 0);
        let a1 = root.app_keys(&[1; 20], 1);
        let b0 = root.app_keys(&[2; 20], 0);
        assert_eq!(*a0.disk, *a0_again.disk);
        assert_eq!(a0.signing_address(), a0_again.signing_address());
        assert_ne!(*a0.disk, *a1.disk);
        assert_ne!(*a0.disk, *b0.disk);
        assert_ne!(*a0.disk, *a0.env);
        assert_ne!(a0.signing_address(), b0.signing_address());
        assert_ne!(root.root_signing_address(), a0.signing_address());
        assert_ne!(
            root.root_signing_address(),
            RootSecret::generate().root_signing_address()
        );
    }
}
