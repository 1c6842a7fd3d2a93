//! The key-release log: one record per authorization decision (key released or refused by the
//! chain) and per onboarding, each carrying the SHA-256 of its predecessor. Deleting, editing
//! or reordering a record breaks the chain, which `snpkms node audit-log` checks.
//!
//! The host owns the disk and could rewrite the whole file with recomputed hashes, so the chain
//! alone proves nothing to the node. Every batch written ends in a head line: the number of
//! records and the chain hash, signed by the KMS root key inside the TEE
//! ([`snpkms_api::audit_head`]). Opening checks the chain and that the last head is signed by
//! this node's root key. Opening reads only the end of the file, from its last head on (the
//! heads are the log's checkpoints), so a node with ten million records starts as fast as one
//! with ten; the history before the last head is then checked in the background (every link,
//! and that every head adds up to the records before it) and a break is reported as an error
//! and by `snpkms_audit_history_broken` (BENCHMARKS.md, THREAT_MODEL.md). A rewritten log whose
//! last head is not this root's does not open. Records after the last head were never
//! acknowledged (their batch's head is written before the sync that acknowledges them), so they
//! are set aside like a torn write. What the host can still do is cut the file back to an
//! earlier head: an auditor who keeps a head it fetched (`GetAuditHead`) detects that
//! (`snpkms node audit-log --check-head`).
//!
//! It is `audit.log` in the node's data dir: one JSON record per line, append-only, so any
//! JSON-lines tool reads it, also while the node runs.
//!
//! Durability: a record is written and `fdatasync`ed before the response leaves the node, so
//! no key is released without its record surviving a crash or a power loss. Concurrent requests
//! share syncs: one flusher thread writes everything appended so far with one `write` and one
//! `fdatasync`, then answers every request it covered (group commit). While other requests are
//! on their way to a record ([`AuditLog::coming`]), the flusher waits up to the commit delay
//! for them, so that under load one sync covers many records (as PostgreSQL's `commit_delay`);
//! a lone request never waits. A failed write fails the
//! requests it covered and those appended behind them (their records chain to the lost ones):
//! they release nothing, the file is cut back to its last durable record, and the log carries
//! on once the disk has room again.
//!
//! After a crash the file may end in a partial write that was never acknowledged. Opening moves
//! it to `audit.log.torn-<unix time>` and cuts it off. Damage followed by intact records is not
//! what a crash leaves: the history check reports it, for the operator to look at, and the
//! auditor's read ([`read`]) refuses it.

use k256::ecdsa::SigningKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use snpkms_api::app_key_signature::address_of;
use snpkms_api::audit_head::{AuditHead, SignedAuditHead};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// What was decided for whom, on which chain view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRecord {
    /// Place in the log, from 0, without gaps.
    pub seq: u64,
    /// Unix seconds.
    pub time: u64,
    /// "app_key", "onboard", "app_key_share" or "app_key_signature".
    pub kind: String,
    /// The app, `0x` + 20 bytes hex (zero for onboarding).
    pub app_id: String,
    /// The compose hash the guest runs, `0x` + 32 bytes hex (zero for onboarding).
    pub compose_hash: String,
    /// keccak256 of the 64-byte chip id: the on-chain device id.
    pub chip_id_hash: String,
    /// The guest's launch measurement, 48 bytes hex (no `0x`).
    pub measurement: String,
    /// The key epoch of the keys released (or refused); for onboarding, the node's current
    /// epoch.
    pub epoch: u32,
    /// The block the registry's decision was read at (for a cached decision, the block it was
    /// first read at: no authorization event happened since).
    pub block_number: u64,
    /// That block's hash, `0x` + 32 bytes hex.
    pub block_hash: String,
    /// "allowed" or "denied".
    pub decision: String,
    /// The registry's reason when it refused (`"os image not allowed"`, …); empty when allowed.
    pub reason: String,
    /// In the threshold mode, the share epoch the node served in (absent in the
    /// replicated-root mode, as in logs written before the threshold mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_epoch: Option<u32>,
    /// In the threshold mode, the node's share index in that share set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_index: Option<u16>,
    /// For `app_key_signature`, the app signing address the guest asked this node to vouch
    /// for, `0x` + 20 bytes hex (signed if allowed, refused otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_signing_address: Option<String>,
    /// Hex SHA-256 of the previous record's line (without its newline) chained with its
    /// predecessor's hash; all zeros for the first record.
    pub prev_hash: String,
}

pub use snpkms_core::{NewRecord, RecordKind};

/// A head line: what the records before it add up to, signed.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeadLine {
    head: SignedAuditHead,
}

/// One line of the log.
enum Line<'a> {
    // Boxed: a record is several times the size of a head.
    Record(Box<ReleaseRecord>, &'a [u8]),
    Head(SignedAuditHead),
}

fn parse_line(body: &[u8]) -> Option<Line<'_>> {
    if let Ok(record) = serde_json::from_slice::<ReleaseRecord>(body) {
        return Some(Line::Record(Box::new(record), body));
    }
    serde_json::from_slice::<HeadLine>(body)
        .ok()
        .map(|h| Line::Head(h.head))
}

/// The log's file name in the data dir.
pub const FILE_NAME: &str = "audit.log";

