//! The node's persistent state in sled: the sealed root secret. (The key-release log is a file
//! of its own beside it, see `audit_log`; nonces live in memory.) Opening never creates a root:
//! a missing or unreadable store is an error for the operator, because silently starting over
//! would change every app's keys.

use std::path::{Path, PathBuf};

/// Why the node store (the sealed root) could not be opened, created or unsealed. None of these
/// ever leads to a new root.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `<data_dir>/store` does not exist (or is not a sled store): this node has no root yet.
    #[error("no node store at {0}: run `snpkms node bootstrap` (first node) or `snpkms node onboard` (joining node)")]
    Missing(PathBuf),
    /// Bootstrap or onboarding found a store already there; it is left untouched.
    #[error("a node store already exists at {0}: refusing to overwrite its root secret")]
    AlreadyExists(PathBuf),
    /// sled could not open the store: probably corrupted.
    #[error("the node store at {} cannot be opened ({source}); it may be corrupted: restore it from backup or onboard again from a peer", path.display())]
    Open {
        /// The store directory.
        path: PathBuf,
        /// sled's error.
        #[source]
        source: sled::Error,
    },
    /// Another process holds the store's lock: one node per data dir.
    #[error("the node store at {0} is locked by another process: is a node already running on this data dir?")]
    Locked(PathBuf),
    /// The store opens but holds no sealed root record.
    #[error(
        "the node store holds no sealed root secret: it is incomplete; restore it or onboard again"
    )]
    NoRoot,
    /// The sealed root does not decrypt with this platform's sealing key (another chip, image
    /// or policy, firmware below the sealed TCB), or the record is damaged.
    #[error("the sealed root secret does not open with this platform's sealing key: wrong machine, changed image, firmware rolled back below the TCB it was sealed at, or a corrupted store")]
    Unseal,
    /// The node's security configuration is not the one its root was sealed under.
    #[error("the security configuration changed: the root was sealed under configuration digest {sealed}, this configuration's digest is {current}. A node never runs with another security configuration than the one its root was sealed under: restore the configuration, or (after governance allows the new digest with `snpkms gov add-kms-config`) start with an empty data dir and `snpkms node onboard` from a peer")]
    ConfigChanged {
        /// The digest the root was sealed under.
        sealed: crate::security::ConfigDigest,
        /// The digest of the configuration the node was started with.
        current: crate::security::ConfigDigest,
    },
    /// The record is format 1, sealed to the platform only (no configuration digest): refused.
    #[error("the node store was made by an older snpkms whose sealed root is not bound to a configuration digest: onboard this node again from a peer into an empty data dir")]
    OldFormat,
    /// Sealing a root into a store that already holds one.
    #[error("a sealed root secret is already stored: refusing to overwrite it")]
    RootExists,
    /// AES-256-GCM encryption of the root failed (not expected).
    #[error("sealing the root secret failed")]
    Seal,
    /// Reading or writing the store failed.
    #[error("node store: {0}")]
    Db(#[from] sled::Error),
    /// A file-system operation on the data dir (creating it, replacing the staging store,
    /// renaming, syncing) failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The data dir.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Creating the empty key-release log beside a new store failed.
    #[error("creating the key-release log: {0}")]
    AuditLog(#[from] crate::audit_log::AuditLogError),
}

/// Handles to the node's trees.
#[derive(Clone)]
pub struct Store {
    pub(crate) db: sled::Db,
    pub(crate) root: sled::Tree,
}

fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join("store")
}

impl Store {
    /// Opens an existing store; never creates one.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        let path = db_path(data_dir);
        if !path.join("conf").exists() {
            return Err(StoreError::Missing(path));
        }
        Self::open_at(&path)
    }

    /// Creates a new, empty store and opens it; refuses if one exists.
    #[cfg(test)]
    pub fn create(data_dir: &Path) -> Result<Store, StoreError> {
        Self::create_with(data_dir, |_| Ok(()))?;
        Self::open(data_dir)
    }

    /// Creates a store atomically: what `init` writes goes to a staging directory that becomes
    /// the store only once complete and on disk. A crash half-way (during bootstrap or
    /// onboarding) leaves no half-made store, and the next attempt starts clean.
    pub fn create_with<T>(
        data_dir: &Path,
        init: impl FnOnce(&Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let path = db_path(data_dir);
        if path.exists() {
            return Err(StoreError::AlreadyExists(path));
        }
        let io = |source: std::io::Error| StoreError::Io {
            path: data_dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(io)?;
        let staging = data_dir.join("store.staging");
        if staging.exists() {
            tracing::warn!(
                "removing {} left by an interrupted attempt",
                staging.display()
            );
            std::fs::remove_dir_all(&staging).map_err(io)?;
        }
        let store = Self::open_at(&staging)?;
        let out = init(&store)?;
        store.db.flush()?;
        drop(store);
        // Before the store appears, so that every complete store has its log.
        crate::audit_log::create(data_dir)?;
        std::fs::rename(&staging, &path).map_err(io)?;
        std::fs::File::open(data_dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
        Ok(out)
    }

    fn open_at(path: &Path) -> Result<Store, StoreError> {
        // A store this process has just closed (made by a key generation, a bootstrap or an
        // onboarding, then opened to serve) stays locked until sled's background thread lets
        // go of it: a held lock is only reported once it has outlasted that.
        let mut attempts = 0;
        let db = loop {
            match Self::open_sled(path) {
                Err(StoreError::Locked(_)) if attempts < 20 => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                other => break other?,
            }
        };
        let tree = |name: &str| {
            db.open_tree(name).map_err(|source| StoreError::Open {
                path: path.to_path_buf(),
                source,
            })
        };
        Ok(Store {
            root: tree("root")?,
            db,
        })
    }

    fn open_sled(path: &Path) -> Result<sled::Db, StoreError> {
        sled::Config::new()
            .path(path)
            // It holds one small record; sled's default cache is 1 GiB.
            .cache_capacity(1024 * 1024)
            .open()
            .map_err(|source| {
                // sled reports a held lock only in the message of an I/O error.
                if source.to_string().contains("could not acquire lock") {
                    StoreError::Locked(path.to_path_buf())
                } else {
                    StoreError::Open {
                        path: path.to_path_buf(),
                        source,
                    }
                }
            })
    }
}
