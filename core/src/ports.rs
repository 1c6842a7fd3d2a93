//! What the core needs from the world, and nothing else: the platform ([`Attestor`], from
//! `snpkms-platform`), the registry ([`Authorizer`]), a durable key-release log
//! ([`ReleaseLog`]), a clock ([`Clock`]) and a source of VCEKs the hosts do not supply
//! ([`CertificateSource`]); plus an [`Observer`] for metrics. The node binary
//! implements them with the chain client, the log file and the system clock; tests with fakes.

use crate::record::NewRecord;
use snpkms_verifier::{BootInfo, VcekId, VerifiedVcek, VerifyError};
use std::future::Future;
use std::time::Duration;

pub use snpkms_platform::Attestor;

/// A block by number and hash: the hash says which fork the number is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockRef {
    /// Height.
    pub number: u64,
    /// Which block at that height.
    pub hash: [u8; 32],
}

impl std::fmt::Display for BlockRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{} (0x{})", self.number, hex::encode(self.hash))
    }
}

/// An authorization answer and the block it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the registry allows it.
    pub allowed: bool,
    /// The registry's reason when refused (`"os image not allowed"`, ...); empty when allowed.
    pub reason: String,
    /// The block the answer was read at.
    pub block: BlockRef,
}

/// The KMS identity the registry publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsInfo {
    /// Address of the KMS root signing key.
    pub root_signing_address: [u8; 20],
    /// The current key epoch.
    pub key_epoch: u32,
    /// The block it was read at.
    pub block: BlockRef,
}

/// One node of the registry's threshold share set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThresholdMember {
    /// Its index in the key generation (1..=n).
    pub index: u16,
    /// Its verifying share `s_i·G` as recorded (33 bytes, compressed).
    pub verifying_share: Vec<u8>,
    /// The address whose signatures count for it.
    pub signer: [u8; 20],
}

/// The registry's threshold share set (`thresholdGroup()`), share epoch 0 in the
/// replicated-root mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThresholdGroup {
    /// The share epoch: 0 until the owner records a share set, +1 at each re-share.
    pub share_epoch: u32,
    /// How many partials make an app's secret.
    pub threshold: u16,
    /// The group key `s·G` (33 bytes, compressed).
    pub group_key: Vec<u8>,
    /// The nodes, by increasing index.
    pub nodes: Vec<ThresholdMember>,
    /// The block it was read at.
    pub block: BlockRef,
}

impl ThresholdGroup {
    /// Whether the deployment runs the threshold mode.
    pub fn is_threshold_mode(&self) -> bool {
        self.share_epoch != 0
    }
}

/// Why the registry gave no answer. Never a decision: the core refuses on it.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct AuthorizerError {
    /// A short stable label for metrics (`unreachable`, `stale`, `no_quorum`, ...).
    pub kind: &'static str,
    /// True when the registry itself misbehaved (a revert on a read), not the way to it.
    pub internal: bool,
    /// The adapter's error.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// The on-chain registry as the core asks it.
pub trait Authorizer: Send + Sync + 'static {
    /// `isAppAllowed(info)` at the pinned block.
    fn is_app_allowed(
        &self,
        info: &BootInfo,
    ) -> impl Future<Output = Result<Decision, AuthorizerError>> + Send;
    /// `isKmsAllowed(info, config_digest)` at the pinned block.
    fn is_kms_allowed(
        &self,
        info: &BootInfo,
        config_digest: [u8; 32],
    ) -> impl Future<Output = Result<Decision, AuthorizerError>> + Send;
    /// The KMS info at the pinned block.
    fn kms_info(&self) -> impl Future<Output = Result<KmsInfo, AuthorizerError>> + Send;
    /// The threshold share set at the pinned block.
    fn threshold_group(
        &self,
    ) -> impl Future<Output = Result<ThresholdGroup, AuthorizerError>> + Send;
    /// The block reads are pinned to now, if the view is healthy.
    fn pinned_block(&self) -> Option<BlockRef>;
}

/// Why a record did not become durable. The release it was for does not happen.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LogError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// A place in the log announced before its record exists, so that the log can let a disk sync
/// wait for it (group commit). Dropping it gives the place up.
pub trait Reservation: Send {
    /// Appends `record` and waits until it is durable; its sequence number. The record is
    /// queued when this is called, before the future is polled: the caller may do other work
    /// (the seal) while it is written, and awaits the future before anything leaves. A future
    /// dropped unawaited does not take the record back.
    fn append(
        self,
        record: NewRecord,
    ) -> impl Future<Output = Result<u64, LogError>> + Send + 'static;
}