/// The log's path in `data_dir`.
pub fn log_path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// Why the key-release log could not be opened, read or written. A request whose record was
/// not written releases nothing.
#[derive(Debug, thiserror::Error)]
pub enum AuditLogError {
    /// The data dir has no `audit.log` (a store without its log): restore the data dir whole.
    #[error("no key-release log at {0}: the data dir is incomplete; restore it from backup")]
    Missing(PathBuf),
    /// Creating a new node store found a log that already has records (from another root).
    #[error("a key-release log with records already exists at {0}: move it away before creating a new node store")]
    AlreadyExists(PathBuf),
    /// The log file could not be created, opened, read or cut.
    #[error("key-release log {}: {source}", path.display())]
    Io {
        /// The log file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Writing or syncing a batch of records failed (e.g. a full disk). The requests it covered
    /// released nothing; the file was cut back to its last durable record and the log goes on.
    #[error("the key-release log could not be written to disk: {0}")]
    Write(#[source] Arc<std::io::Error>),
    /// A write failed and the file could not be cut back either: the log accepts nothing more
    /// until the node restarts (and checks the file).
    #[error("the key-release log could not be written to disk ({write}), nor cut back to its last record ({cut}): restart the node")]
    Unrecoverable {
        /// Why the write failed.
        #[source]
        write: Arc<std::io::Error>,
        /// Why cutting the file back failed.
        cut: Arc<std::io::Error>,
    },
    /// Archiving found no record to move (an empty log, or one that starts at its last head).
    #[error("key-release log {0}: nothing to archive (no record after its first head)")]
    NothingToArchive(PathBuf),
    /// Archiving found bytes after the last head: a node has the log open, or crashed
    /// mid-write (starting it once sets them aside).
    #[error("key-release log {}: {bytes} byte(s) after its last head: stop the node (or start it once, to set a crash's partial write aside) before archiving", path.display())]
    TailNotCovered {
        /// The log file.
        path: PathBuf,
        /// Bytes after the last head.
        bytes: u64,
    },
    /// The background check of the history could not run to its end.
    #[error("the key-release log's history could not be checked: {0}")]
    HistoryCheckFailed(String),
    /// An archive segment of that name exists: an earlier archive stopped before it replaced
    /// the live log, or the name is taken.
    #[error("an archive segment already exists at {}: an earlier archive may have stopped before it replaced the live log; compare the two and move one away", .0.display())]
    SegmentExists(PathBuf),
    /// A record could not be encoded as JSON.
    #[error("encoding a key-release record: {0}")]
    Encode(#[source] serde_json::Error),
    /// The log was closed (the node is stopping); nothing more is appended.
    #[error("the key-release log is closed")]
    Closed,
    /// The file is not an intact chain of records: see [`HashChainBreak`]. A node refuses to
    /// start on it.
    #[error("key-release log {path}: {source}")]
    HashChain {
        /// The log file.
        path: PathBuf,
        /// Where and how the chain breaks.
        #[source]
        source: HashChainBreak,
    },
}

/// How a log fails its hash-chain check: something other than a crash changed it. (A log cut
/// back to an earlier head is intact and shorter: only a head kept by an auditor shows it, see
/// [`LogContents::extends`].)
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HashChainBreak {
    /// An unreadable line is followed by readable records: damage, not a torn last write.
    #[error("the record after record {after} (byte {offset}) is unreadable but intact records follow it: the log was damaged, not cut short by a crash")]
    Damaged {
        /// The sequence number of the last intact record before the damage, or
        /// `none (start of the log)`.
        after: String,
        /// Byte offset in the file where the unreadable data starts.
        offset: u64,
    },
    /// A record's sequence number is not the next one: records were removed or reordered.
    #[error("record {found} is where record {expected} should be: the log was edited, reordered or truncated")]
    OutOfSequence {
        /// The sequence number due at this place.
        expected: u64,
        /// The one found there.
        found: u64,
    },
    /// A record's `prev_hash` does not match the records before it: one of them was edited.
    #[error(
        "record {seq} does not chain to record {prev}: the log was edited, reordered or truncated"
    )]
    Broken {
        /// The record whose `prev_hash` does not match.
        seq: u64,
        /// The record before it (`seq - 1`).
        prev: u64,
    },
    /// A head line does not add up to the records before it.
    #[error("the signed head after {records} records does not match them: the log was edited")]
    HeadMismatch {
        /// The records the head says it covers.
        records: u64,
    },
    /// Records, but no signed head at all: not a log this node wrote (or one from a version
    /// before signed heads).
    #[error("{records} records but no signed head: the log was not written by a node of this root, or by a version before signed heads")]
    Unsigned {
        /// Records in the file.
        records: u64,
    },
    /// The last head is not signed by this node's root key: the file was rewritten.
    #[error("the last head is signed by {found}, not by this node's root signing address {expected}: the log was rewritten")]
    HeadSigner {
        /// Who signed it (or why no signer recovers).
        found: String,
        /// The root signing address, `0x` hex.
        expected: String,
    },
}

/// The end of the chain: what the next record links to.
#[derive(Debug, Clone, Copy)]
struct Head {
    next_seq: u64,
    hash: [u8; 32],
    /// File length up to and including the last record.
    file_len: u64,
}

const EMPTY: Head = Head {
    next_seq: 0,
    hash: [0; 32],
    file_len: 0,
};

/// The flusher's answer for one record: durable, or the write that failed.
type Ack = oneshot::Sender<Result<(), Arc<std::io::Error>>>;
/// Where a record's [`Ack`] arrives.
type Acked = oneshot::Receiver<Result<(), Arc<std::io::Error>>>;

/// Records appended but not yet on disk, and where the chain stands.
struct Pending {
    /// The head including pending records.
    head: Head,
    /// The head of what is on disk.
    durable: Head,
    bytes: Vec<u8>,
    acks: Vec<Ack>,
    /// When the oldest pending record was appended.
    oldest: Option<Instant>,
    /// Requests announced by [`AuditLog::coming`] that have not appended (nor given up) yet.
    coming: usize,
    /// What the flusher waits for, so that appends wake it only when it needs them.
    flusher: FlusherWait,
    closed: bool,
    /// Set when the file could not be cut back after a failed write: nothing more is written.
    broken: Option<Broken>,
}

/// A write failed and the file could not be cut back to its last record either.
#[derive(Clone)]
struct Broken {
    write: Arc<std::io::Error>,
    cut: Arc<std::io::Error>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlusherWait {
    /// Busy writing.
    No,
    /// For a first record.
    Work,
    /// For the requests still coming (or the commit delay to pass).
    Coming,
}

struct Shared {
    /// The background check of the history the node opened on.
    history: Mutex<History>,
    /// Signs the head that ends every batch.
    root: SigningKey,
    /// The last head on disk.
    last_signed: Mutex<Option<SignedAuditHead>>,
    pending: Mutex<Pending>,
    work: Condvar,
    commit_delay: Duration,
    syncs: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One request fewer is coming; wakes the flusher if it was waiting for the last one.
    fn one_less_coming(&self, p: &mut Pending) -> bool {
        p.coming = p.coming.saturating_sub(1);
        p.coming == 0 && p.flusher == FlusherWait::Coming
    }
}

/// A request on its way to a record: while it lives, the flusher may wait (up to the commit
/// delay) to write its record with the others. Dropping it without appending says it will not.
pub struct Coming<'a> {
    log: &'a AuditLog,
    appended: bool,
}

impl Coming<'_> {
    /// Appends this request's record; see [`AuditLog::append`]. The record is queued for the
    /// flusher when this is called, not when the future is first polled, so that the caller
    /// can finish its own work (the seal) while the record is written and synced.
    pub fn append(
        mut self,
        new: NewRecord,
    ) -> impl std::future::Future<Output = Result<u64, AuditLogError>> + Send + 'static {
        self.appended = true;
        let queued = self.log.enqueue(new, true);
        async move {
            let (seq, done) = queued?;
            durable(seq, done).await
        }
    }
}

/// Waits for the flusher's answer for the record `seq`.
async fn durable(seq: u64, done: Acked) -> Result<u64, AuditLogError> {
    match done.await {
        Ok(Ok(())) => Ok(seq),
        Ok(Err(why)) => Err(AuditLogError::Write(why)),
        Err(_) => Err(AuditLogError::Closed),
    }
}

impl Drop for Coming<'_> {
    fn drop(&mut self) {
        if !self.appended {
            let wake = {
                let mut p = self.log.shared.lock();
                self.log.shared.one_less_coming(&mut p)
            };
            if wake {
                self.log.shared.work.notify_one();
            }
        }
    }
}

/// The open log: appends records, each acknowledged once a signed head covering it is on
/// disk.
pub struct AuditLog {
    shared: Arc<Shared>,
    flusher: Mutex<Option<std::thread::JoinHandle<()>>>,
}

fn link(prev: &[u8; 32], line: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update(prev)
        .chain_update(line)
        .finalize()
        .into()
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> AuditLogError + '_ {
    move |source| AuditLogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates an empty log in `data_dir` (a new node store comes with one), on disk with its
/// directory entry. An empty file left by an interrupted attempt is reused.
pub fn create(data_dir: &Path) -> Result<(), AuditLogError> {
    let path = log_path(data_dir);
    let io = io_error(&path);
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(&io)?;
    if file.metadata().map_err(&io)?.len() > 0 {
        return Err(AuditLogError::AlreadyExists(path.clone()));
    }
    file.sync_all().map_err(&io)?;
    File::open(data_dir)
        .and_then(|d| d.sync_all())
        .map_err(&io)?;
    Ok(())
}

/// What a read of the log found.
#[derive(Debug)]
pub struct LogContents {
    /// The first record's sequence number: 0, or the checkpoint's count for a log whose older
    /// records were archived.
    pub first_seq: u64,
    /// The chain hash before the first record (all zeros, or the checkpoint's).
    pub first_hash: [u8; 32],
    /// Every record the last signed head covers, in order, chain checked.
    pub records: Vec<ReleaseRecord>,
    /// The chain hash after each of `records`.
    pub hashes: Vec<[u8; 32]>,
    /// The last signed head (none for an empty log).
    pub head: Option<SignedAuditHead>,
    /// Who signed it: the KMS root signing address, if the file is genuine.
    pub signer: Option<[u8; 20]>,
    /// Bytes after the last head: a batch being written, or a crash's unacknowledged write.
    pub torn_tail_bytes: u64,
}

/// How a log fails the check against a head an auditor kept.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeadCheckError {
    /// The kept head's signature does not recover to a key, or to another one than the log's.
    #[error("the kept head is signed by {kept}, the log by {log}")]
    Signer {
        /// The kept head's signer.
        kept: String,
        /// The log's signer.
        log: String,
    },
    /// The log has fewer records than the kept head covers: it was cut back.
    #[error(
        "the log has {log} records, fewer than the {kept} the kept head covers: it was truncated"
    )]
    Truncated {
        /// Records the kept head covers.
        kept: u64,
        /// Records in the log.
        log: u64,
    },
    /// The kept head is older than the log's first record: check it against the archived
    /// segment that holds it.
    #[error("the kept head covers {kept} records, and this log starts at record {first} (the older ones are archived): check the kept head against the archived segment")]
    Archived {
        /// Records the kept head covers.
        kept: u64,
        /// The log's first record.
        first: u64,
    },
    /// The log's records up to the kept head hash differently: they were rewritten.
    #[error("the log's first {records} records do not hash to the kept head: they were rewritten")]
    Rewritten {
        /// Records the kept head covers.
        records: u64,
    },
}

