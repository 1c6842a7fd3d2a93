//! The node's secret at rest (the root secret, or a threshold node's share): AES-256-GCM under
//! a key derived from the platform sealing key (the SNP derived key: this chip, this image's
//! measurement and policy, and a TCB version) *and* the node's security-configuration digest.
//! A copy of the store is useless on another machine, under another image, on firmware rolled
//! back below the TCB it was sealed at, or with another security configuration.
//!
//! The record names the digest and the TCB version it was sealed under (in the clear, and
//! authenticated as associated data), so a refusal can say what changed. Editing them does
//! not help an attacker: the key is derived from the *current* configuration and the TCB the
//! firmware agrees to, and a different key does not open the ciphertext. A root and a share
//! are sealed under different keys of the store and different domains: one never opens as the
//! other, and a store holds one or the other, never both.

use crate::security::ConfigDigest;
use crate::store::{Store, StoreError};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use rand::RngCore;
use sha2::Sha256;
use snpkms_core::keys::{RootSecret, ROOT_SECRET_LEN};
use snpkms_core::{Custody, NodeShare};
use snpkms_threshold::KeyShare;
use zeroize::Zeroizing;

/// Format 1 (before configuration digests) is refused: it is bound to the platform only.
const FORMAT_V1: u8 = 1;
const FORMAT_V2: u8 = 2;
/// Format byte, digest, TCB version, nonce, address; then the ciphertext and its tag.
const HEADER_LEN: usize = 1 + 32 + 8 + 12 + 20;
const SHARE_LEN: usize = 34;

/// Which secret a record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// The replicated root secret; the record's address is the KMS root signing address.
    Root,
    /// A threshold share; the record's address is the node's signing address.
    Share,
}

impl SecretKind {
    const ALL: [SecretKind; 2] = [SecretKind::Root, SecretKind::Share];

    fn key(self) -> &'static [u8] {
        match self {
            SecretKind::Root => b"sealed_root",
            SecretKind::Share => b"sealed_share",
        }
    }

    fn domain(self) -> &'static [u8] {
        match self {
            SecretKind::Root => b"snpkms/v2/sealed-root",
            SecretKind::Share => b"snpkms/v2/sealed-share",
        }
    }

    fn secret_len(self) -> usize {
        match self {
            SecretKind::Root => ROOT_SECRET_LEN,
            SecretKind::Share => SHARE_LEN,
        }
    }
}

/// What a sealed secret is bound to besides the chip and image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedUnder {
    pub config_digest: ConfigDigest,
    /// Raw TCB_VERSION mixed into the platform sealing key.
    pub tcb_version: [u8; 8],
}

fn cipher(kind: SecretKind, sealing_key: &[u8; 32], config_digest: &ConfigDigest) -> Aes256Gcm {
    let mut key = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(kind.domain()), sealing_key)
        .expand(&config_digest.0, key.as_mut())
        .expect("32 bytes is a valid HKDF-SHA256 length");
    Aes256Gcm::new(key.as_ref().into())
}

fn aad(kind: SecretKind, under: &SealedUnder, address: &[u8; 20]) -> Vec<u8> {
    [
        kind.domain(),
        &under.config_digest.0,
        &under.tcb_version,
        address.as_slice(),
    ]
    .concat()
}

/// Seals the node's secret and stores it; the record also names the secret's signing address
/// (the root's, or the share's node key) so operators can tell what a store holds without
/// unsealing it. Refuses a store that already holds a secret of either kind.
pub fn store_custody(
    store: &Store,
    sealing_key: &[u8; 32],
    under: SealedUnder,
    custody: &Custody,
) -> Result<(), StoreError> {
    for kind in SecretKind::ALL {
        if store.root.contains_key(kind.key())? {
            return Err(StoreError::RootExists);
        }
    }
    let share_bytes;
    let (kind, address, secret): (_, _, &[u8]) = match custody {
        Custody::Root(root) => (SecretKind::Root, root.root_signing_address(), root.expose()),
        Custody::Share(share) => {
            share_bytes = share.share().to_bytes();
            (SecretKind::Share, share.signing_address(), &share_bytes[..])
        }
    };
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ciphertext = cipher(kind, sealing_key, &under.config_digest)
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: secret,
                aad: &aad(kind, &under, &address),
            },
        )
        .map_err(|_| StoreError::Seal)?;
    let mut record = vec![FORMAT_V2];
    record.extend_from_slice(&under.config_digest.0);
    record.extend_from_slice(&under.tcb_version);
    record.extend_from_slice(&nonce);
    record.extend_from_slice(&address);
    record.extend_from_slice(&ciphertext);
    store.root.insert(kind.key(), record)?;
    store.db.flush()?;
    Ok(())
}