/// The durable, ordered key-release log: no key leaves before its record is on it.
pub trait ReleaseLog: Send + Sync + 'static {
    /// What [`ReleaseLog::reserve`] hands out.
    type Reservation<'a>: Reservation
    where
        Self: 'a;
    /// Announces a record to come.
    fn reserve(&self) -> Self::Reservation<'_>;
    /// Appends `record` without a reservation and waits until it is durable.
    fn append(&self, record: NewRecord) -> impl Future<Output = Result<u64, LogError>> + Send;
    /// Records so far.
    fn len(&self) -> u64;
    /// No records yet.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Wall-clock time. The host may steer it (see THREAT_MODEL.md); the core reads it only here.
pub trait Clock: Send + Sync + 'static {
    /// Seconds since the Unix epoch.
    fn now_unix(&self) -> u64;
}

/// What the core reports for metrics. Every method has a do-nothing default.
pub trait Observer: Send + Sync + 'static {
    /// One evidence verification and, if it failed, why.
    fn verified(&self, elapsed: Duration, failure: Option<&VerifyError>) {
        let _ = (elapsed, failure);
    }
    /// One authorization read and, if it gave no decision, why.
    fn authorized(&self, elapsed: Duration, failure: Option<&AuthorizerError>) {
        let _ = (elapsed, failure);
    }
    /// Keys of `app_id` left the node.
    fn released(&self, app_id: &[u8; 20]) {
        let _ = app_id;
    }
}

/// The check a [`CertificateSource`] applies to each candidate VCEK (DER, or PEM) before it
/// returns or keeps it: it chains to a pinned ARK through the pinned ASK, it is the VCEK asked
/// for (its hwID and TCB), and the report it was asked for verifies with it.
pub type VcekCheck<'a> = dyn Fn(&[u8]) -> Result<VerifiedVcek, VcekRefusal> + Send + Sync + 'a;

/// Why a [`VcekCheck`] did not take a candidate.
#[derive(Debug)]
pub enum VcekRefusal {
    /// The certificate is wrong (it does not chain to a pinned root, or it is another chip's
    /// or another TCB's): the source tries its next copy and keeps nothing.
    Certificate(VerifyError),
    /// The certificate is the one asked for but the report does not verify with it (a forged
    /// report naming a real chip): nothing is kept or fetched further, so forged reports
    /// cannot fill the store.
    Report(VerifyError),
}

/// Why a [`CertificateSource`] returned no VCEK.
#[derive(Debug, thiserror::Error)]
pub enum CertSourceError {
    /// No source had it now (AMD's KDS down, rate limiting, not found; the store empty).
    /// Retrying later may help.
    #[error("{0}")]
    Unavailable(String),
    /// A source answered with a certificate that does not pass the check (another chip's VCEK,
    /// a forged chain).
    #[error("{message}")]
    Refused {
        /// What was refused, from where.
        message: String,
        /// The check's verdict.
        #[source]
        error: VerifyError,
    },
    /// The report does not verify with the VCEK it names (see [`VcekRefusal::Report`]).
    #[error(transparent)]
    Report(VerifyError),
    /// The node has no source at all.
    #[error("no VCEK came with the evidence and this node fetches none (no KDS URL and no offline store are configured); the host must supply the certificate table")]
    NotConfigured,
}

/// Where a node gets the VCEK of a report whose host supplied none: AMD's KDS, mirrors, an
/// offline store. Everything it returns has passed `check`.
pub trait CertificateSource: Send + Sync + 'static {
    /// The VCEK `id` names, as `check` verified it.
    fn vcek<'a>(
        &'a self,
        id: &'a VcekId,
        check: &'a VcekCheck<'a>,
    ) -> impl Future<Output = Result<VerifiedVcek, CertSourceError>> + Send + 'a;
}

/// A node that fetches nothing: only certificates that come with the evidence.
pub struct NoCertificateSource;

impl CertificateSource for NoCertificateSource {
    async fn vcek<'a>(
        &'a self,
        _: &'a VcekId,
        _: &'a VcekCheck<'a>,
    ) -> Result<VerifiedVcek, CertSourceError> {
        Err(CertSourceError::NotConfigured)
    }
}

/// The ports one node is built from.
pub trait Ports: Send + Sync + 'static {
    /// The registry.
    type Authorizer: Authorizer;
    /// The key-release log.
    type Log: ReleaseLog;
    /// The clock.
    type Clock: Clock;
    /// Where VCEKs the hosts do not supply come from.
    type Certificates: CertificateSource;
    /// Metrics.
    type Observer: Observer;
}