impl LogContents {
    /// Checks that this log extends `kept`, a head fetched earlier (`GetAuditHead`): same
    /// signer, at least as many records, the same chain hash at that point.
    pub fn extends(&self, kept: &SignedAuditHead) -> Result<(), HeadCheckError> {
        let hex_of =
            |a: Option<[u8; 20]>| a.map_or("nobody".into(), |a| format!("0x{}", hex::encode(a)));
        let kept_signer = kept.signer().ok();
        // An empty log has no head, hence no signer: it is then only shorter than the kept
        // one. A head whose signature recovers to nobody proves nothing.
        let same_signer = match (&self.head, self.signer) {
            (None, _) => true,
            (Some(_), Some(log)) => Some(log) == kept_signer,
            (Some(_), None) => false,
        };
        if kept_signer.is_none() || !same_signer {
            return Err(HeadCheckError::Signer {
                kept: hex_of(kept_signer),
                log: hex_of(self.signer),
            });
        }
        let n = kept.head.records;
        let log = (self.first_seq).saturating_add(self.records.len() as u64);
        if n > log {
            return Err(HeadCheckError::Truncated { kept: n, log });
        }
        if n < self.first_seq {
            return Err(HeadCheckError::Archived {
                kept: n,
                first: self.first_seq,
            });
        }
        let at = match n - self.first_seq {
            0 => self.first_hash,
            i => self.hashes[(i - 1) as usize],
        };
        if at != kept.head.hash {
            return Err(HeadCheckError::Rewritten { records: n });
        }
        Ok(())
    }
}

struct Scan {
    /// After the last intact record.
    head: Head,
    /// The last head line and the chain there (its `file_len` is after the head line).
    signed: Option<(SignedAuditHead, Head)>,
    file_len: u64,
}

impl Scan {
    /// Checks the last head's signer, and says where the part no head covers starts (records
    /// after the last head, or a torn write): `(the signed state, where the rest starts)`.
    fn authenticate(
        &self,
        path: &Path,
        expected_signer: Option<[u8; 20]>,
    ) -> Result<(Head, Option<u64>), AuditLogError> {
        let chain = |source| AuditLogError::HashChain {
            path: path.to_path_buf(),
            source,
        };
        let signed_head = match &self.signed {
            None if self.head.next_seq > 0 => {
                return Err(chain(HashChainBreak::Unsigned {
                    records: self.head.next_seq,
                }))
            }
            None => EMPTY,
            Some((signed, at)) => {
                if let Some(expected) = expected_signer {
                    let found = signed.signer();
                    if found.as_ref().ok() != Some(&expected) {
                        return Err(chain(HashChainBreak::HeadSigner {
                            found: match found {
                                Ok(a) => format!("0x{}", hex::encode(a)),
                                Err(e) => format!("no key ({e})"),
                            },
                            expected: format!("0x{}", hex::encode(expected)),
                        }));
                    }
                }
                *at
            }
        };
        let rest = (self.file_len > signed_head.file_len).then_some(signed_head.file_len);
        Ok((signed_head, rest))
    }
}

/// The longest line kept in memory: records and heads are under 2 KiB; a longer line is read
/// past (it cannot parse) without holding it.
const MAX_LINE: usize = 64 << 10;

/// One line into `line` (with its newline, if any), at most [`MAX_LINE`] bytes of it kept;
/// the bytes the line took in the file.
fn read_line(reader: &mut impl BufRead, line: &mut Vec<u8>) -> std::io::Result<usize> {
    let n = reader.take(MAX_LINE as u64).read_until(b'\n', line)?;
    if n < MAX_LINE || line.last() == Some(&b'\n') {
        return Ok(n);
    }
    // Too long to be a record: skip to its end, keeping nothing more (it fails to parse, as
    // `line` has no newline).
    let mut skipped = 0;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(n + skipped);
        }
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                reader.consume(i + 1);
                return Ok(n + skipped + i + 1);
            }
            None => {
                let len = buf.len();
                reader.consume(len);
                skipped += len;
            }
        }
    }
}

/// Reads the log from the start, checking every link; `each` sees every intact record. A log
/// whose first line is a head starts there (a checkpoint: the records before it were moved to
/// an archived segment that ends in the same head).
fn scan(
    file: impl Read,
    path: &Path,
    mut each: impl FnMut(ReleaseRecord, [u8; 32]),
) -> Result<Scan, AuditLogError> {
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut head = EMPTY;
    let mut signed = None;
    let mut torn_at = None;
    let mut offset = 0u64;
    let mut line = Vec::new();
    let chain = |source| AuditLogError::HashChain {
        path: path.to_path_buf(),
        source,
    };
    loop {
        line.clear();
        let n = read_line(&mut reader, &mut line).map_err(io_error(path))?;
        if n == 0 {
            break;
        }
        let parsed = match line.split_last() {
            Some((b'\n', body)) => parse_line(body),
            _ => None,
        };
        match parsed {
            None => {
                torn_at.get_or_insert(offset);
            }
            Some(_) if torn_at.is_some() => {
                let after = match head.next_seq {
                    0 => "none (start of the log)".to_string(),
                    n => (n - 1).to_string(),
                };
                return Err(chain(HashChainBreak::Damaged {
                    after,
                    offset: torn_at.unwrap_or(offset),
                }));
            }
            Some(Line::Head(h)) if offset == 0 => {
                head = Head {
                    next_seq: h.head.records,
                    hash: h.head.hash,
                    file_len: n as u64,
                };
                signed = Some((h, head));
            }
            Some(Line::Head(h)) => {
                if h.head.records != head.next_seq || h.head.hash != head.hash {
                    return Err(chain(HashChainBreak::HeadMismatch {
                        records: h.head.records,
                    }));
                }
                signed = Some((
                    h,
                    Head {
                        file_len: offset + n as u64,
                        ..head
                    },
                ));
            }
            Some(Line::Record(record, body)) => {
                if record.seq != head.next_seq {
                    return Err(chain(HashChainBreak::OutOfSequence {
                        expected: head.next_seq,
                        found: record.seq,
                    }));
                }
                if decode_hash(&record.prev_hash) != Some(head.hash) {
                    return Err(chain(HashChainBreak::Broken {
                        seq: record.seq,
                        prev: record.seq.saturating_sub(1),
                    }));
                }
                // A checkpoint claiming u64::MAX records has no room for another.
                let next_seq = head.next_seq.checked_add(1).ok_or_else(|| {
                    chain(HashChainBreak::OutOfSequence {
                        expected: head.next_seq,
                        found: record.seq,
                    })
                })?;
                head = Head {
                    next_seq,
                    hash: link(&head.hash, body),
                    file_len: offset + n as u64,
                };
                each(*record, head.hash);
            }
        }
        offset += n as u64;
    }
    Ok(Scan {
        head,
        signed,
        file_len: offset,
    })
}

/// The largest tail read into memory to find the last head. What a crash leaves after the last
/// head is one batch being written (kilobytes); more is not a crash's doing, and the file is
/// then read from the start, streamed and fully checked, as before heads were checkpoints.
const MAX_TAIL_WINDOW: u64 = 16 << 20;

/// The last head of the log, found from the end of the file: a window of the file's last bytes
/// is read and its lines parsed forward, the window doubling until it holds a head (the bytes
/// after the last head are at most the batch being written when the node stopped, so one
/// window of 64 KiB almost always does). Past [`MAX_TAIL_WINDOW`] the whole file is scanned
/// instead ([`scan`]). Without any head, `head.next_seq` counts the records (for
/// [`Scan::authenticate`]'s error).
fn scan_tail(file: &File, path: &Path) -> Result<Scan, AuditLogError> {
    use std::os::unix::fs::FileExt;
    let io = io_error(path);
    let file_len = file.metadata().map_err(&io)?.len();
    let mut window = 1u64 << 16;
    loop {
        if window > MAX_TAIL_WINDOW && file_len > MAX_TAIL_WINDOW {
            tracing::warn!(
                bytes = file_len,
                "no signed head in the key-release log's last {} MiB: reading it whole",
                MAX_TAIL_WINDOW >> 20
            );
            return scan(file, path, |_, _| ());
        }
        let start = file_len.saturating_sub(window);
        let mut bytes = vec![0u8; (file_len - start) as usize];
        file.read_exact_at(&mut bytes, start).map_err(&io)?;
        // Inside the file, the window's first line is most likely cut: start after it.
        let first = match start {
            0 => 0,
            _ => bytes
                .iter()
                .position(|&b| b == b'\n')
                .map_or(bytes.len(), |i| i + 1),
        };
        let (mut signed, mut records) = (None, 0u64);
        let mut offset = first;
        while let Some(len) = bytes[offset..].iter().position(|&b| b == b'\n') {
            match parse_line(&bytes[offset..offset + len]) {
                Some(Line::Head(h)) => {
                    let end = start + (offset + len + 1) as u64;
                    let at = Head {
                        next_seq: h.head.records,
                        hash: h.head.hash,
                        file_len: end,
                    };
                    signed = Some((h, at));
                }
                Some(Line::Record(..)) => records += 1,
                None => {}
            }
            offset += len + 1;
        }
        if let Some((h, at)) = signed {
            return Ok(Scan {
                head: at,
                signed: Some((h, at)),
                file_len,
            });
        }
        if start == 0 {
            return Ok(Scan {
                head: Head {
                    next_seq: records,
                    ..EMPTY
                },
                signed: None,
                file_len,
            });
        }
        window = window.saturating_mul(2);
    }
}

