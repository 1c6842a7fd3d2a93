//! The key-release log: one record per authorization decision (key released or refused by the
//! chain) and per onboarding, each carrying the SHA-256 of its predecessor. Deleting, editing
//! or reordering a record breaks the chain, which `snpkms node audit-log` checks.
//!
//! Durability: a record is appended and flushed to disk (fsync) before the response leaves the
//! node, so no key is released without its record surviving a crash. Concurrent requests share
//! flushes: one flusher task syncs everything appended so far, then wakes every request whose
//! record it covered (group commit). A failed flush fails the requests it covered; they release
//! nothing. (sled's own `flush_async` deadlocks under many concurrent callers, hence our own.)

use crate::store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

/// What was decided for whom, on which chain view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRecord {
    pub seq: u64,
    /// Unix seconds.
    pub time: u64,
    /// "app_key" or "onboard".
    pub kind: String,
    pub app_id: String,
    pub compose_hash: String,
    /// keccak256 of the 64-byte chip id: the on-chain device id.
    pub chip_id_hash: String,
    pub measurement: String,
    pub epoch: u32,
    pub block_number: u64,
    pub block_hash: String,
    /// "allowed" or "denied".
    pub decision: String,
    pub reason: String,
    /// Hex SHA-256 of the previous record's stored bytes chained with its predecessor's hash;
    /// all zeros for the first record.
    pub prev_hash: String,
}

/// A record before it gets its place in the chain.
#[derive(Debug, Clone)]
pub struct NewRecord {
    pub time: u64,
    pub kind: &'static str,
    pub app_id: [u8; 20],
    pub compose_hash: [u8; 32],
    pub chip_id_hash: [u8; 32],
    pub measurement: [u8; 48],
    pub epoch: u32,
    pub block_number: u64,
    pub block_hash: Vec<u8>,
    pub allowed: bool,
    pub reason: String,
}

struct Head {
    next_seq: u64,
    hash: [u8; 32],
}

pub struct AuditLog {
    store: Store,
    head: Mutex<Head>,
    commit: Arc<GroupCommit>,
    flusher: Mutex<Option<JoinHandle<()>>>,
}

/// What the flusher has made durable: records `0..upto`, and the last failure.
#[derive(Debug, Clone, Default)]
struct Durable {
    upto: u64,
    failed_upto: u64,
    error: Option<String>,
}

struct GroupCommit {
    /// Records `0..appended` are in sled (not necessarily on disk).
    appended: AtomicU64,
    durable: watch::Sender<Durable>,
    wake: Notify,
    closed: AtomicBool,
}

impl GroupCommit {
    async fn run(self: Arc<Self>, db: sled::Db) {
        loop {
            self.wake.notified().await;
            if self.closed.load(Ordering::Acquire) {
                return;
            }
            let target = self.appended.load(Ordering::Acquire);
            if target <= self.durable.borrow().upto {
                continue;
            }
            let db = db.clone();
            let result = tokio::task::spawn_blocking(move || db.flush()).await;
            self.durable.send_modify(|d| match result {
                Ok(Ok(_)) => d.upto = d.upto.max(target),
                Ok(Err(e)) => {
                    d.failed_upto = target;
                    d.error = Some(e.to_string());
                }
                Err(e) => {
                    d.failed_upto = target;
                    d.error = Some(e.to_string());
                }
            });
        }
    }

