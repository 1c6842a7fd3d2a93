//! GetAppKey, one step after the other, failing closed at each:
//! verify evidence -> BootInfo (host_data binding) -> on-chain decision -> derive -> sign ->
//! seal -> durable audit record -> respond.

use crate::audit_log::{AuditLog, Coming, NewRecord};
use crate::error::ReleaseError;
use crate::evidence::EvidenceVerifier;
use crate::keys::RootSecret;
use crate::metrics::Metrics;
use crate::nonces::NonceStore;
use k256::ecdsa::SigningKey;
use snpkms_api::pb;
use snpkms_api::{app_key_signature, binding, seal};
use snpkms_chain_client::{BlockRef, ChainClient, Decision};
use snpkms_verifier::{BootInfo, UnixTime, VerifiedReport};
use std::sync::{Arc, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What the node knows of its on-chain identity, refreshed by the KMS info watcher.
#[derive(Debug, Clone)]
pub struct KmsState {
    /// `Err(why)` while the node must not release keys (KMS info mismatch, the registry does
    /// not allow this node, not yet checked).
    pub serving: Result<(), String>,
    pub key_epoch: u32,
    pub tls_public_key: Vec<u8>,
    /// The pinned block the verdict was read at.
    pub checked_at: Option<BlockRef>,
}

/// Everything a node needs to answer requests.
pub struct Node {
    pub(crate) evidence: Arc<EvidenceVerifier>,
    pub(crate) chain: ChainClient,
    pub(crate) nonces: NonceStore,
    pub(crate) audit: AuditLog,
    /// Held for its lock: one node per data dir.
    pub(crate) _store: crate::store::Store,
    pub(crate) root: RootSecret,
    pub(crate) root_signing_key: SigningKey,
    pub(crate) root_address: [u8; 20],
    pub(crate) state: RwLock<KmsState>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) grants: crate::grants::GrantCache,
    /// This node's own verified BootInfo, which the registry must keep allowing for the node
    /// to serve and onboard others; `Err` says why the node could not attest itself.
    pub(crate) self_boot: Result<BootInfo, String>,
    /// The security configuration the root is sealed under.
    pub(crate) config_digest: crate::security::ConfigDigest,
    /// One standing check at a time: requests that find the verdict older than their decision
    /// share one read instead of each making it.
    pub(crate) standing_check: tokio::sync::Mutex<()>,
}

fn fixed<const N: usize>(bytes: &[u8], field: &str) -> Result<[u8; N], ReleaseError> {
    bytes.try_into().map_err(|_| {
        ReleaseError::InvalidArgument(format!("{field} must be {N} bytes, got {}", bytes.len()))
    })
}

/// The fixed-size fields of a GetAppKey request, length-checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidatedRequest {
    pub app_id: [u8; 20],
    pub compose_hash: [u8; 32],
    pub ephemeral_public_key: [u8; 32],
    pub nonce: [u8; 32],
}

/// GetAppKey's first, stateless step: every field has its exact length, so nothing later
/// truncates or pads what the peer sent. Pure, so the fuzzer can run it on decoded bytes.
pub fn validate_request(req: &pb::GetAppKeyRequest) -> Result<ValidatedRequest, ReleaseError> {
    Ok(ValidatedRequest {
        app_id: fixed(&req.app_id, "app_id")?,
        compose_hash: fixed(&req.compose_hash, "compose_hash")?,
        ephemeral_public_key: fixed(&req.ephemeral_public_key, "ephemeral_public_key")?,
        nonce: fixed(&req.nonce, "nonce")?,
    })
}

impl ValidatedRequest {
    /// Ties verified evidence to this request (pure): the report must be made for this nonce
    /// (no replay) and this ephemeral key (only the requester can open the answer), and its
    /// host_data must commit to the claimed app and compose (no asking for another app's keys).
    pub fn boot_info(&self, report: &VerifiedReport) -> Result<BootInfo, ReleaseError> {
        if report.report_data
            != binding::get_app_key_report_data(&self.nonce, &self.ephemeral_public_key)
        {
            return Err(ReleaseError::ReportDataMismatch {
                domain: "snpkms/get-app-key/v1",
            });
        }
        Ok(BootInfo::for_app(report, self.app_id, self.compose_hash)?)
    }
}

fn new_record(kind: &'static str, boot: &BootInfo, epoch: u32, decision: &Decision) -> NewRecord {
    NewRecord {
        time: now_unix(),
        kind,
        app_id: boot.app_id,
        compose_hash: boot.compose_hash,
        chip_id_hash: app_key_signature::keccak256(&boot.chip_id),
        measurement: boot.measurement,
        epoch,
        block_number: decision.block.number,
        block_hash: decision.block.hash.to_vec(),
        allowed: decision.allowed,
        reason: decision.reason.clone(),
    }
}