/// What the background check of the history before the last head found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum History {
    /// Still reading.
    Checking,
    /// Every record up to the head the node opened at chains and every head adds up.
    Intact {
        /// Records checked.
        records: u64,
    },
    /// The history was changed: what the check found.
    Broken(String),
}

/// Checks the log from its start up to `end` (the last head when it was opened): every link,
/// every head, and that the chain there is `expected`.
fn check_history(path: &Path, end: u64, expected: &SignedAuditHead) -> Result<u64, AuditLogError> {
    let file = open_existing(path, false)?;
    let mut read = 0u64;
    let scan = scan(file.take(end), path, |_, _| read += 1)?;
    match scan.signed {
        Some((h, at)) if at.file_len == end && h.head == expected.head => Ok(read),
        _ => Err(AuditLogError::HashChain {
            path: path.to_path_buf(),
            source: HashChainBreak::HeadMismatch {
                records: expected.head.records,
            },
        }),
    }
}

/// Every intact record of the log in `data_dir`, with the chain checked. Safe to call while
/// the node runs (a record being written shows as a torn tail).
pub fn read(data_dir: &Path) -> Result<LogContents, AuditLogError> {
    read_chain(&[], data_dir)
}

/// [`read`] of the archived `segments` (oldest first, as [`archived_segments`] lists them)
/// followed by the log in `data_dir`: one chain, each file starting at the head the one before
/// it ends in.
pub fn read_chain(segments: &[PathBuf], data_dir: &Path) -> Result<LogContents, AuditLogError> {
    let path = log_path(data_dir);
    let mut files: Vec<Box<dyn Read>> = Vec::new();
    for segment in segments {
        files.push(Box::new(open_existing(segment, false)?));
    }
    files.push(Box::new(open_existing(&path, false)?));
    // An archived segment ends in its last head, and the next file starts with the same line:
    // read as one stream, that is a head repeated where it already holds.
    let joined = files
        .into_iter()
        .reduce(|a, b| Box::new(a.chain(b)))
        .expect("at least the live log");
    let mut records = Vec::new();
    let mut hashes = Vec::new();
    let scan = scan(joined, &path, |r, h| {
        records.push(r);
        hashes.push(h);
    })?;
    let (signed, _) = scan.authenticate(&path, None)?;
    // A log that starts at a checkpoint holds the records after it (the scan checked that
    // the first one chains to it).
    let first_seq = records.first().map_or(signed.next_seq, |r| r.seq);
    let first_hash = (records.first())
        .and_then(|r| decode_hash(&r.prev_hash))
        .unwrap_or(signed.hash);
    let kept = signed.next_seq.saturating_sub(first_seq) as usize;
    records.truncate(kept);
    hashes.truncate(kept);
    let head = scan.signed.map(|(h, _)| h);
    Ok(LogContents {
        first_seq,
        first_hash,
        records,
        hashes,
        signer: head.as_ref().and_then(|h| h.signer().ok()),
        head,
        torn_tail_bytes: scan.file_len - signed.file_len,
    })
}

/// What [`archive`] moved out of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedSegment {
    /// The segment file.
    pub path: PathBuf,
    /// Its first record's sequence number.
    pub first_seq: u64,
    /// Records up to and including its last head (the live log now starts there).
    pub records: u64,
}

/// Segment files are named by the records they hold, so they sort and join in order.
fn segment_name(first_seq: u64, records: u64) -> String {
    format!("audit-{first_seq:020}-{records:020}.log")
}

/// The archived segments in `dir`, oldest first.
pub fn archived_segments(dir: &Path) -> Result<Vec<PathBuf>, AuditLogError> {
    let io = io_error(dir);
    let mut found: Vec<(u64, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(&io)? {
        let path = entry.map_err(&io)?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let first = (name.strip_prefix("audit-"))
            .and_then(|rest| rest.strip_suffix(".log"))
            .and_then(|range| range.split_once('-'))
            .and_then(|(first, _)| first.parse::<u64>().ok());
        if let Some(first) = first {
            found.push((first, path));
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

/// Moves every record of the log in `data_dir` into a segment file in `into` and starts the
/// live log again at its last head (a checkpoint line: the segment ends in the same line, so
/// [`read_chain`] joins them). Only an intact log ending in a head is archived, and only while
/// no node has it open (the caller holds the node's store, see `archive_audit_log`). The
/// segment is on disk before the live log is replaced, and the live log is replaced by a
/// rename: a crash leaves either the old log or the new one, and the segment.
pub fn archive(data_dir: &Path, into: &Path) -> Result<ArchivedSegment, AuditLogError> {
    let path = log_path(data_dir);
    let io = io_error(&path);
    // Streamed: a log worth archiving may be gigabytes.
    let mut first: Option<u64> = None;
    let scan = scan(open_existing(&path, false)?, &path, |r, _| {
        first.get_or_insert(r.seq);
    })?;
    let (signed, rest) = scan.authenticate(&path, None)?;
    let Some((head, _)) = scan.signed else {
        return Err(AuditLogError::NothingToArchive(path.clone()));
    };
    if rest.is_some() {
        return Err(AuditLogError::TailNotCovered {
            path: path.clone(),
            bytes: scan.file_len - signed.file_len,
        });
    }
    let first_seq = first.unwrap_or(signed.next_seq);
    if head.head.records == first_seq {
        return Err(AuditLogError::NothingToArchive(path.clone()));
    }
    let segment = into.join(segment_name(first_seq, head.head.records));
    let segment_io = io_error(&segment);
    // create_new: never through a symlink someone left there, never over another segment.
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&segment)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => AuditLogError::SegmentExists(segment.clone()),
            _ => segment_io(e),
        })?;
    std::io::copy(&mut open_existing(&path, false)?, &mut out)
        .and_then(|_| out.sync_all())
        .and_then(|()| File::open(into))
        .and_then(|d| d.sync_all())
        .map_err(&segment_io)?;
    let mut line =
        serde_json::to_vec(&HeadLine { head: head.clone() }).map_err(AuditLogError::Encode)?;
    line.push(b'\n');
    let fresh = path.with_extension("log.new");
    // A stale one from an interrupted archive goes (removing a symlink removes only the link).
    match std::fs::remove_file(&fresh) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
        _ => {}
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&fresh)
        .and_then(|mut f| f.write_all(&line).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&fresh, &path))
        .and_then(|()| File::open(data_dir))
        .and_then(|d| d.sync_all())
        .map_err(&io)?;
    Ok(ArchivedSegment {
        path: segment.clone(),
        first_seq,
        records: head.head.records,
    })
}

/// Writes `records` records to the empty log in `data_dir` as a node would (a signed head
/// after every `per_head`), without a sync per batch: how a long-lived node's log is made in
/// seconds for measuring (`snpkms bench --audit-log-records`). `each(i)` gives record i.
pub fn write_synthetic(
    data_dir: &Path,
    root: &SigningKey,
    records: u64,
    per_head: u64,
    each: impl Fn(u64) -> NewRecord,
) -> Result<(), AuditLogError> {
    let path = log_path(data_dir);
    let io = io_error(&path);
    let file = open_existing(&path, true)?;
    if file.metadata().map_err(&io)?.len() > 0 {
        return Err(AuditLogError::AlreadyExists(path.clone()));
    }
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut hash = [0u8; 32];
    for seq in 0..records {
        let line = record_line(seq, &hash, each(seq))?;
        hash = link(&hash, &line);
        out.write_all(&line).map_err(&io)?;
        out.write_all(b"\n").map_err(&io)?;
        if (seq + 1) % per_head.max(1) == 0 || seq + 1 == records {
            let signed = AuditHead {
                records: seq + 1,
                hash,
            }
            .sign(root)
            .map_err(|e| io(std::io::Error::other(format!("signing the log head: {e}"))))?;
            let head =
                serde_json::to_vec(&HeadLine { head: signed }).map_err(AuditLogError::Encode)?;
            out.write_all(&head).map_err(&io)?;
            out.write_all(b"\n").map_err(&io)?;
        }
    }
    let file = out.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(&io)?;
    Ok(())
}

