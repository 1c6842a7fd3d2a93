//! The root secret at rest: AES-256-GCM under a key derived from the platform sealing key (the
//! SNP derived key: this chip, this image's measurement and policy, and a TCB version) *and*
//! the node's security-configuration digest. A copy of the store is useless on another
//! machine, under another image, on firmware rolled back below the TCB it was sealed at, or
//! with another security configuration.
//!
//! The record names the digest and the TCB version it was sealed under (in the clear, and
//! authenticated as associated data), so a refusal can say what changed. Editing them does
//! not help an attacker: the key is derived from the *current* configuration and the TCB the
//! firmware agrees to, and a different key does not open the ciphertext.

use crate::security::ConfigDigest;
use crate::store::{Store, StoreError};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use rand::RngCore;
use sha2::Sha256;
use snpkms_core::keys::{RootSecret, ROOT_SECRET_LEN};
use zeroize::Zeroizing;

const KEY: &[u8] = b"sealed_root";
/// Format 1 (before configuration digests) is refused: it is bound to the platform only.
const FORMAT_V1: u8 = 1;
const FORMAT_V2: u8 = 2;
const DOMAIN: &[u8] = b"snpkms/v2/sealed-root";
const RECORD_LEN: usize = 1 + 32 + 8 + 12 + 20 + ROOT_SECRET_LEN + 16;

/// What a sealed root is bound to besides the chip and image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedUnder {
    pub config_digest: ConfigDigest,
    /// Raw TCB_VERSION mixed into the platform sealing key.
    pub tcb_version: [u8; 8],
}

fn cipher(sealing_key: &[u8; 32], config_digest: &ConfigDigest) -> Aes256Gcm {
    let mut key = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(DOMAIN), sealing_key)
        .expand(&config_digest.0, key.as_mut())
        .expect("32 bytes is a valid HKDF-SHA256 length");
    Aes256Gcm::new(key.as_ref().into())
}

fn aad(under: &SealedUnder, root_address: &[u8; 20]) -> Vec<u8> {
    [
        DOMAIN,
        &under.config_digest.0,
        &under.tcb_version,
        root_address.as_slice(),
    ]
    .concat()
}

/// Seals `root` and stores it; the record also names the root signing address so operators
/// can tell which root a store holds without unsealing it.
pub fn store_root(
    store: &Store,
    sealing_key: &[u8; 32],
    under: SealedUnder,
    root: &RootSecret,
) -> Result<(), StoreError> {
    if store.root.contains_key(KEY)? {
        return Err(StoreError::RootExists);
    }
    let address = root.root_signing_address();
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ciphertext = cipher(sealing_key, &under.config_digest)
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: root.expose(),
                aad: &aad(&under, &address),
            },
        )
        .map_err(|_| StoreError::Seal)?;
    let mut record = vec![FORMAT_V2];
    record.extend_from_slice(&under.config_digest.0);
    record.extend_from_slice(&under.tcb_version);
    record.extend_from_slice(&nonce);
    record.extend_from_slice(&address);
    record.extend_from_slice(&ciphertext);
    store.root.insert(KEY, record)?;
    store.db.flush()?;
    Ok(())
}

/// A stored record, parsed but not opened.
#[derive(Debug, Clone)]
pub struct SealedRecord {
    pub under: SealedUnder,
    pub root_address: [u8; 20],
    nonce: [u8; 12],
    ciphertext: Vec<u8>,
}

/// Reads the sealed record without unsealing it: what it is bound to, and which root it holds.
pub fn read_record(store: &Store) -> Result<SealedRecord, StoreError> {
    let record = store.root.get(KEY)?.ok_or(StoreError::NoRoot)?;
    parse(&record)
}

fn parse(record: &[u8]) -> Result<SealedRecord, StoreError> {
    match record.first() {
        Some(&FORMAT_V2) if record.len() == RECORD_LEN => {}
        Some(&FORMAT_V1) => return Err(StoreError::OldFormat),
        _ => return Err(StoreError::Unseal),
    }
    let field = |at: usize, len: usize| &record[at..at + len];
    let mut config_digest = [0u8; 32];
    config_digest.copy_from_slice(field(1, 32));
    let mut tcb_version = [0u8; 8];
    tcb_version.copy_from_slice(field(33, 8));
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(field(41, 12));
    let mut root_address = [0u8; 20];
    root_address.copy_from_slice(field(53, 20));
    Ok(SealedRecord {
        under: SealedUnder {
            config_digest: ConfigDigest(config_digest),
            tcb_version,
        },
        root_address,
        nonce,
        ciphertext: record[73..].to_vec(),
    })
}