    /// Waits until record `count - 1` is on disk.
    async fn wait(&self, count: u64) -> Result<(), StoreError> {
        let mut rx = self.durable.subscribe();
        self.wake.notify_one();
        loop {
            {
                let d = rx.borrow_and_update();
                if d.upto >= count {
                    return Ok(());
                }
                if d.failed_upto >= count {
                    return Err(StoreError::Io(format!(
                        "the key-release log could not be written to disk: {}",
                        d.error.as_deref().unwrap_or("unknown error")
                    )));
                }
            }
            if rx.changed().await.is_err() {
                return Err(StoreError::Io("the key-release log is closed".into()));
            }
            // Another flush may be needed for records appended after the last one started.
            self.wake.notify_one();
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChainBreak {
    #[error("record {seq} is unreadable: {reason}")]
    Unreadable { seq: u64, reason: String },
    #[error("record {seq} is stored under key {key}")]
    Misplaced { seq: u64, key: u64 },
    #[error(
        "record {seq} does not chain to record {prev}: the log was edited, reordered or truncated"
    )]
    Broken { seq: u64, prev: u64 },
}

fn link(prev: &[u8; 32], stored: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update(prev)
        .chain_update(stored)
        .finalize()
        .into()
}

impl AuditLog {
    /// Opens the log, recomputing the head from the last record, and starts its flusher (so it
    /// must be called inside a tokio runtime).
    pub fn open(store: Store) -> Result<AuditLog, StoreError> {
        let head = match store.audit.last()? {
            None => Head {
                next_seq: 0,
                hash: [0; 32],
            },
            Some((_, value)) => {
                let record: ReleaseRecord = serde_json::from_slice(&value)
                    .map_err(|e| StoreError::Io(format!("last audit record is unreadable: {e}")))?;
                let prev = decode_hash(&record.prev_hash).ok_or_else(|| {
                    StoreError::Io("last audit record has a bad prev_hash".into())
                })?;
                Head {
                    next_seq: record.seq + 1,
                    hash: link(&prev, &value),
                }
            }
        };
        let commit = Arc::new(GroupCommit {
            appended: AtomicU64::new(head.next_seq),
            durable: watch::channel(Durable {
                upto: head.next_seq,
                ..Durable::default()
            })
            .0,
            wake: Notify::new(),
            closed: AtomicBool::new(false),
        });
        let flusher = tokio::runtime::Handle::try_current()
            .map_err(|_| StoreError::Io("the audit log needs a tokio runtime".into()))?
            .spawn(commit.clone().run(store.db.clone()));
        Ok(AuditLog {
            store,
            head: Mutex::new(head),
            commit,
            flusher: Mutex::new(Some(flusher)),
        })
    }

    /// Stops the flusher and waits for it, releasing its handle on the store.
    pub async fn close(&self) {
        self.commit.closed.store(true, Ordering::Release);
        self.commit.wake.notify_one();
        let handle = self
            .flusher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(h) = handle {
            let _ = h.await;
        }
    }

    /// Appends and makes the record durable; returns its sequence number.
    pub async fn append(&self, new: NewRecord) -> Result<u64, StoreError> {
        let seq: u64 = {
            let mut head = self.head.lock().unwrap_or_else(|e| e.into_inner());
            let record = ReleaseRecord {
                seq: head.next_seq,
                time: new.time,
                kind: new.kind.to_string(),
                app_id: format!("0x{}", hex::encode(new.app_id)),
                compose_hash: format!("0x{}", hex::encode(new.compose_hash)),
                chip_id_hash: format!("0x{}", hex::encode(new.chip_id_hash)),
                measurement: hex::encode(new.measurement),
                epoch: new.epoch,
                block_number: new.block_number,
                block_hash: format!("0x{}", hex::encode(&new.block_hash)),
                decision: if new.allowed { "allowed" } else { "denied" }.to_string(),
                reason: new.reason,
                prev_hash: hex::encode(head.hash),
            };
            let bytes = serde_json::to_vec(&record)
                .map_err(|e| StoreError::Io(format!("encoding an audit record: {e}")))?;
            // Insert under the lock so sequence numbers and hashes stay in step.
            self.store
                .audit
                .insert(record.seq.to_be_bytes(), bytes.as_slice())?;
            head.hash = link(&head.hash, &bytes);
            head.next_seq += 1;
            self.commit.appended.store(head.next_seq, Ordering::Release);
            record.seq
        };
        self.commit.wait(seq + 1).await?;
        Ok(seq)
    }