/// A record's line (without its newline): compact JSON escapes line breaks inside strings, so a
/// record is exactly one line.
fn record_line(seq: u64, prev: &[u8; 32], new: NewRecord) -> Result<Vec<u8>, AuditLogError> {
    let record = ReleaseRecord {
        seq,
        time: new.time,
        kind: new.kind.as_str().to_string(),
        app_id: format!("0x{}", hex::encode(new.app_id)),
        compose_hash: format!("0x{}", hex::encode(new.compose_hash)),
        chip_id_hash: format!("0x{}", hex::encode(new.chip_id_hash)),
        measurement: hex::encode(new.measurement),
        epoch: new.epoch,
        block_number: new.block_number,
        block_hash: format!("0x{}", hex::encode(new.block_hash)),
        decision: if new.allowed { "allowed" } else { "denied" }.to_string(),
        reason: new.reason,
        share_epoch: new.share.map(|s| s.share_epoch),
        node_index: new.share.map(|s| s.node_index),
        app_signing_address: new
            .app_signing_address
            .map(|a| format!("0x{}", hex::encode(a))),
        prev_hash: hex::encode(prev),
    };
    serde_json::to_vec(&record).map_err(AuditLogError::Encode)
}

fn open_existing(path: &Path, write: bool) -> Result<File, AuditLogError> {
    OpenOptions::new()
        .read(true)
        .append(write)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => AuditLogError::Missing(path.to_path_buf()),
            _ => io_error(path)(e),
        })
}

/// Moves a torn tail out of the log into a file of its own (nothing is deleted), then cuts the
/// log after its last intact record.
fn set_aside_torn_tail(file: &mut File, path: &Path, at: u64) -> Result<(), AuditLogError> {
    let io = io_error(path);
    file.seek(SeekFrom::Start(at)).map_err(&io)?;
    let aside = path.with_extension(format!(
        "log.torn-{}",
        snpkms_core::Clock::now_unix(&crate::adapters::SystemClock)
    ));
    let mut out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&aside)
        .map_err(&io)?;
    let bytes = std::io::copy(file, &mut out)
        .and_then(|n| out.sync_all().map(|()| n))
        .map_err(&io)?;
    file.set_len(at)
        .and_then(|()| file.sync_all())
        .map_err(&io)?;
    tracing::warn!(
        bytes,
        moved_to = %aside.display(),
        "the key-release log ended in a partial write (a crash before it was acknowledged); set it aside"
    );
    Ok(())
}

