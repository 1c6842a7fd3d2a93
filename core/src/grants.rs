//! App keys and their KMS signature, derived once per (app, epoch). On a warm request,
//! HKDF, the secp256k1 public key and the recoverable signature would otherwise cost more than
//! everything but the report verification. The cached material stays in this process, next to
//! the root secret it is derived from, and is wiped when evicted.

use crate::error::ReleaseError;
use crate::keys::RootSecret;
use k256::ecdsa::SigningKey;
use snpkms_api::{app_key_signature, pb};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

/// What every response for one app at one epoch carries.
pub struct AppGrant {
    /// The encoded `AppKeys` message (sealed per request to the guest's ephemeral key).
    pub plaintext: Zeroizing<Vec<u8>>,
    /// The app signing key's address.
    pub signing_address: [u8; 20],
    /// The KMS root's signature over it (verifiable with `KmsRegistry.verifyAppKey`).
    pub kms_signature: [u8; 65],
}

/// Grants by (app id, epoch).
type Grants = HashMap<([u8; 20], u32), Arc<AppGrant>>;

/// Grants cached per (app, epoch), wiped when evicted.
pub struct GrantCache {
    capacity: usize,
    entries: Mutex<Grants>,
}

impl GrantCache {
    /// Up to `capacity` grants.
    pub fn new(capacity: usize) -> GrantCache {
        GrantCache {
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The grant of `app_id` at `epoch`, derived and signed on first use.
    pub fn get_or_derive(
        &self,
        root: &RootSecret,
        root_signing_key: &SigningKey,
        app_id: &[u8; 20],
        epoch: u32,
    ) -> Result<Arc<AppGrant>, ReleaseError> {
        let key = (*app_id, epoch);
        if let Some(g) = self.lock().get(&key) {
            return Ok(g.clone());
        }
        let keys = root.app_keys(app_id, epoch);
        let signing_address = keys.signing_address();
        let kms_signature =
            app_key_signature::sign(root_signing_key, app_id, &signing_address, epoch)?;
        let grant = Arc::new(AppGrant {
            plaintext: Zeroizing::new(prost::Message::encode_to_vec(&pb::AppKeys {
                disk_key: keys.disk.to_vec(),
                env_secret_key: keys.env.to_vec(),
                signing_key: keys.signing.to_bytes().to_vec(),
            })),
            signing_address,
            kms_signature,
        });
        let mut entries = self.lock();
        if entries.len() >= self.capacity {
            // Rarely reached (one entry per app and epoch in use); starting over is simplest.
            entries.clear();
        }
        entries.insert(key, grant.clone());
        Ok(grant)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Grants> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_grants_equal_fresh_derivations() {
        let root = RootSecret::generate();
        let signer = root.root_signing_key();
        let cache = GrantCache::new(2);
        let a = cache.get_or_derive(&root, &signer, &[1; 20], 0).unwrap();
        let again = cache.get_or_derive(&root, &signer, &[1; 20], 0).unwrap();
        assert!(Arc::ptr_eq(&a, &again));
        let fresh = root.app_keys(&[1; 20], 0);
        assert_eq!(a.signing_address, fresh.signing_address());
        let decoded: pb::AppKeys = prost::Message::decode(a.plaintext.as_slice()).unwrap();
        assert_eq!(decoded.disk_key, fresh.disk.to_vec());
        assert_eq!(
            app_key_signature::recover(&[1; 20], &a.signing_address, 0, &a.kms_signature).unwrap(),
            root.root_signing_address()
        );
        // Other epochs and apps are other entries; the bound holds.
        let b = cache.get_or_derive(&root, &signer, &[1; 20], 1).unwrap();
        assert_ne!(a.signing_address, b.signing_address);
        cache.get_or_derive(&root, &signer, &[2; 20], 0).unwrap();
        assert!(cache.lock().len() <= 2);
    }
}
