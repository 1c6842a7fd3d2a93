//! What the key-release log records for one decision, before the log gives it its place.

use snpkms_verifier::BootInfo;

/// Which exchange a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// A GetAppKey answer (keys released, or refused by the registry).
    AppKey,
    /// An onboarding answer (the root handed over, or refused).
    Onboard,
    /// A GetAppKeyShare answer in the threshold mode (this node's partial released, or
    /// refused by the registry).
    AppKeyShare,
    /// A SignAppKey answer in the threshold mode (this node's signature over an app signing
    /// address given, or refused by the registry).
    AppKeySignature,
}

impl RecordKind {
    /// The name the log writes: `app_key`, `onboard`, `app_key_share` or `app_key_signature`.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::AppKey => "app_key",
            RecordKind::Onboard => "onboard",
            RecordKind::AppKeyShare => "app_key_share",
            RecordKind::AppKeySignature => "app_key_signature",
        }
    }
}

/// A record before it gets its place in the chain.
#[derive(Debug, Clone)]
pub struct NewRecord {
    /// Unix seconds.
    pub time: u64,
    /// Which exchange.
    pub kind: RecordKind,
    /// The app (zero for onboarding).
    pub app_id: [u8; 20],
    /// The compose hash the guest runs (zero for onboarding).
    pub compose_hash: [u8; 32],
    /// keccak256 of the 64-byte chip id: the on-chain device id.
    pub chip_id_hash: [u8; 32],
    /// The launch measurement.
    pub measurement: [u8; 48],
    /// The key epoch.
    pub epoch: u32,
    /// The block the decision was read at.
    pub block_number: u64,
    /// Its hash.
    pub block_hash: [u8; 32],
    /// The registry's decision.
    pub allowed: bool,
    /// The registry's reason when refused.
    pub reason: String,
    /// In the threshold mode, the share that answered (or would have): which one and of which
    /// share set, so an auditor knows which partial or signature a record stands for.
    pub share: Option<ShareOrigin>,
    /// For SignAppKey, the app signing address the guest asked this node to vouch for
    /// (recorded whether it was signed or refused).
    pub app_signing_address: Option<[u8; 20]>,
}

/// Which share a threshold node answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareOrigin {
    /// The registry's share epoch the node served in.
    pub share_epoch: u32,
    /// The node's share index (its FROST identifier) in that set.
    pub node_index: u16,
}

impl NewRecord {
    pub(crate) fn new(
        kind: RecordKind,
        time: u64,
        boot: &BootInfo,
        epoch: u32,
        decision: &crate::ports::Decision,
    ) -> NewRecord {
        NewRecord {
            time,
            kind,
            app_id: boot.app_id,
            compose_hash: boot.compose_hash,
            chip_id_hash: snpkms_api::app_key_signature::keccak256(boot.chip_id_bytes()),
            measurement: boot.measurement,
            epoch,
            block_number: decision.block.number,
            block_hash: decision.block.hash,
            allowed: decision.allowed,
            reason: decision.reason.clone(),
            share: None,
            app_signing_address: None,
        }
    }

    /// The record with the app signing address a SignAppKey request asked to be vouched for.
    pub(crate) fn vouching(mut self, app_signing_address: Option<[u8; 20]>) -> NewRecord {
        self.app_signing_address = app_signing_address;
        self
    }
}