impl AuditLog {
    /// Opens the log in `data_dir` from its last head, which must be signed by `root` (the
    /// KMS root signing key, which also signs every head written from now on), starts the
    /// check of the history before it in the background ([`AuditLog::history`]) and the
    /// flusher thread, which waits up to `commit_delay` for records still coming
    /// before it syncs.
    pub fn open(
        data_dir: &Path,
        root: SigningKey,
        commit_delay: Duration,
    ) -> Result<AuditLog, AuditLogError> {
        let path = log_path(data_dir);
        let mut file = open_existing(&path, true)?;
        let scan = scan_tail(&file, &path)?;
        let (head, rest) = scan.authenticate(&path, Some(address_of(root.verifying_key())))?;
        if let Some(at) = rest {
            set_aside_torn_tail(&mut file, &path, at)?;
        }
        let opened_at = scan.signed.as_ref().map(|(h, at)| (h.clone(), at.file_len));
        let shared = Arc::new(Shared {
            history: Mutex::new(match opened_at {
                None => History::Intact { records: 0 },
                Some(_) => History::Checking,
            }),
            last_signed: Mutex::new(scan.signed.map(|(h, _)| h)),
            root,
            pending: Mutex::new(Pending {
                head,
                durable: head,
                bytes: Vec::new(),
                acks: Vec::new(),
                oldest: None,
                coming: 0,
                flusher: FlusherWait::No,
                closed: false,
                broken: None,
            }),
            work: Condvar::new(),
            commit_delay,
            syncs: AtomicU64::new(0),
        });
        let flusher = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("snpkms-audit".into())
                .spawn(move || flush_loop(&shared, file))
                .map_err(io_error(&path))?
        };
        if let Some((head, end)) = opened_at {
            let (shared, checked) = (Arc::downgrade(&shared), path.clone());
            std::thread::Builder::new()
                .name("snpkms-audit-check".into())
                .spawn(move || {
                    let check = std::panic::catch_unwind(|| check_history(&checked, end, &head));
                    let found = match check.unwrap_or_else(|_| {
                        Err(AuditLogError::HistoryCheckFailed(
                            "the check panicked".into(),
                        ))
                    }) {
                        Ok(records) => {
                            tracing::info!(records, "key-release log history checked: intact");
                            History::Intact { records }
                        }
                        Err(e) => {
                            tracing::error!("key-release log history is broken: {e}");
                            History::Broken(e.to_string())
                        }
                    };
                    if let Some(shared) = shared.upgrade() {
                        *shared.history.lock().unwrap_or_else(|e| e.into_inner()) = found;
                    }
                })
                .map_err(io_error(&path))?;
        }
        Ok(AuditLog {
            shared,
            flusher: Mutex::new(Some(flusher)),
        })
    }

    /// What the background check of the history before the last head found so far.
    pub fn history(&self) -> History {
        (self.shared.history.lock())
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Announces a request that will append a record (or drop the returned guard).
    pub fn coming(&self) -> Coming<'_> {
        self.shared.lock().coming += 1;
        Coming {
            log: self,
            appended: false,
        }
    }

    /// Appends a record and waits until it is on disk; returns its sequence number.
    pub async fn append(&self, new: NewRecord) -> Result<u64, AuditLogError> {
        let (seq, done) = self.enqueue(new, false)?;
        durable(seq, done).await
    }

    /// Queues a record for the flusher (waking it if it waits for work or for this record);
    /// its sequence number and where the flusher will answer.
    fn enqueue(&self, new: NewRecord, announced: bool) -> Result<(u64, Acked), AuditLogError> {
        let (ack, done) = oneshot::channel();
        let (seq, wake) = {
            let mut p = self.shared.lock();
            let last_coming = announced && self.shared.one_less_coming(&mut p);
            if let Some(Broken { write, cut }) = p.broken.clone() {
                return Err(AuditLogError::Unrecoverable { write, cut });
            }
            if p.closed {
                return Err(AuditLogError::Closed);
            }
            let seq = p.head.next_seq;
            let line = record_line(seq, &p.head.hash, new)?;
            p.head = Head {
                next_seq: p.head.next_seq + 1,
                hash: link(&p.head.hash, &line),
                // Not known until the batch's head line is written; only `durable`'s counts.
                file_len: p.head.file_len,
            };
            p.bytes.extend_from_slice(&line);
            p.bytes.push(b'\n');
            p.acks.push(ack);
            p.oldest.get_or_insert_with(Instant::now);
            (seq, last_coming || p.flusher == FlusherWait::Work)
        };
        if wake {
            self.shared.work.notify_one();
        }
        Ok((seq, done))
    }

    /// Records in the log, counting those being written.
    pub fn len(&self) -> u64 {
        self.shared.lock().head.next_seq
    }

    /// No records yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The last signed head on disk (none while the log is empty): what `GetAuditHead` serves.
    pub fn signed_head(&self) -> Option<SignedAuditHead> {
        self.shared
            .last_signed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Successful syncs since the log was opened.
    pub fn syncs(&self) -> u64 {
        self.shared.syncs.load(Ordering::Relaxed)
    }

    /// Writes what is pending (without waiting for requests still coming), stops the flusher
    /// and waits for it.
    pub async fn close(&self) {
        self.shared.lock().closed = true;
        self.shared.work.notify_one();
        let handle = self
            .flusher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(h) = handle {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.work.notify_one();
    }
}

/// The flusher: one write and one fdatasync for everything appended since the last round.
fn flush_loop(shared: &Shared, mut file: File) {
    let mut batch = Vec::new();
    loop {
        let (acks, head) = {
            let mut p = shared.lock();
            while p.bytes.is_empty() && !p.closed {
                p.flusher = FlusherWait::Work;
                p = shared.work.wait(p).unwrap_or_else(|e| e.into_inner());
            }
            if p.bytes.is_empty() {
                return; // closed, and everything appended is on disk
            }
            let deadline = p.oldest.unwrap_or_else(Instant::now) + shared.commit_delay;
            while p.coming > 0 && !p.closed {
                let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                    break;
                };
                p.flusher = FlusherWait::Coming;
                p = shared
                    .work
                    .wait_timeout(p, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            p.flusher = FlusherWait::No;
            p.oldest = None;
            std::mem::swap(&mut batch, &mut p.bytes);
            (std::mem::take(&mut p.acks), p.head)
        };
        // The batch ends in its signed head, in the same write and before the same sync: a
        // record is acknowledged only once a head covering it is on disk.
        let signed = AuditHead {
            records: head.next_seq,
            hash: head.hash,
        }
        .sign(&shared.root)
        .map_err(|e| std::io::Error::other(format!("signing the log head: {e}")))
        .and_then(|signed| {
            let line = serde_json::to_vec(&HeadLine {
                head: signed.clone(),
            })
            .map_err(std::io::Error::other)?;
            batch.extend_from_slice(&line);
            batch.push(b'\n');
            Ok(signed)
        });
        let batch_len = batch.len() as u64;
        let written = signed.and_then(|signed| {
            file.write_all(&batch)
                .and_then(|()| file.sync_data())
                .map(|()| signed)
        });
        batch.clear();
        match written {
            Ok(signed) => {
                shared.syncs.fetch_add(1, Ordering::Relaxed);
                {
                    let mut p = shared.lock();
                    p.durable = Head {
                        file_len: p.durable.file_len + batch_len,
                        ..head
                    };
                }
                *shared.last_signed.lock().unwrap_or_else(|e| e.into_inner()) = Some(signed);
                for ack in acks {
                    let _ = ack.send(Ok(()));
                }
            }
            Err(e) => {
                let why = Arc::new(e);
                let mut failed = acks;
                let mut p = shared.lock();
                // Records appended meanwhile chain to the lost ones: they go too.
                failed.append(&mut p.acks);
                p.bytes.clear();
                p.oldest = None;
                p.head = p.durable;
                let cut = file
                    .set_len(p.durable.file_len)
                    .and_then(|()| file.sync_data());
                let cut_failed = cut.is_err();
                if let Err(cut) = cut {
                    p.broken = Some(Broken {
                        write: why.clone(),
                        cut: Arc::new(cut),
                    });
                }
                drop(p);
                tracing::error!(
                    records = failed.len(),
                    "the key-release log could not be written ({why}); those requests release nothing"
                );
                for ack in failed {
                    let _ = ack.send(Err(why.clone()));
                }
                if cut_failed {
                    return;
                }
            }
        }
    }
}

fn decode_hash(s: &str) -> Option<[u8; 32]> {
    hex::decode(s).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: u8) -> NewRecord {
        NewRecord {
            time: 1000 + i as u64,
            kind: snpkms_core::RecordKind::AppKey,
            app_id: [i; 20],
            compose_hash: [i; 32],
            chip_id_hash: [i; 32],
            measurement: [i; 48],
            epoch: 0,
            block_number: i as u64,
            block_hash: [i; 32],
            allowed: i.is_multiple_of(2),
            reason: "line\nbreak".into(),
            share: None,
            app_signing_address: None,
        }
    }

    fn key() -> SigningKey {
        SigningKey::from_slice(&[5; 32]).unwrap()
    }

    fn new_log() -> (tempfile::TempDir, AuditLog) {
        let dir = tempfile::tempdir().unwrap();
        create(dir.path()).unwrap();
        let log = AuditLog::open(dir.path(), key(), Duration::ZERO).unwrap();
        (dir, log)
    }

    fn lines(dir: &Path) -> Vec<String> {
        std::fs::read_to_string(log_path(dir))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn write_lines(dir: &Path, lines: &[String]) {
        std::fs::write(log_path(dir), lines.join("\n") + "\n").unwrap();
    }

    fn chain_break(dir: &Path) -> HashChainBreak {
        match read(dir) {
            Err(AuditLogError::HashChain { source, .. }) => source,
            other => panic!("expected a chain break, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn chain_survives_reopen_and_detects_edits() {
        let (dir, log) = new_log();
        for i in 0..3 {
            assert_eq!(log.append(record(i)).await.unwrap(), i as u64);
        }
        log.close().await;
        assert!(matches!(
            log.append(record(9)).await,
            Err(AuditLogError::Closed)
        ));
        let log = AuditLog::open(dir.path(), key(), Duration::ZERO).unwrap();
        assert_eq!(log.len(), 3);
        assert_eq!(log.append(record(3)).await.unwrap(), 3);
        log.close().await;
        let read_back = read(dir.path()).unwrap();
        assert_eq!(read_back.torn_tail_bytes, 0);
        assert_eq!(read_back.records.len(), 4);
        assert_eq!(read_back.records[2].decision, "allowed");
        assert_eq!(read_back.records[1].decision, "denied");
        assert_eq!(read_back.records[1].reason, "line\nbreak");

        // One batch per record here: record, head, record, head, ...
        let original = lines(dir.path());
        assert_eq!(original.len(), 8);
        let one = at_seq(&original, 1);

        // Edit a record in place: the head after it no longer adds up.
        let mut edited = original.clone();
        edited[one] = edited[one].replace("\"denied\"", "\"allowed\"");
        write_lines(dir.path(), &edited);
        assert_eq!(
            chain_break(dir.path()),
            HashChainBreak::HeadMismatch { records: 2 }
        );
        // The node opens from its last head (genuinely signed) without reading the history,
        // and the check of the history behind it finds the edit.
        let log = AuditLog::open(dir.path(), key(), Duration::ZERO).unwrap();
        assert_eq!(log.len(), 4);
        assert!(
            matches!(checked(&log).await, History::Broken(why) if why.contains("does not match")),
            "the history check reports the edit"
        );
        log.close().await;
        // With its head gone too, the next record no longer chains to it.
        edited.remove(one + 1);
        write_lines(dir.path(), &edited);
        assert_eq!(
            chain_break(dir.path()),
            HashChainBreak::Broken { seq: 2, prev: 1 }
        );

        // Delete a record (and its head): a gap in the sequence.
        let mut deleted = original.clone();
        deleted.drain(one..one + 2);
        write_lines(dir.path(), &deleted);
        assert_eq!(
            chain_break(dir.path()),
            HashChainBreak::OutOfSequence {
                expected: 1,
                found: 2
            }
        );

        // Garble a record in the middle: not what a crash leaves.
        let mut garbled = original.clone();
        garbled[one] = "\0\0\0".into();
        write_lines(dir.path(), &garbled);
        assert_eq!(
            chain_break(dir.path()),
            HashChainBreak::Damaged {
                after: "0".into(),
                offset: (original[0].len() + original[1].len()) as u64 + 2
            }
        );
        let log = AuditLog::open(dir.path(), key(), Duration::ZERO).unwrap();
        assert!(matches!(checked(&log).await, History::Broken(why) if why.contains("damaged")));
        log.close().await;

        // The genuine file's history is intact.
        write_lines(dir.path(), &original);
        let log = AuditLog::open(dir.path(), key(), Duration::ZERO).unwrap();
        assert_eq!(checked(&log).await, History::Intact { records: 4 });
    }

    /// The history check's result, once it has one.
    async fn checked(log: &AuditLog) -> History {
        for _ in 0..500 {
            match log.history() {
                History::Checking => tokio::time::sleep(Duration::from_millis(10)).await,
                done => return done,
            }
        }
        panic!("the history check did not finish in 5 s");
    }

    fn at_seq(lines: &[String], seq: u64) -> usize {
        lines
            .iter()
            .position(|l| l.starts_with(&format!("{{\"seq\":{seq},")))
            .unwrap()
    }

    /// What a host that owns the disk can do: edit record 1, recompute every hash after it,
    /// and re-sign the heads with a key of its own (or drop them).
    fn rewrite(lines: &[String], heads: Option<&SigningKey>) -> Vec<String> {
        let mut hash = [0u8; 32];
        let mut records = 0;
        let mut out = Vec::new();
        for l in lines {
            match parse_line(l.as_bytes()).unwrap() {
                Line::Record(mut r, _) => {
                    if r.seq == 1 {
                        r.decision = "allowed".into();
                    }
                    r.prev_hash = hex::encode(hash);
                    let line = serde_json::to_string(&r).unwrap();
                    hash = link(&hash, line.as_bytes());
                    records += 1;
                    out.push(line);
                }
                Line::Head(_) => {
                    if let Some(k) = heads {
                        let head = AuditHead { records, hash }.sign(k).unwrap();
                        out.push(serde_json::to_string(&HeadLine { head }).unwrap());
                    }
                }
            }
        }
        out
    }

    #[tokio::test]
    async fn a_threshold_record_names_its_share_and_the_vouched_address_in_the_chain() {
        let (dir, log) = new_log();
        log.append(record(0)).await.unwrap();
        let mut signed = record(2);
        signed.kind = snpkms_core::RecordKind::AppKeySignature;
        signed.share = Some(snpkms_core::ShareOrigin {
            share_epoch: 4,
            node_index: 3,
        });
        signed.app_signing_address = Some([0xab; 20]);
        log.append(signed).await.unwrap();
        log.close().await;
        let records = read(dir.path()).unwrap().records;
        // A replicated-root record carries none of the fields (its line is as before).
        assert_eq!(
            (records[0].share_epoch, records[0].node_index),
            (None, None)
        );
        assert!(!lines(dir.path())[0].contains("share_epoch"));
        assert_eq!(records[1].kind, "app_key_signature");
        assert_eq!(
            (records[1].share_epoch, records[1].node_index),
            (Some(4), Some(3))
        );
        assert_eq!(
            records[1].app_signing_address.as_deref(),
            Some(format!("0x{}", "ab".repeat(20)).as_str())
        );
        // The address is part of the chained line: the head after it no longer adds up.
        let mut edited = lines(dir.path());
        let at = edited
            .iter()
            .position(|l| l.contains("app_signing_address"))
            .unwrap();
        edited[at] = edited[at].replace(&"ab".repeat(20), &"cd".repeat(20));
        write_lines(dir.path(), &edited);
        assert_eq!(
            chain_break(dir.path()),
            HashChainBreak::HeadMismatch { records: 2 }
        );
    }

    #[tokio::test]
    async fn a_log_rewritten_with_recomputed_hashes_does_not_open() {
        let (dir, log) = new_log();
        for i in 0..3 {
            log.append(record(i)).await.unwrap();
        }
        log.close().await;
        let original = lines(dir.path());
        let host_key = SigningKey::from_slice(&[6; 32]).unwrap();
        let expected = format!("0x{}", hex::encode(address_of(key().verifying_key())));

        write_lines(dir.path(), &rewrite(&original, Some(&host_key)));
        // The chain adds up (a reader without the root address sees a consistent file)...
        let read_back = read(dir.path()).unwrap();
        assert_eq!(read_back.records[1].decision, "allowed");
        assert_eq!(read_back.signer, Some(address_of(host_key.verifying_key())));
        // ...but the node refuses it: its root key did not sign the head.
        match AuditLog::open(dir.path(), key(), Duration::ZERO) {
            Err(AuditLogError::HashChain {
                source: HashChainBreak::HeadSigner { found, expected: e },
                ..
            }) => {
                assert_eq!(e, expected);
                assert_eq!(
                    found,
                    format!("0x{}", hex::encode(address_of(host_key.verifying_key())))
                );
            }
            other => panic!(
                "expected a head signed by another key, got {:?}",
                other.err()
            ),
        }

        // Without heads at all.
        write_lines(dir.path(), &rewrite(&original, None));
        assert_eq!(
            chain_break(dir.path()),
            HashChainBreak::Unsigned { records: 3 }
        );
        assert!(AuditLog::open(dir.path(), key(), Duration::ZERO).is_err());

        // The genuine file opens.
        write_lines(dir.path(), &original);
        AuditLog::open(dir.path(), key(), Duration::ZERO).unwrap();
    }

    #[tokio::test]
    async fn a_log_cut_back_is_caught_by_a_kept_head() {
        let (dir, log) = new_log();
        for i in 0..3 {
            log.append(record(i)).await.unwrap();
        }
        let kept = log.signed_head().unwrap();
        assert_eq!(kept.head.records, 3);
        assert_eq!(kept.signer().unwrap(), address_of(key().verifying_key()));
        let early = {
            let read_back = read(dir.path()).unwrap();
            AuditHead {
                records: 1,
                hash: read_back.hashes[0],
            }
            .sign(&key())
            .unwrap()
        };
        for i in 3..5 {
            log.append(record(i)).await.unwrap();
        }
        log.close().await;
        let full = read(dir.path()).unwrap();
        assert_eq!(full.extends(&kept), Ok(()));
        assert_eq!(full.extends(&early), Ok(()));

        // The host cuts the file back to the head after record 1: a valid, shorter log.
        let all = lines(dir.path());
        let cut = at_seq(&all, 1) + 2;
        write_lines(dir.path(), &all[..cut]);
        let log = AuditLog::open(dir.path(), key(), Duration::ZERO).unwrap();
        assert_eq!(log.len(), 2);
        log.close().await;
        assert_eq!(
            read(dir.path()).unwrap().extends(&kept),
            Err(HeadCheckError::Truncated { kept: 3, log: 2 })
        );
        // A head from another key proves nothing about this log.
        let foreign = kept
            .head
            .sign(&SigningKey::from_slice(&[6; 32]).unwrap())
            .unwrap();
        assert!(matches!(
            full.extends(&foreign),
            Err(HeadCheckError::Signer { .. })
        ));
        // Nor does a log whose last head carries a signature that recovers to no key, even
        // when its records extend the kept head.
        let mut junk = full;
        if let Some(h) = junk.head.as_mut() {
            h.signature = vec![0; 65];
        }
        junk.signer = junk.head.as_ref().and_then(|h| h.signer().ok());
        assert_eq!(junk.signer, None);
        assert!(matches!(
            junk.extends(&kept),
            Err(HeadCheckError::Signer { .. })
        ));
    }

    #[tokio::test]
    async fn records_no_head_covers_are_set_aside() {
        let (dir, log) = new_log();
        log.append(record(0)).await.unwrap();
        log.close().await;
        let genuine = lines(dir.path());
        // A record appended by someone else, chained correctly but with no head.
        let mut extra = genuine.clone();
        let mut r = read(dir.path()).unwrap().records[0].clone();
        r.seq = 1;
        r.prev_hash = hex::encode(read(dir.path()).unwrap().hashes[0]);
        extra.push(serde_json::to_string(&r).unwrap());
        write_lines(dir.path(), &extra);
        assert_eq!(read(dir.path()).unwrap().records.len(), 1, "not counted");
        let log = AuditLog::open(dir.path(), key(), Duration::ZERO).unwrap();
        assert_eq!(log.len(), 1);
        log.close().await;
        assert_eq!(lines(dir.path()), genuine);
    }

    #[tokio::test]
    async fn the_last_head_is_found_behind_more_than_one_window_of_unacknowledged_bytes() {
        let (dir, log) = new_log();
        for i in 0..3 {
            log.append(record(i)).await.unwrap();
        }
        log.close().await;
        let genuine = lines(dir.path());
        // 300 KiB of record lines after the last head (no head covers them): the tail window
        // must grow past 64 KiB to reach the head.
        let mut r = read(dir.path()).unwrap().records[2].clone();
        let mut extra = genuine.clone();
        for seq in 3..800 {
            r.seq = seq;
            r.reason = "x".repeat(300);
            extra.push(serde_json::to_string(&r).unwrap());
        }
        write_lines(dir.path(), &extra);
        assert!(std::fs::metadata(log_path(dir.path())).unwrap().len() > 4 * (1 << 16));
        let log = AuditLog::open(dir.path(), key(), Duration::ZERO).unwrap();
        assert_eq!(log.len(), 3);
        assert_eq!(checked(&log).await, History::Intact { records: 3 });
        log.close().await;
        assert_eq!(
            lines(dir.path()),
            genuine,
            "the unacknowledged part was set aside"
        );
    }

    #[tokio::test]
    async fn a_tail_too_long_for_a_crash_is_read_from_the_start_in_bounded_memory() {
        let (dir, log) = new_log();
        for i in 0..3 {
            log.append(record(i)).await.unwrap();
        }
        log.close().await;
        let genuine = lines(dir.path());
        let mut bytes = std::fs::read(log_path(dir.path())).unwrap();
        // 17 MiB after the last head, no head among it.
        let filler = format!("{{\"junk\":\"{}\"}}\n", "x".repeat(1000));
        while bytes.len() < (17 << 20) {
            bytes.extend_from_slice(filler.as_bytes());
        }
        std::fs::write(log_path(dir.path()), &bytes).unwrap();
        let log = AuditLog::open(dir.path(), key(), Duration::ZERO).unwrap();
        assert_eq!(log.len(), 3);
        log.close().await;
        assert_eq!(lines(dir.path()), genuine, "the rest was set aside");
    }

    #[test]
    fn a_checkpoint_at_the_last_sequence_number_is_refused_not_overflowed() {
        let dir = tempfile::tempdir().unwrap();
        let hash = [7u8; 32];
        let head = AuditHead {
            records: u64::MAX,
            hash,
        }
        .sign(&key())
        .unwrap();
        let mut r = record_line(u64::MAX, &hash, record(1)).unwrap();
        r.push(b'\n');
        let mut file = serde_json::to_vec(&HeadLine { head }).unwrap();
        file.push(b'\n');
        file.extend_from_slice(&r);
        std::fs::write(log_path(dir.path()), &file).unwrap();
        assert!(matches!(
            chain_break(dir.path()),
            HashChainBreak::OutOfSequence { .. }
        ));
    }

    #[tokio::test]
    async fn an_archived_log_continues_and_checks_as_one_chain_with_its_segments() {
        let (dir, log) = new_log();
        let archive_dir = tempfile::tempdir().unwrap();
        for i in 0..3 {
            log.append(record(i)).await.unwrap();
        }
        let kept_early = log.signed_head().unwrap();
        log.close().await;
        let first = archive(dir.path(), archive_dir.path()).unwrap();
        assert_eq!((first.first_seq, first.records), (0, 3));
        // The live log is one checkpoint line; it opens, continues at record 3, and its history
        // (the checkpoint, no record read) is intact.
        assert_eq!(lines(dir.path()).len(), 1);
        let log = AuditLog::open(dir.path(), key(), Duration::ZERO).unwrap();
        assert_eq!(log.len(), 3);
        assert_eq!(checked(&log).await, History::Intact { records: 0 });
        assert_eq!(log.append(record(3)).await.unwrap(), 3);
        assert_eq!(log.append(record(4)).await.unwrap(), 4);
        let kept_late = log.signed_head().unwrap();
        log.close().await;
        let second = archive(dir.path(), archive_dir.path()).unwrap();
        assert_eq!((second.first_seq, second.records), (3, 5));
        let log = AuditLog::open(dir.path(), key(), Duration::ZERO).unwrap();
        assert_eq!(log.append(record(5)).await.unwrap(), 5);
        log.close().await;

        // The live log alone: records from 5, heads from before it are in the archive.
        let live = read(dir.path()).unwrap();
        assert_eq!(live.first_seq, 5);
        assert_eq!(live.records.len(), 1);
        assert_eq!(
            live.extends(&kept_early),
            Err(HeadCheckError::Archived { kept: 3, first: 5 })
        );
        // With the segments: one chain from record 0, every kept head extended.
        let segments = archived_segments(archive_dir.path()).unwrap();
        assert_eq!(segments, vec![first.path.clone(), second.path.clone()]);
        let all = read_chain(&segments, dir.path()).unwrap();
        assert_eq!(all.first_seq, 0);
        let seqs: Vec<u64> = all.records.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [0, 1, 2, 3, 4, 5]);
        all.extends(&kept_early).unwrap();
        all.extends(&kept_late).unwrap();
        // A segment missing from the middle breaks the chain.
        assert!(read_chain(&segments[..1], dir.path()).is_err());
        // An edited segment breaks it too.
        let mut edited = std::fs::read_to_string(&first.path).unwrap();
        edited = edited.replacen("\"denied\"", "\"allowed\"", 1);
        std::fs::write(&first.path, edited).unwrap();
        assert!(matches!(
            read_chain(&segments, dir.path()),
            Err(AuditLogError::HashChain { .. })
        ));
        // A segment name already taken (a symlink planted there, or an earlier archive that
        // stopped before the rename) is never written through.
        let log = AuditLog::open(dir.path(), key(), Duration::ZERO).unwrap();
        log.append(record(6)).await.unwrap();
        log.close().await;
        let target = archive_dir.path().join("elsewhere");
        std::os::unix::fs::symlink(&target, archive_dir.path().join(segment_name(5, 7))).unwrap();
        assert!(matches!(
            archive(dir.path(), archive_dir.path()),
            Err(AuditLogError::SegmentExists(_))
        ));
        assert!(!target.exists(), "nothing written through the link");
        std::fs::remove_file(archive_dir.path().join(segment_name(5, 7))).unwrap();
        // Nothing to archive in a log that starts at its last head.
        archive(dir.path(), archive_dir.path()).unwrap();
        assert!(matches!(
            archive(dir.path(), archive_dir.path()),
            Err(AuditLogError::NothingToArchive(_))
        ));
    }

    #[tokio::test]
    async fn a_synthetic_log_is_what_a_node_writes() {
        let dir = tempfile::tempdir().unwrap();
        create(dir.path()).unwrap();
        write_synthetic(dir.path(), &key(), 20, 6, |i| record(i as u8)).unwrap();
        let contents = read(dir.path()).unwrap();
        assert_eq!(contents.records.len(), 20);
        assert_eq!(contents.head.unwrap().head.records, 20);
        let log = AuditLog::open(dir.path(), key(), Duration::ZERO).unwrap();
        assert_eq!(checked(&log).await, History::Intact { records: 20 });
        assert_eq!(log.append(record(20)).await.unwrap(), 20);
        log.close().await;
        assert!(matches!(
            write_synthetic(dir.path(), &key(), 1, 1, |i| record(i as u8)),
            Err(AuditLogError::AlreadyExists(_))
        ));
    }

    #[tokio::test]
    async fn a_torn_tail_is_set_aside_and_the_log_continues() {
        let (dir, log) = new_log();
        for i in 0..3 {
            log.append(record(i)).await.unwrap();
        }
        log.close().await;
        let intact = std::fs::read(log_path(dir.path())).unwrap();
        // A crash in the middle of a write, and one that left zeros after a line break.
        let torn = b"{\"seq\":3,\"time\":10\n\0\0\0\0";
        let mut file = OpenOptions::new()
            .append(true)
            .open(log_path(dir.path()))
            .unwrap();
        file.write_all(torn).unwrap();
        assert_eq!(read(dir.path()).unwrap().torn_tail_bytes, torn.len() as u64);
        assert_eq!(read(dir.path()).unwrap().records.len(), 3);

        let log = AuditLog::open(dir.path(), key(), Duration::ZERO).unwrap();
        assert_eq!(std::fs::read(log_path(dir.path())).unwrap(), intact);
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains("audit.log.torn-"))
            .collect();
        assert_eq!(aside.len(), 1);
        assert_eq!(std::fs::read(&aside[0]).unwrap(), torn);
        assert_eq!(log.append(record(3)).await.unwrap(), 3);
        log.close().await;
        let read_back = read(dir.path()).unwrap();
        assert_eq!(read_back.records.len(), 4);
        assert_eq!(read_back.torn_tail_bytes, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_get_distinct_places_in_one_chain() {
        let (dir, log) = new_log();
        let log = Arc::new(log);
        let tasks: Vec<_> = (0..200u32)
            .map(|i| {
                let log = log.clone();
                tokio::spawn(async move { log.append(record(i as u8)).await.unwrap() })
            })
            .collect();
        let mut seqs = Vec::new();
        for t in tasks {
            seqs.push(t.await.unwrap());
        }
        seqs.sort_unstable();
        assert_eq!(seqs, (0..200).collect::<Vec<_>>());
        log.close().await;
        assert_eq!(read(dir.path()).unwrap().records.len(), 200);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sync_waits_for_requests_still_coming_but_never_for_a_lone_one() {
        let dir = tempfile::tempdir().unwrap();
        create(dir.path()).unwrap();
        let log = Arc::new(AuditLog::open(dir.path(), key(), Duration::from_secs(30)).unwrap());

        // Alone: written at once, the delay notwithstanding.
        let lone = log.coming();
        let quick = tokio::time::timeout(Duration::from_secs(10), lone.append(record(0))).await;
        assert_eq!(quick.expect("a lone record does not wait").unwrap(), 0);

        // With another request on its way, the record waits for it...
        let other = log.coming();
        let first = tokio::spawn({
            let log = log.clone();
            async move { log.coming().append(record(1)).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !first.is_finished(),
            "synced without waiting for the other request"
        );
        // ...and both go in one sync once it has appended (or it gives up: see below).
        let second = tokio::time::timeout(Duration::from_secs(10), other.append(record(2))).await;
        assert_eq!(second.expect("woken by the last record").unwrap(), 2);
        assert_eq!(first.await.unwrap().unwrap(), 1);

        // A request that ends without a record releases the wait too.
        let gives_up = log.coming();
        let third = tokio::spawn({
            let log = log.clone();
            async move { log.coming().append(record(3)).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!third.is_finished());
        drop(gives_up);
        let third = tokio::time::timeout(Duration::from_secs(10), third).await;
        assert_eq!(
            third
                .expect("woken by the request giving up")
                .unwrap()
                .unwrap(),
            3
        );
        log.close().await;
        assert_eq!(read(dir.path()).unwrap().records.len(), 4);
    }

    #[test]
    fn a_missing_log_is_an_error_and_a_used_one_is_never_recreated() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(read(dir.path()), Err(AuditLogError::Missing(_))));
        assert!(matches!(
            AuditLog::open(dir.path(), key(), Duration::ZERO),
            Err(AuditLogError::Missing(_))
        ));
        create(dir.path()).unwrap();
        create(dir.path()).unwrap(); // an empty one left by an interrupted attempt
        std::fs::write(log_path(dir.path()), b"{}\n").unwrap();
        assert!(matches!(
            create(dir.path()),
            Err(AuditLogError::AlreadyExists(_))
        ));
    }
}