/// Unseals the store's root on `attestor` under the configuration digest `current`. The
/// digests are compared before the platform is asked for a key: a changed configuration is
/// named as such, and never leads to a new root.
pub fn unseal(
    store: &Store,
    attestor: &dyn snpkms_platform::Attestor,
    current: ConfigDigest,
) -> Result<RootSecret, crate::NodeError> {
    let record = read_record(store)?;
    if record.under.config_digest != current {
        return Err(StoreError::ConfigChanged {
            sealed: record.under.config_digest,
            current,
        }
        .into());
    }
    let sealing_key = attestor
        .sealing_key(record.under.tcb_version)
        .map_err(crate::platform::PlatformError::from)?;
    Ok(open(&record, &sealing_key, current)?)
}

/// Opens the record with the platform's sealing key and the node's *current* configuration
/// digest. Refuses, naming both digests, when the configuration is not the one the root was
/// sealed under, and never creates a new root.
pub fn open(
    record: &SealedRecord,
    sealing_key: &[u8; 32],
    current: ConfigDigest,
) -> Result<RootSecret, StoreError> {
    if record.under.config_digest != current {
        return Err(StoreError::ConfigChanged {
            sealed: record.under.config_digest,
            current,
        });
    }
    let plaintext = Zeroizing::new(
        cipher(sealing_key, &current)
            .decrypt(
                &Nonce::from(record.nonce),
                Payload {
                    msg: &record.ciphertext,
                    aad: &aad(&record.under, &record.root_address),
                },
            )
            .map_err(|_| StoreError::Unseal)?,
    );
    let mut bytes = Zeroizing::new([0u8; ROOT_SECRET_LEN]);
    if plaintext.len() != ROOT_SECRET_LEN {
        return Err(StoreError::Unseal);
    }
    bytes.copy_from_slice(&plaintext);
    let root = RootSecret::from_bytes(bytes);
    if root.root_signing_address() != record.root_address {
        return Err(StoreError::Unseal);
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNDER: SealedUnder = SealedUnder {
        config_digest: ConfigDigest([3; 32]),
        tcb_version: [1, 2, 3, 4, 5, 6, 7, 8],
    };

    #[test]
    fn seals_to_the_platform_key_and_the_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path()).unwrap();
        let root = RootSecret::generate();
        store_root(&store, &[7; 32], UNDER, &root).unwrap();
        assert!(store_root(&store, &[7; 32], UNDER, &RootSecret::generate()).is_err());
        let record = read_record(&store).unwrap();
        assert_eq!(record.root_address, root.root_signing_address());
        assert_eq!(record.under, UNDER);
        let opened = open(&record, &[7; 32], UNDER.config_digest).unwrap();
        assert_eq!(opened.expose(), root.expose());
        // Another platform key (machine, image, TCB): no.
        assert!(matches!(
            open(&record, &[8; 32], UNDER.config_digest),
            Err(StoreError::Unseal)
        ));
        // Another configuration: refused with both digests named.
        match open(&record, &[7; 32], ConfigDigest([4; 32])) {
            Err(StoreError::ConfigChanged { sealed, current }) => {
                assert_eq!(
                    (sealed, current),
                    (UNDER.config_digest, ConfigDigest([4; 32]))
                );
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
        // No plaintext root on disk.
        let raw = store.root.get(KEY).unwrap().unwrap();
        assert!(!raw.windows(32).any(|w| w == root.expose()));
    }

    #[test]
    fn a_record_edited_to_name_the_current_configuration_still_does_not_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path()).unwrap();
        store_root(&store, &[7; 32], UNDER, &RootSecret::generate()).unwrap();
        // The host rewrites the digest (and the TCB) in the record to match what it runs now.
        let mut raw = store.root.get(KEY).unwrap().unwrap().to_vec();
        raw[1..33].copy_from_slice(&[4; 32]);
        raw[33] ^= 1;
        let record = parse(&raw).unwrap();
        assert!(matches!(
            open(&record, &[7; 32], ConfigDigest([4; 32])),
            Err(StoreError::Unseal)
        ));
    }

    #[test]
    fn never_creates_or_overwrites_and_refuses_the_old_format() {
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
        assert!(matches!(read_record(&store), Err(StoreError::NoRoot)));
        store.root.insert(KEY, vec![FORMAT_V1; 81]).unwrap();
        assert!(matches!(read_record(&store), Err(StoreError::OldFormat)));
    }
}