    pub fn len(&self) -> u64 {
        self.head.lock().unwrap_or_else(|e| e.into_inner()).next_seq
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads every record and checks the chain from the first to the last.
    pub fn verify(store: &Store) -> Result<Vec<ReleaseRecord>, VerifyLogError> {
        let mut records = Vec::new();
        let mut prev = [0u8; 32];
        for (expected_seq, item) in store.audit.iter().enumerate() {
            let expected_seq = expected_seq as u64;
            let (key, value) = item.map_err(|e| VerifyLogError::Store(e.into()))?;
            let key = key
                .as_ref()
                .try_into()
                .map(u64::from_be_bytes)
                .unwrap_or(u64::MAX);
            let record: ReleaseRecord =
                serde_json::from_slice(&value).map_err(|e| ChainBreak::Unreadable {
                    seq: expected_seq,
                    reason: e.to_string(),
                })?;
            if key != expected_seq || record.seq != expected_seq {
                return Err(ChainBreak::Misplaced {
                    seq: record.seq,
                    key,
                }
                .into());
            }
            if decode_hash(&record.prev_hash) != Some(prev) {
                return Err(ChainBreak::Broken {
                    seq: record.seq,
                    prev: record.seq.saturating_sub(1),
                }
                .into());
            }
            prev = link(&prev, &value);
            records.push(record);
        }
        Ok(records)
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.commit.closed.store(true, Ordering::Release);
        self.commit.wake.notify_one();
    }
}

fn decode_hash(s: &str) -> Option<[u8; 32]> {
    hex::decode(s).ok()?.try_into().ok()
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyLogError {
    #[error("audit log chain: {0}")]
    Chain(#[from] ChainBreak),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: u8) -> NewRecord {
        NewRecord {
            time: 1000 + i as u64,
            kind: "app_key",
            app_id: [i; 20],
            compose_hash: [i; 32],
            chip_id_hash: [i; 32],
            measurement: [i; 48],
            epoch: 0,
            block_number: i as u64,
            block_hash: vec![i; 32],
            allowed: i.is_multiple_of(2),
            reason: String::new(),
        }
    }

    #[tokio::test]
    async fn chain_survives_reopen_and_detects_edits() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path()).unwrap();
        let log = AuditLog::open(store.clone()).unwrap();
        for i in 0..3 {
            assert_eq!(log.append(record(i)).await.unwrap(), i as u64);
        }
        drop(log);
        let log = AuditLog::open(store.clone()).unwrap();
        assert_eq!(log.append(record(3)).await.unwrap(), 3);
        let records = AuditLog::verify(&store).unwrap();
        assert_eq!(records.len(), 4);
        assert_eq!(records[2].decision, "allowed");
        assert_eq!(records[1].decision, "denied");

        // Edit a record in place: the next one no longer chains to it.
        let mut edited: ReleaseRecord =
            serde_json::from_slice(&store.audit.get(1u64.to_be_bytes()).unwrap().unwrap()).unwrap();
        edited.decision = "allowed".into();
        store
            .audit
            .insert(1u64.to_be_bytes(), serde_json::to_vec(&edited).unwrap())
            .unwrap();
        assert!(matches!(
            AuditLog::verify(&store),
            Err(VerifyLogError::Chain(ChainBreak::Broken { seq: 2, .. }))
        ));

        // Delete a record: a gap in the sequence.
        let store2 = Store::create(&dir.path().join("b")).unwrap();
        let log2 = AuditLog::open(store2.clone()).unwrap();
        for i in 0..3 {
            log2.append(record(i)).await.unwrap();
        }
        store2.audit.remove(1u64.to_be_bytes()).unwrap();
        assert!(matches!(
            AuditLog::verify(&store2),
            Err(VerifyLogError::Chain(ChainBreak::Misplaced {
                seq: 2,
                key: 2
            }))
        ));
    }
}