impl Node {
    pub fn root_address(&self) -> [u8; 20] {
        self.root_address
    }

    /// The security configuration this node runs with (its root is sealed under it).
    pub fn config_digest(&self) -> crate::security::ConfigDigest {
        self.config_digest
    }

    pub fn state(&self) -> KmsState {
        self.state.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Records in the key-release log.
    pub fn audit_len(&self) -> u64 {
        self.audit.len()
    }

    pub fn chain(&self) -> &ChainClient {
        &self.chain
    }

    pub fn evidence(&self) -> &EvidenceVerifier {
        &self.evidence
    }

    pub fn challenge(&self) -> Result<pb::GetChallengeResponse, ReleaseError> {
        let (nonce, expires_at) = self.nonces.issue(now_unix())?;
        Ok(pb::GetChallengeResponse {
            nonce: nonce.to_vec(),
            expires_at,
        })
    }

    /// Verifies evidence on the calling (async worker) thread. It is CPU work (0.8 ms of ECDSA, plus
    /// RSA on a chain cache miss) that would usually go to a thread pool, but handing it over
    /// and back cost more than it freed: on two cores inline verification serves 4% more
    /// requests per CPU second than a fixed pool (BENCHMARKS.md), and the runtime already has
    /// one worker per core.
    pub(crate) fn verify_evidence(
        &self,
        evidence: Option<pb::Evidence>,
    ) -> Result<VerifiedReport, ReleaseError> {
        let evidence =
            evidence.ok_or_else(|| ReleaseError::InvalidArgument("evidence is missing".into()))?;
        let started = Instant::now();
        let result =
            self.evidence
                .verify(&evidence.report, &evidence.cert_table, UnixTime(now_unix()));
        self.metrics
            .observe_verify(started.elapsed(), result.as_ref().err());
        Ok(result?)
    }

    pub async fn get_app_key(
        &self,
        req: pb::GetAppKeyRequest,
    ) -> Result<pb::GetAppKeyResponse, ReleaseError> {
        let state = self.serving_state().await?;

        let request = validate_request(&req)?;
        let ValidatedRequest {
            app_id,
            compose_hash,
            ephemeral_public_key: ephemeral,
            nonce,
        } = request;
        if let Some(requested) = req.epoch {
            if requested > state.key_epoch {
                return Err(ReleaseError::EpochAhead {
                    requested,
                    current: state.key_epoch,
                });
            }
        }
        let epoch = req.epoch.unwrap_or(state.key_epoch);

        // Consumed before the expensive checks: a nonce buys at most one verification.
        self.nonces.consume(&nonce, now_unix())?;
        // From here on this request may end in a record: the log can wait for it to share a sync.
        let coming = self.audit.coming();

        let report = self.verify_evidence(req.evidence)?;
        let boot = request.boot_info(&report)?;

        let started = Instant::now();
        let decision = self.chain.is_app_allowed(&boot).await;
        self.metrics.observe_chain(started.elapsed(), &decision);
        let decision = decision?;
        if !decision.allowed {
            self.record(coming, &boot, epoch, &decision).await?;
            return Err(ReleaseError::Denied {
                reason: decision.reason,
                block: decision.block.to_string(),
            });
        }
        // The node's own standing must be known as of the current chain view, which is at or
        // after the app's decision: a registry that dropped this node at a block stops every
        // release decided at that block or later, not only those after the watcher's next turn.
        let view = self.chain.pinned_block().unwrap_or(decision.block);
        self.standing_at(view).await?;

        let grant =
            self.grants
                .get_or_derive(&self.root, &self.root_signing_key, &app_id, epoch)?;
        let sealed = seal::seal(
            &ephemeral,
            seal::APP_KEYS_INFO,
            &seal::app_keys_aad(&app_id, &compose_hash, epoch, &nonce),
            &grant.plaintext,
        )
        .map_err(|e| ReleaseError::InvalidArgument(e.to_string()))?;

        // No key leaves before its record is on disk.
        self.record(coming, &boot, epoch, &decision).await?;
        self.metrics.key_released(&app_id);
        Ok(pb::GetAppKeyResponse {
            encapsulated_key: sealed.encapsulated_key,
            sealed_keys: sealed.ciphertext,
            key_epoch: epoch,
            app_signing_address: grant.signing_address.to_vec(),
            kms_signature: grant.kms_signature.to_vec(),
            kms_root_signing_address: self.root_address.to_vec(),
            block_number: decision.block.number,
            block_hash: decision.block.hash.to_vec(),
        })
    }

    async fn record(
        &self,
        coming: Coming<'_>,
        boot: &BootInfo,
        epoch: u32,
        decision: &Decision,
    ) -> Result<u64, ReleaseError> {
        Ok(coming
            .append(new_record("app_key", boot, epoch, decision))
            .await?)
    }

    pub(crate) async fn record_kind(
        &self,
        kind: &'static str,
        boot: &BootInfo,
        epoch: u32,
        decision: &Decision,
    ) -> Result<u64, ReleaseError> {
        Ok(self
            .audit
            .append(new_record(kind, boot, epoch, decision))
            .await?)
    }

    pub fn kms_info(&self) -> pb::GetKmsInfoResponse {
        let state = self.state();
        pb::GetKmsInfoResponse {
            root_signing_address: self.root_address.to_vec(),
            tls_public_key: state.tls_public_key,
            key_epoch: state.key_epoch,
            chain_id: self.chain.chain_id(),
            registry_address: self.chain.registry().to_vec(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            config_digest: self.config_digest.0.to_vec(),
        }
    }

    /// The node's state if it may serve. A refusal older than the chain view is read again
    /// first: a node the registry allows again serves from that block, not from the watcher's
    /// next turn.
    pub(crate) async fn serving_state(&self) -> Result<KmsState, ReleaseError> {
        let state = self.state();
        if state.serving.is_err() {
            if let Some(pinned) = self.chain.pinned_block() {
                self.standing_at(pinned).await?;
                return Ok(self.state());
            }
        }
        state.serving.clone().map_err(ReleaseError::NotServing)?;
        Ok(state)
    }

    /// The node's verdict on itself as of the pinned block `at`: read again unless the last
    /// verdict was read at exactly that block (a verdict from a later block, or from a fork the
    /// chain has left, is not taken for it).
    async fn standing_at(&self, at: BlockRef) -> Result<(), ReleaseError> {
        if self.state().checked_at != Some(at) {
            self.refresh_standing_if(|checked| checked != Some(at))
                .await;
        }
        self.state().serving.map_err(ReleaseError::NotServing)
    }

    /// Decides whether this node may serve: the registry names its root, and allows it (its
    /// measurement, chip, TCB and security configuration) as a KMS. Fails closed: while the
    /// registry cannot be read, the node does not serve.
    pub async fn refresh_kms_state(&self) -> KmsState {
        self.refresh_standing_if(|_| true).await
    }

    /// One standing read at a time, and only if `needed` still holds once it is this one's turn
    /// (a concurrent reader may have made it moot). Readers never overwrite each other out of
    /// order.
    async fn refresh_standing_if(&self, needed: impl Fn(Option<BlockRef>) -> bool) -> KmsState {
        let _one = self.standing_check.lock().await;
        if !needed(self.state().checked_at) {
            return self.state();
        }
        let (read, verdict) = self.standing().await;
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        if let Some((epoch, _)) = read {
            state.key_epoch = epoch;
        }
        state.checked_at = read.map(|(_, block)| block);
        state.serving = verdict;
        state.clone()
    }

    /// What the registry said (key epoch, at which block), and whether this node may serve.
    async fn standing(&self) -> (Option<(u32, BlockRef)>, Result<(), String>) {
        let info = match self.chain.kms_info().await {
            Ok(info) => info,
            Err(e) => return (None, Err(format!("the registry could not be read: {e}"))),
        };
        let read = Some((info.key_epoch, info.block));
        if info.root_signing_address.0 .0 != self.root_address {
            return (
                read,
                Err(format!(
                    "the registry's KMS root signing address is {} but this node's is 0x{}; \
                     register this node's KMS info (snpkms gov set-kms-info) or onboard it from a peer",
                    info.root_signing_address,
                    hex::encode(self.root_address)
                )),
            );
        }
        let me = match &self.self_boot {
            Ok(me) => me,
            Err(why) => return (read, Err(format!("this node cannot attest itself: {why}"))),
        };
        let verdict = match self.chain.is_kms_allowed(me, self.config_digest.0).await {
            Err(e) => Err(format!("the registry could not be read: {e}")),
            Ok(d) if !d.allowed => Err(format!(
                "the registry does not allow this node as a KMS at block {}: {} \
                 (configuration digest {})",
                d.block, d.reason, self.config_digest
            )),
            Ok(_) => Ok(()),
        };
        (read, verdict)
    }
}
