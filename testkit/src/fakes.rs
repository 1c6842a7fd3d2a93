//! Fakes of the node core's ports, for tests of the core alone: a registry whose answers the
//! test sets and whose reads it counts, a key-release log in memory, a clock the test moves.

use snpkms_core::{
    Authorizer, AuthorizerError, BlockRef, Clock, Decision, KmsInfo, LogError, NewRecord, Observer,
    Ports, ReleaseLog, Reservation, ThresholdGroup, ThresholdMember,
};
use snpkms_verifier::BootInfo;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The fake ports.
pub struct FakePorts;

impl Ports for FakePorts {
    type Authorizer = FakeRegistry;
    type Log = MemoryLog;
    type Clock = FakeClock;
    type Certificates = snpkms_core::NoCertificateSource;
    type Observer = NoMetrics;
}

type Verdict = Box<dyn Fn(&BootInfo) -> Result<(bool, String), String> + Send + Sync>;

struct Registry {
    root: [u8; 20],
    key_epoch: u32,
    pinned: BlockRef,
    app: Verdict,
    kms: Verdict,
    /// (share epoch, threshold, group key, nodes); share epoch 0: the replicated-root mode.
    group: (u32, u16, Vec<u8>, Vec<ThresholdMember>),
}

/// A registry in memory. `Err` from a verdict is an unreachable chain.
#[derive(Clone)]
pub struct FakeRegistry {
    inner: Arc<Mutex<Registry>>,
    /// isAppAllowed reads so far.
    pub app_reads: Arc<AtomicU64>,
    /// isKmsAllowed reads so far.
    pub kms_reads: Arc<AtomicU64>,
}

fn unavailable(why: String) -> AuthorizerError {
    AuthorizerError {
        kind: "unreachable",
        internal: false,
        source: why.into(),
    }
}

impl FakeRegistry {
    /// Allows every app and this node, names `root`, pinned at block 1.
    pub fn allowing(root: [u8; 20]) -> FakeRegistry {
        FakeRegistry {
            inner: Arc::new(Mutex::new(Registry {
                root,
                key_epoch: 0,
                pinned: BlockRef {
                    number: 1,
                    hash: [1; 32],
                },
                app: Box::new(|_| Ok((true, String::new()))),
                kms: Box::new(|_| Ok((true, String::new()))),
                group: (0, 0, Vec::new(), Vec::new()),
            })),
            app_reads: Arc::default(),
            kms_reads: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Answers isAppAllowed with `f`.
    pub fn set_app(
        &self,
        f: impl Fn(&BootInfo) -> Result<(bool, String), String> + Send + Sync + 'static,
    ) {
        self.lock().app = Box::new(f);
    }

    /// Answers isKmsAllowed with `f`.
    pub fn set_kms(
        &self,
        f: impl Fn(&BootInfo) -> Result<(bool, String), String> + Send + Sync + 'static,
    ) {
        self.lock().kms = Box::new(f);
    }

    /// Moves the pinned block to `number` (a new block: its hash follows its number).
    pub fn pin(&self, number: u64) {
        let mut r = self.lock();
        r.pinned = BlockRef {
            number,
            hash: [number as u8; 32],
        };
    }

    /// Moves the pin to `number` with this block hash (another fork at a height).
    pub fn pin_hash(&self, number: u64, hash: [u8; 32]) {
        self.lock().pinned = BlockRef { number, hash };
    }

    /// Names another KMS root.
    pub fn set_root(&self, root: [u8; 20]) {
        self.lock().root = root;
    }

    /// Records a threshold share set (the next share epoch): the threshold mode.
    pub fn set_threshold_group(
        &self,
        threshold: u16,
        group_key: Vec<u8>,
        nodes: Vec<ThresholdMember>,
    ) {
        let mut r = self.lock();
        let share_epoch = r.group.0 + 1;
        r.group = (share_epoch, threshold, group_key, nodes);
    }

    /// Sets the key epoch.
    pub fn set_epoch(&self, epoch: u32) {
        self.lock().key_epoch = epoch;
    }

    fn decide(
        &self,
        which: fn(&Registry) -> &Verdict,
        info: &BootInfo,
    ) -> Result<Decision, AuthorizerError> {
        let r = self.lock();
        let (allowed, reason) = which(&r)(info).map_err(unavailable)?;
        Ok(Decision {
            allowed,
            reason,
            block: r.pinned,
        })
    }
}

impl Authorizer for FakeRegistry {
    async fn is_app_allowed(&self, info: &BootInfo) -> Result<Decision, AuthorizerError> {
        self.app_reads.fetch_add(1, Ordering::Relaxed);
        self.decide(|r| &r.app, info)
    }

    async fn is_kms_allowed(
        &self,
        info: &BootInfo,
        _config_digest: [u8; 32],
    ) -> Result<Decision, AuthorizerError> {
        self.kms_reads.fetch_add(1, Ordering::Relaxed);
        self.decide(|r| &r.kms, info)
    }

    async fn kms_info(&self) -> Result<KmsInfo, AuthorizerError> {
        let r = self.lock();
        Ok(KmsInfo {
            root_signing_address: r.root,
            key_epoch: r.key_epoch,
            block: r.pinned,
        })
    }

    async fn threshold_group(&self) -> Result<ThresholdGroup, AuthorizerError> {
        let r = self.lock();
        let (share_epoch, threshold, group_key, nodes) = r.group.clone();
        Ok(ThresholdGroup {
            share_epoch,
            threshold,
            group_key,
            nodes,
            block: r.pinned,
        })
    }

    fn pinned_block(&self) -> Option<BlockRef> {
        Some(self.lock().pinned)
    }
}

/// A key-release log in memory.
#[derive(Default)]
pub struct MemoryLog {
    records: Mutex<Vec<NewRecord>>,
}

impl MemoryLog {
    /// Every record so far.
    pub fn records(&self) -> Vec<NewRecord> {
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn push(&self, record: NewRecord) -> u64 {
        let mut r = self.records.lock().unwrap_or_else(|p| p.into_inner());
        r.push(record);
        r.len() as u64 - 1
    }
}

/// A place in a [`MemoryLog`].
pub struct MemoryReservation<'a>(&'a MemoryLog);

impl Reservation for MemoryReservation<'_> {
    fn append(
        self,
        record: NewRecord,
    ) -> impl std::future::Future<Output = Result<u64, LogError>> + Send + 'static {
        let seq = self.0.push(record);
        async move { Ok(seq) }
    }
}

impl ReleaseLog for MemoryLog {
    type Reservation<'a> = MemoryReservation<'a>;

    fn reserve(&self) -> MemoryReservation<'_> {
        MemoryReservation(self)
    }

    async fn append(&self, record: NewRecord) -> Result<u64, LogError> {
        Ok(self.push(record))
    }

    fn len(&self) -> u64 {
        self.records.lock().unwrap_or_else(|p| p.into_inner()).len() as u64
    }
}

/// A clock the test sets.
#[derive(Default)]
pub struct FakeClock(pub AtomicU64);

impl FakeClock {
    /// A clock at `now`.
    pub fn at(now: u64) -> FakeClock {
        FakeClock(AtomicU64::new(now))
    }

    /// Moves the clock by `secs`.
    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::Relaxed);
    }
}

impl Clock for FakeClock {
    fn now_unix(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// No metrics.
pub struct NoMetrics;

impl Observer for NoMetrics {}