/// A stored record, parsed but not opened.
#[derive(Debug, Clone)]
pub struct SealedRecord {
    pub kind: SecretKind,
    pub under: SealedUnder,
    /// The root signing address, or the share's node signing address.
    pub address: [u8; 20],
    nonce: [u8; 12],
    ciphertext: Vec<u8>,
}

/// Reads the sealed record without unsealing it: what it is bound to, and what it holds.
pub fn read_record(store: &Store) -> Result<SealedRecord, StoreError> {
    let mut found = None;
    for kind in SecretKind::ALL {
        if let Some(record) = store.root.get(kind.key())? {
            if found.is_some() {
                // A host that copies a share beside a root (or the other way round) gets
                // neither served.
                return Err(StoreError::Unseal);
            }
            found = Some(parse(kind, &record)?);
        }
    }
    found.ok_or(StoreError::NoRoot)
}

fn parse(kind: SecretKind, record: &[u8]) -> Result<SealedRecord, StoreError> {
    match record.first() {
        Some(&FORMAT_V2) if record.len() == HEADER_LEN + kind.secret_len() + 16 => {}
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
    let mut address = [0u8; 20];
    address.copy_from_slice(field(53, 20));
    Ok(SealedRecord {
        kind,
        under: SealedUnder {
            config_digest: ConfigDigest(config_digest),
            tcb_version,
        },
        address,
        nonce,
        ciphertext: record[HEADER_LEN..].to_vec(),
    })
}

/// Unseals the store's secret on `attestor` under the configuration digest `current`. The
/// digests are compared before the platform is asked for a key: a changed configuration is
/// named as such, and never leads to a new secret.
pub fn unseal(
    store: &Store,
    attestor: &dyn snpkms_platform::Attestor,
    current: ConfigDigest,
) -> Result<Custody, crate::NodeError> {
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
/// digest. Refuses, naming both digests, when the configuration is not the one the secret was
/// sealed under, and never creates a new one. The secret must derive the address the record
/// names.
pub fn open(
    record: &SealedRecord,
    sealing_key: &[u8; 32],
    current: ConfigDigest,
) -> Result<Custody, StoreError> {
    if record.under.config_digest != current {
        return Err(StoreError::ConfigChanged {
            sealed: record.under.config_digest,
            current,
        });
    }
    let plaintext = Zeroizing::new(
        cipher(record.kind, sealing_key, &current)
            .decrypt(
                &Nonce::from(record.nonce),
                Payload {
                    msg: &record.ciphertext,
                    aad: &aad(record.kind, &record.under, &record.address),
                },
            )
            .map_err(|_| StoreError::Unseal)?,
    );
    if plaintext.len() != record.kind.secret_len() {
        return Err(StoreError::Unseal);
    }
    let (custody, address) = match record.kind {
        SecretKind::Root => {
            let mut bytes = Zeroizing::new([0u8; ROOT_SECRET_LEN]);
            bytes.copy_from_slice(&plaintext);
            let root = RootSecret::from_bytes(bytes);
            let address = root.root_signing_address();
            (Custody::Root(root), address)
        }
        SecretKind::Share => {
            let mut bytes = Zeroizing::new([0u8; SHARE_LEN]);
            bytes.copy_from_slice(&plaintext);
            let share =
                NodeShare::new(KeyShare::from_bytes(&bytes).map_err(|_| StoreError::Unseal)?);
            let address = share.signing_address();
            (Custody::Share(Box::new(share)), address)
        }
    };
    if address != record.address {
        return Err(StoreError::Unseal);
    }
    Ok(custody)
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNDER: SealedUnder = SealedUnder {
        config_digest: ConfigDigest([3; 32]),
        tcb_version: [1, 2, 3, 4, 5, 6, 7, 8],
    };

    fn root_bytes(custody: &Custody) -> [u8; 32] {
        match custody {
            Custody::Root(root) => *root.expose(),
            Custody::Share(_) => panic!("a share, not a root"),
        }
    }

    fn a_share() -> NodeShare {
        let (keys, _) = snpkms_threshold::testing::dkg(3, 2);
        NodeShare::new(KeyShare::from_key_package(&keys[1]).unwrap())
    }

    #[test]
    fn seals_to_the_platform_key_and_the_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path()).unwrap();
        let root = RootSecret::generate();
        let (bytes, address) = (*root.expose(), root.root_signing_address());
        store_custody(&store, &[7; 32], UNDER, &Custody::Root(root)).unwrap();
        let again = Custody::Root(RootSecret::generate());
        assert!(store_custody(&store, &[7; 32], UNDER, &again).is_err());
        let record = read_record(&store).unwrap();
        assert_eq!(record.address, address);
        assert_eq!((record.kind, record.under), (SecretKind::Root, UNDER));
        let opened = open(&record, &[7; 32], UNDER.config_digest).unwrap();
        assert_eq!(root_bytes(&opened), bytes);
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
        let raw = store.root.get(SecretKind::Root.key()).unwrap().unwrap();
        assert!(!raw.windows(32).any(|w| w == bytes));
    }

    #[test]
    fn a_share_is_sealed_like_a_root_and_never_beside_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path()).unwrap();
        let share = a_share();
        let (index, address) = (share.index(), share.signing_address());
        let secret = share.share().to_bytes();
        store_custody(&store, &[7; 32], UNDER, &Custody::Share(Box::new(share))).unwrap();
        // No root beside a share.
        let root = Custody::Root(RootSecret::generate());
        assert!(matches!(
            store_custody(&store, &[7; 32], UNDER, &root),
            Err(StoreError::RootExists)
        ));
        let record = read_record(&store).unwrap();
        assert_eq!((record.kind, record.address), (SecretKind::Share, address));
        match open(&record, &[7; 32], UNDER.config_digest).unwrap() {
            Custody::Share(opened) => {
                assert_eq!(opened.index(), index);
                assert_eq!(*opened.share().to_bytes(), *secret);
            }
            Custody::Root(_) => panic!("a root came out of a sealed share"),
        }
        assert!(matches!(
            open(&record, &[8; 32], UNDER.config_digest),
            Err(StoreError::Unseal)
        ));
        let raw = store.root.get(SecretKind::Share.key()).unwrap().unwrap();
        assert!(!raw.windows(32).any(|w| w == &secret[2..]));
        // The host puts a root record beside the share: neither is served.
        let other = tempfile::tempdir().unwrap();
        let other_store = Store::create(other.path()).unwrap();
        store_custody(&other_store, &[7; 32], UNDER, &root).unwrap();
        let root_record = other_store
            .root
            .get(SecretKind::Root.key())
            .unwrap()
            .unwrap();
        store
            .root
            .insert(SecretKind::Root.key(), root_record)
            .unwrap();
        assert!(matches!(read_record(&store), Err(StoreError::Unseal)));
        // A share record moved under the root's key (or the other way round) does not parse.
        assert!(matches!(
            parse(SecretKind::Root, &raw),
            Err(StoreError::Unseal)
        ));
    }

    #[test]
    fn a_record_edited_to_name_the_current_configuration_still_does_not_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path()).unwrap();
        store_custody(
            &store,
            &[7; 32],
            UNDER,
            &Custody::Root(RootSecret::generate()),
        )
        .unwrap();
        // The host rewrites the digest (and the TCB) in the record to match what it runs now.
        let mut raw = store
            .root
            .get(SecretKind::Root.key())
            .unwrap()
            .unwrap()
            .to_vec();
        raw[1..33].copy_from_slice(&[4; 32]);
        raw[33] ^= 1;
        let record = parse(SecretKind::Root, &raw).unwrap();
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
        store
            .root
            .insert(SecretKind::Root.key(), vec![FORMAT_V1; 81])
            .unwrap();
        assert!(matches!(read_record(&store), Err(StoreError::OldFormat)));
    }
}
