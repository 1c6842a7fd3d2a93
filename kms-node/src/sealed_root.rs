//! The root secret at rest: AES-256-GCM under a key derived from the platform sealing key
//! (the SNP derived key, bound to this chip, this image's measurement and its policy). A copy
//! of the store is useless on another machine or under another image.

use crate::keys::{RootSecret, ROOT_SECRET_LEN};
use crate::store::{Store, StoreError};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

const KEY: &[u8] = b"sealed_root";
const FORMAT_V1: u8 = 1;
const AAD_DOMAIN: &[u8] = b"snpkms/v1/sealed-root";

fn cipher(sealing_key: &[u8; 32]) -> Aes256Gcm {
    let mut key = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(None, sealing_key)
        .expand(AAD_DOMAIN, key.as_mut())
        .expect("32 bytes is a valid HKDF-SHA256 length");
    Aes256Gcm::new(key.as_ref().into())
}

fn aad(root_address: &[u8; 20]) -> Vec<u8> {
    [AAD_DOMAIN, root_address.as_slice()].concat()
}

/// Seals `root` and stores it; the record also names the root signing address so operators
/// can tell which root a store holds without unsealing it.
pub fn store_root(
    store: &Store,
    sealing_key: &[u8; 32],
    root: &RootSecret,
) -> Result<(), StoreError> {
    if store.root.contains_key(KEY)? {
        return Err(StoreError::Io(
            "a sealed root secret is already stored".into(),
        ));
    }
    let address = root.root_signing_address();
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ciphertext = cipher(sealing_key)
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: root.expose(),
                aad: &aad(&address),
            },
        )
        .map_err(|_| StoreError::Io("sealing the root secret failed".into()))?;
    let mut record = vec![FORMAT_V1];
    record.extend_from_slice(&nonce);
    record.extend_from_slice(&address);
    record.extend_from_slice(&ciphertext);
    store.root.insert(KEY, record)?;
    store.db.flush()?;
    Ok(())
}

/// The root signing address recorded next to the sealed root, without unsealing.
pub fn stored_root_address(store: &Store) -> Result<[u8; 20], StoreError> {
    let record = store.root.get(KEY)?.ok_or(StoreError::NoRoot)?;
    parse(&record).map(|r| r.address)
}

/// A stored record: format byte, AES-GCM nonce, root signing address, ciphertext.
struct SealedRecord<'a> {
    nonce: [u8; 12],
    address: [u8; 20],
    ciphertext: &'a [u8],
}

fn parse(record: &[u8]) -> Result<SealedRecord<'_>, StoreError> {
    if record.len() != 1 + 12 + 20 + ROOT_SECRET_LEN + 16 || record[0] != FORMAT_V1 {
        return Err(StoreError::Unseal);
    }
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&record[1..13]);
    let mut address = [0u8; 20];
    address.copy_from_slice(&record[13..33]);
    Ok(SealedRecord {
        nonce,
        address,
        ciphertext: &record[33..],
    })
}

pub fn load_root(store: &Store, sealing_key: &[u8; 32]) -> Result<RootSecret, StoreError> {
    let record = store.root.get(KEY)?.ok_or(StoreError::NoRoot)?;
    let SealedRecord {
        nonce,
        address,
        ciphertext,
    } = parse(&record)?;
    let plaintext = Zeroizing::new(
        cipher(sealing_key)
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad(&address),
                },
            )
            .map_err(|_| StoreError::Unseal)?,
    );
    let mut bytes = Zeroizing::new([0u8; ROOT_SECRET_LEN]);
    bytes.copy_from_slice(&plaintext);
    let root = RootSecret::from_bytes(bytes);
    if root.root_signing_address() != address {
        return Err(StoreError::Unseal);
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_to_the_platform_key_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path()).unwrap();
        let root = RootSecret::generate();
        store_root(&store, &[7; 32], &root).unwrap();
        assert!(store_root(&store, &[7; 32], &RootSecret::generate()).is_err());
        assert_eq!(
            stored_root_address(&store).unwrap(),
            root.root_signing_address()
        );
        assert_eq!(load_root(&store, &[7; 32]).unwrap().expose(), root.expose());
        assert!(matches!(
            load_root(&store, &[8; 32]),
            Err(StoreError::Unseal)
        ));
        // No plaintext root on disk.
        let raw = store.root.get(KEY).unwrap().unwrap();
        assert!(!raw.windows(32).any(|w| w == root.expose()));
    }

    #[test]
    fn never_creates_or_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::Missing(_))
        ));
        drop(Store::create(dir.path()).unwrap());
        assert!(matches!(
            Store::create(dir.path()),
            Err(StoreError::AlreadyExists(_))
        ));
        let store = Store::open(dir.path()).unwrap();
        assert!(matches!(
            load_root(&store, &[7; 32]),
            Err(StoreError::NoRoot)
        ));
    }
}
