//! The node: GetChallenge, GetAppKey and the serving side of Onboard, one step after the other,
//! failing closed at each:
//! verify evidence -> BootInfo (host_data binding) -> registry decision -> the node's own
//! standing -> derive -> sign -> seal -> durable record -> respond.

use crate::custody::Custody;
use crate::error::{RateLimitScope, ReleaseError, RequestError};
use crate::evidence::EvidenceVerifier;
use crate::grants::GrantCache;
use crate::nonces::NonceStore;
use crate::ports::{
    Attestor, Authorizer, BlockRef, Clock, Decision, Observer, Ports, ReleaseLog, Reservation,
    ThresholdGroup,
};
use crate::ratelimit::RateLimiter;
use crate::record::{NewRecord, RecordKind, ShareOrigin};
use crate::request::{
    fixed, validate_request, validate_sign_request, AppRequest, ValidatedRequest, ONBOARD_BINDING,
};
use k256::ecdsa::SigningKey;
use snpkms_api::pb;
use snpkms_api::{binding, seal};
use snpkms_platform::SnpEvidence;
use snpkms_verifier::{BootInfo, UnixTime, VerifiedReport, Verifier};
use std::sync::RwLock;
use std::time::Instant;

/// What the node knows of its standing on the registry.
#[derive(Debug, Clone)]
pub struct KmsState {
    /// `Err(why)` while the node must not release keys: another root registered, the registry
    /// does not allow this node (image, chip, TCB, configuration), or not checked yet.
    pub serving: Result<(), String>,
    /// The registry's key epoch.
    pub key_epoch: u32,
    /// The registry's share epoch (0: the replicated-root mode).
    pub share_epoch: u32,
    /// The pinned block the verdict was read at.
    pub checked_at: Option<BlockRef>,
}

/// The node's limits the core enforces.
#[derive(Debug, Clone, Copy)]
pub struct CoreLimits {
    /// Lifetime of a challenge.
    pub nonce_ttl_secs: u64,
    /// Used challenges remembered at once (issued ones cost nothing); past half of it,
    /// challenge generations turn over early.
    pub max_outstanding_nonces: usize,
    /// Verified VCEK chains kept.
    pub verified_cert_chain_cache: usize,
    /// Derived and signed app keys kept (per app and epoch); at the bound the cache starts over.
    pub grant_cache: usize,
    /// GetAppKey requests per second per app (0: unlimited). Counted only for requests the
    /// registry allows for the app, so a client that merely names an app, or launches another
    /// image with its host_data, cannot spend its budget.
    pub per_app_rate: f64,
    /// Bucket size of the per-app limit (0 counts as 1).
    pub per_app_burst: u32,
}

/// What a node is made of.
pub struct NodeParts<P: Ports> {
    /// The root secret or this node's threshold share, unsealed: the node's mode.
    pub custody: Custody,
    /// The digest of the security configuration the secret is sealed under.
    pub config_digest: [u8; 32],
    /// The verifier of the node's trust roots and policy.
    pub verifier: Verifier,
    /// The TLS public key the node publishes (possibly empty).
    pub tls_public_key: Vec<u8>,
    /// Limits.
    pub limits: CoreLimits,
    /// The registry.
    pub authorizer: P::Authorizer,
    /// The key-release log.
    pub log: P::Log,
    /// The clock.
    pub clock: P::Clock,
    /// Where VCEKs the hosts do not supply come from (AMD's KDS, mirrors, the offline store).
    pub certificates: P::Certificates,
    /// Metrics.
    pub observer: P::Observer,
}

/// An app-key request the registry allows, from an instance of the app, at a chain view this
/// node serves at: what the release needs.
struct Admitted<R, Q> {
    request: Q,
    boot: BootInfo,
    epoch: u32,
    decision: Decision,
    /// The place of the release's record in the log.
    reservation: R,
    /// The node's standing as of the admission (its share epoch).
    state: KmsState,
}

/// A serving node's state and its request paths.
pub struct Node<P: Ports> {
    evidence: EvidenceVerifier,
    authorizer: P::Authorizer,
    log: P::Log,
    clock: P::Clock,
    certificates: P::Certificates,
    observer: P::Observer,
    nonces: NonceStore,
    custody: Custody,
    /// The root signing key, or the threshold node's own signing key.
    signing_key: SigningKey,
    signing_address: [u8; 20],
    config_digest: [u8; 32],
    tls_public_key: Vec<u8>,
    grants: GrantCache,
    per_app: RateLimiter<[u8; 20]>,
    state: RwLock<KmsState>,
    /// One standing read at a time: requests that find the verdict older than the chain view
    /// share one read instead of each making it.
    standing_check: tokio::sync::Mutex<()>,
    /// This node's own evidence (`Err`: why its platform gave none), verified at the first
    /// standing check: its VCEK may have to be fetched.
    self_evidence: Result<SnpEvidence, String>,
    /// This node's own verified BootInfo, which the registry must keep allowing for the node
    /// to serve and onboard others; `None` until its evidence verified.
    self_boot: RwLock<Option<BootInfo>>,
}

impl<P: Ports> Node<P> {
    /// Builds the node and attests itself on `attestor`: the evidence (verified with its own
    /// verifier at the first standing check) whose BootInfo it asks the registry about before
    /// it serves. It does not serve until [`Node::refresh_kms_state`] finds it allowed.
    pub fn new(parts: NodeParts<P>, attestor: &dyn Attestor) -> Node<P> {
        let signing_key = parts.custody.signing_key();
        let signing_address =
            snpkms_api::app_key_signature::address_of(signing_key.verifying_key());
        let evidence =
            EvidenceVerifier::new(parts.verifier, parts.limits.verified_cert_chain_cache);
        let report_data = snpkms_api::binding::report_data(
            b"snpkms/self-check/v2",
            &signing_address,
            &parts.config_digest,
        );
        let self_evidence = attestor.attest(report_data).map_err(|e| e.to_string());
        if let Err(why) = &self_evidence {
            tracing::error!("this node cannot attest itself, so it will not serve: {why}");
        }
        Node {
            evidence,
            authorizer: parts.authorizer,
            log: parts.log,
            clock: parts.clock,
            certificates: parts.certificates,
            observer: parts.observer,
            nonces: NonceStore::new(
                parts.limits.nonce_ttl_secs,
                parts.limits.max_outstanding_nonces,
            ),
            custody: parts.custody,
            signing_key,
            signing_address,
            config_digest: parts.config_digest,
            tls_public_key: parts.tls_public_key,
            grants: GrantCache::new(parts.limits.grant_cache.max(1)),
            per_app: RateLimiter::new(parts.limits.per_app_rate, parts.limits.per_app_burst),
            state: RwLock::new(KmsState {
                serving: Err("the on-chain KMS info has not been checked yet".into()),
                key_epoch: 0,
                share_epoch: 0,
                checked_at: None,
            }),
            standing_check: tokio::sync::Mutex::new(()),
            self_evidence,
            self_boot: RwLock::new(None),
        }
    }

    /// The address this node signs with: the KMS root signing address its root derives, or in
    /// the threshold mode its own node signing address (which the share set lists).
    pub fn signing_address(&self) -> [u8; 20] {
        self.signing_address
    }

    /// The key behind [`Node::signing_address`] (the audit heads are signed with it).
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing_key
    }

    /// The secret this node serves from, which is its mode.
    pub fn custody(&self) -> &Custody {
        &self.custody
    }

    /// The security configuration this node runs with (its root is sealed under it).
    pub fn config_digest(&self) -> [u8; 32] {
        self.config_digest
    }

    /// The node's standing as last read.
    pub fn state(&self) -> KmsState {
        self.state.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The registry adapter.
    pub fn authorizer(&self) -> &P::Authorizer {
        &self.authorizer
    }

    /// The key-release log.
    pub fn log(&self) -> &P::Log {
        &self.log
    }

    /// The verifier with its certificate-chain cache.
    pub fn evidence(&self) -> &EvidenceVerifier {
        &self.evidence
    }

    /// Used challenges remembered (issued ones cost nothing until used).
    pub fn outstanding_nonces(&self) -> usize {
        self.nonces.remembered()
    }

    /// Turns challenge generations over when due; how many used nonces were forgotten.
    pub fn sweep_nonces(&self) -> usize {
        self.nonces.sweep()
    }

    /// GetChallenge: a fresh single-use nonce.
    pub fn challenge(&self) -> Result<pb::GetChallengeResponse, ReleaseError> {
        let (nonce, expires_at) = self.nonces.issue(self.clock.now_unix());
        Ok(pb::GetChallengeResponse {
            nonce: nonce.to_vec(),
            expires_at,
        })
    }

    /// GetKmsInfo: what the node says of itself (guests never trust the root from here).
    pub fn kms_info(&self, chain_id: u64, registry: [u8; 20]) -> pb::GetKmsInfoResponse {
        let (root_signing_address, node_index, node_signing_address) = match &self.custody {
            Custody::Root(_) => (self.signing_address.to_vec(), 0, vec![]),
            Custody::Share(share) => (vec![], share.index().into(), self.signing_address.to_vec()),
        };
        pb::GetKmsInfoResponse {
            root_signing_address,
            tls_public_key: self.tls_public_key.clone(),
            key_epoch: self.state().key_epoch,
            chain_id,
            registry_address: registry.to_vec(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            config_digest: self.config_digest.to_vec(),
            mode: self.custody.mode().to_string(),
            node_index,
            node_signing_address,
        }
    }

    /// Verifies evidence on the calling (async worker) thread. It is CPU work (0.8 ms of
    /// ECDSA, plus RSA on a chain cache miss) that would usually go to a thread pool, but
    /// handing it over and back cost more than it freed (BENCHMARKS.md). A VCEK the host did
    /// not supply is fetched once (then cached).
    async fn verify_evidence(
        &self,
        evidence: Option<&pb::Evidence>,
    ) -> Result<VerifiedReport, ReleaseError> {
        let evidence = evidence.ok_or(RequestError::MissingEvidence)?;
        let started = Instant::now();
        let result = self
            .evidence
            .verify_or_fetch(
                &evidence.report,
                &evidence.cert_table,
                UnixTime(self.clock.now_unix()),
                &self.certificates,
            )
            .await;
        let failure = match &result {
            Err(crate::evidence::EvidenceError::Invalid(e)) => Some(e),
            Err(crate::evidence::EvidenceError::Certificates(
                crate::ports::CertSourceError::Refused { error, .. },
            )) => Some(error),
            _ => None,
        };
        self.observer.verified(started.elapsed(), failure);
        Ok(result?)
    }

    async fn decide(
        &self,
        read: impl std::future::Future<Output = Result<Decision, crate::ports::AuthorizerError>>,
    ) -> Result<Decision, ReleaseError> {
        let started = Instant::now();
        let decision = read.await;
        self.observer
            .authorized(started.elapsed(), decision.as_ref().err());
        Ok(decision?)
    }

    /// GetAppKey (the replicated-root mode).
    pub async fn get_app_key(
        &self,
        req: pb::GetAppKeyRequest,
    ) -> Result<pb::GetAppKeyResponse, ReleaseError> {
        let Custody::Root(root) = &self.custody else {
            return Err(ReleaseError::WrongMode {
                node: self.custody.mode(),
                missing: "root secret",
                hint: "the deployment runs the threshold mode: ask t nodes with GetAppKeyShare",
            });
        };
        let Admitted {
            request,
            boot,
            epoch,
            decision,
            reservation,
            state,
        } = self
            .admit_app(
                || validate_request(&req),
                req.evidence.as_ref(),
                req.epoch,
                RecordKind::AppKey,
            )
            .await?;
        let ValidatedRequest {
            app_id,
            compose_hash,
            ephemeral_public_key: ephemeral,
            nonce,
        } = request;
        let grant = self
            .grants
            .get_or_derive(root, &self.signing_key, &app_id, epoch)?;
        // The record goes to the log now, and its write and sync run while the keys are
        // sealed: a lone request waits for the longer of the two, not for both. A seal that
        // then fails (an ephemeral key of small order) leaves an "allowed" record for keys that
        // were never sent, like an answer lost on the network: the log may count a release
        // that did not reach the guest, never the other way round.
        let durable =
            reservation.append(self.record(RecordKind::AppKey, &boot, epoch, &decision, &state));
        let sealed = seal::seal(
            &ephemeral,
            seal::APP_KEYS_INFO,
            &seal::app_keys_aad(&app_id, &compose_hash, epoch, &nonce),
            &grant.plaintext,
        )
        .map_err(|e| RequestError::EphemeralKey(e.to_string()))?;
        // No key leaves before its record is on disk.
        durable.await?;
        self.observer.released(&app_id);
        Ok(pb::GetAppKeyResponse {
            encapsulated_key: sealed.encapsulated_key,
            sealed_keys: sealed.ciphertext,
            key_epoch: epoch,
            app_signing_address: grant.signing_address.to_vec(),
            kms_signature: grant.kms_signature.to_vec(),
            kms_root_signing_address: self.signing_address.to_vec(),
            block_number: decision.block.number,
            block_hash: decision.block.hash.to_vec(),
        })
    }

    /// GetAppKeyShare (the threshold mode): the same checks as GetAppKey, made by this node
    /// alone against its own chain view, then its partial for the app, sealed to the guest.
    /// One lying or broken node cannot authorize a guest: t nodes must each admit it.
    pub async fn get_app_key_share(
        &self,
        req: pb::GetAppKeyRequest,
    ) -> Result<pb::GetAppKeyShareResponse, ReleaseError> {
        let Custody::Share(share) = &self.custody else {
            return Err(ReleaseError::WrongMode {
                node: self.custody.mode(),
                missing: "threshold share",
                hint: "the registry runs the replicated-root mode: ask one node with GetAppKey",
            });
        };
        let Admitted {
            request,
            boot,
            epoch,
            decision,
            reservation,
            state,
        } = self
            .admit_app(
                || validate_request(&req),
                req.evidence.as_ref(),
                req.epoch,
                RecordKind::AppKeyShare,
            )
            .await?;
        let ValidatedRequest {
            app_id,
            compose_hash,
            ephemeral_public_key: ephemeral,
            nonce,
        } = request;
        let partial = snpkms_threshold::evaluate(share.share(), &app_id, epoch)?;
        let durable = reservation.append(self.record(
            RecordKind::AppKeyShare,
            &boot,
            epoch,
            &decision,
            &state,
        ));
        let sealed = seal::seal(
            &ephemeral,
            seal::APP_KEY_SHARE_INFO,
            &seal::app_key_share_aad(
                &app_id,
                &compose_hash,
                epoch,
                &nonce,
                state.share_epoch,
                share.index(),
            ),
            &partial.to_bytes(),
        )
        .map_err(|e| RequestError::EphemeralKey(e.to_string()))?;
        // No partial leaves before its record is on disk.
        durable.await?;
        self.observer.released(&app_id);
        Ok(pb::GetAppKeyShareResponse {
            encapsulated_key: sealed.encapsulated_key,
            sealed_partial: sealed.ciphertext,
            key_epoch: epoch,
            share_epoch: state.share_epoch,
            node_index: share.index().into(),
            node_signing_address: self.signing_address.to_vec(),
            block_number: decision.block.number,
            block_hash: decision.block.hash.to_vec(),
        })
    }

    /// SignAppKey (the threshold mode's KMS signature): the same checks as GetAppKeyShare, on
    /// fresh evidence bound to the address and epoch, then this node's signature over the app
    /// key digest with its registered node key. The node cannot check that the address is the
    /// one t partials derive (that would take the combined secret): it vouches that an instance
    /// of the app the chain allows, whose evidence it verified, derived it. t nodes must each
    /// say so for `verifyAppKeyThreshold`.
    pub async fn sign_app_key(
        &self,
        req: pb::SignAppKeyRequest,
    ) -> Result<pb::SignAppKeyResponse, ReleaseError> {
        let Custody::Share(share) = &self.custody else {
            return Err(ReleaseError::WrongMode {
                node: self.custody.mode(),
                missing: "threshold share",
                hint: "the registry runs the replicated-root mode: GetAppKey's answer carries the root's signature",
            });
        };
        let Admitted {
            request,
            boot,
            epoch,
            decision,
            reservation,
            state,
        } = self
            .admit_app(
                || validate_sign_request(&req),
                req.evidence.as_ref(),
                Some(req.key_epoch),
                RecordKind::AppKeySignature,
            )
            .await?;
        let signature = snpkms_api::app_key_signature::sign(
            &self.signing_key,
            &request.app_id,
            &request.app_signing_address,
            epoch,
        )?;
        // No signature leaves before its record is on disk.
        reservation
            .append(
                self.record(RecordKind::AppKeySignature, &boot, epoch, &decision, &state)
                    .vouching(Some(request.app_signing_address)),
            )
            .await?;
        Ok(pb::SignAppKeyResponse {
            kms_signature: signature.to_vec(),
            key_epoch: epoch,
            share_epoch: state.share_epoch,
            node_index: share.index().into(),
            node_signing_address: self.signing_address.to_vec(),
            block_number: decision.block.number,
            block_hash: decision.block.hash.to_vec(),
        })
    }

    /// The checks GetAppKey, GetAppKeyShare and SignAppKey share, up to the release: lengths
    /// (`validate`), the nonce, the evidence and its binding, the registry's decision (a
    /// refusal is recorded as `kind`), the per-app limit and this node's own standing at the
    /// decision's chain view.
    async fn admit_app<Q: AppRequest>(
        &self,
        validate: impl FnOnce() -> Result<Q, ReleaseError>,
        evidence: Option<&pb::Evidence>,
        requested_epoch: Option<u32>,
        kind: RecordKind,
    ) -> Result<Admitted<<P::Log as ReleaseLog>::Reservation<'_>, Q>, ReleaseError> {
        let state = self.serving_state().await?;
        let request = validate()?;
        if let Some(requested) = requested_epoch {
            if requested > state.key_epoch {
                return Err(ReleaseError::EpochAhead {
                    requested,
                    current: state.key_epoch,
                });
            }
        }
        let epoch = requested_epoch.unwrap_or(state.key_epoch);

        // Consumed before the expensive checks: a nonce buys at most one verification.
        self.nonces
            .consume(request.nonce(), self.clock.now_unix())?;
        // From here on this request may end in a record: the log can wait for it to share a sync.
        let reservation = self.log.reserve();

        let report = self.verify_evidence(evidence).await?;
        let boot = request.bound_boot_info(&report)?;

        let decision = self.decide(self.authorizer.is_app_allowed(&boot)).await?;
        if !decision.allowed {
            reservation
                .append(
                    self.record(kind, &boot, epoch, &decision, &state)
                        .vouching(request.app_signing_address()),
                )
                .await?;
            return Err(ReleaseError::Denied {
                reason: decision.reason,
                block: decision.block,
            });
        }
        // Only now is the request known to come from an instance of this app: its evidence
        // binds app and compose (host_data), and the registry allows its image, TCB and
        // device. Counted any earlier, requests that merely name a victim app, or come from a
        // VM anyone can launch with the victim's host_data on another image, would spend its
        // budget. (Registry reads of refused requests are bounded by the per-client limit and
        // the decision cache.)
        self.per_app
            .check(&request.app_id(), Instant::now())
            .map_err(|retry_after| ReleaseError::RateLimited {
                scope: RateLimitScope::App(request.app_id()),
                retry_after,
            })?;
        // The node's own standing must be known as of the current chain view, which is at or
        // after the app's decision: a registry that dropped this node at a block stops every
        // release decided at that block or later, not only those after the watcher's next turn.
        let view = self.authorizer.pinned_block().unwrap_or(decision.block);
        let state = self.standing_at(view).await?;
        Ok(Admitted {
            request,
            boot,
            epoch,
            decision,
            reservation,
            state,
        })
    }

    /// The serving side of Onboard: the root secret, sealed to a joiner whose own evidence
    /// (committing to its configuration digest) the registry allows as a KMS.
    pub async fn onboard(
        &self,
        req: pb::OnboardRequest,
    ) -> Result<pb::OnboardResponse, ReleaseError> {
        let Custody::Root(root) = &self.custody else {
            return Err(ReleaseError::WrongMode {
                node: self.custody.mode(),
                missing: "root secret",
                hint: "threshold nodes join by a key generation or a re-share, not by onboarding",
            });
        };
        let state = self.serving_state().await?;
        let ephemeral: [u8; 32] = fixed(&req.ephemeral_public_key, "ephemeral_public_key")?;
        let nonce: [u8; 32] = fixed(&req.nonce, "nonce")?;
        let joiner_digest: [u8; 32] = fixed(&req.config_digest, "config_digest")?;
        self.nonces.consume(&nonce, self.clock.now_unix())?;

        let report = self.verify_evidence(req.evidence.as_ref()).await?;
        // The joiner commits to the configuration it will seal the root under; the registry
        // must allow that configuration, not only the joiner's image and chip.
        if report.report_data != binding::onboard_report_data(&nonce, &ephemeral, &joiner_digest) {
            return Err(ReleaseError::ReportDataMismatch {
                binding: ONBOARD_BINDING,
            });
        }
        let joiner = BootInfo::for_kms(&report);
        let decision = self
            .decide(self.authorizer.is_kms_allowed(&joiner, joiner_digest))
            .await?;
        let record = self.record(
            RecordKind::Onboard,
            &joiner,
            state.key_epoch,
            &decision,
            &state,
        );
        if !decision.allowed {
            self.log.append(record).await?;
            return Err(ReleaseError::Denied {
                reason: decision.reason,
                block: decision.block,
            });
        }
        // A node the registry has since dropped (old image, revoked chip, another
        // configuration) must not hand out the root any more.
        let view = self.authorizer.pinned_block().unwrap_or(decision.block);
        self.standing_at(view).await?;

        let sealed = seal::seal(
            &ephemeral,
            seal::ROOT_SECRET_INFO,
            &seal::root_secret_aad(&nonce, &self.signing_address),
            root.expose(),
        )
        .map_err(|e| RequestError::EphemeralKey(e.to_string()))?;
        self.log.append(record).await?;
        tracing::info!(
            chip_id_hash = %hex::encode(snpkms_api::app_key_signature::keccak256(joiner.chip_id_bytes())),
            config_digest = %format!("0x{}", hex::encode(joiner_digest)),
            "root secret handed to an allowed KMS node"
        );
        Ok(pb::OnboardResponse {
            encapsulated_key: sealed.encapsulated_key,
            sealed_root_secret: sealed.ciphertext,
            root_signing_address: self.signing_address.to_vec(),
            block_number: decision.block.number,
            block_hash: decision.block.hash.to_vec(),
        })
    }

    /// The record of a decision; a threshold node's names its share and share set, as of
    /// `state`.
    fn record(
        &self,
        kind: RecordKind,
        boot: &BootInfo,
        epoch: u32,
        decision: &Decision,
        state: &KmsState,
    ) -> NewRecord {
        let mut record = NewRecord::new(kind, self.clock.now_unix(), boot, epoch, decision);
        if let Custody::Share(share) = &self.custody {
            record.share = Some(ShareOrigin {
                share_epoch: state.share_epoch,
                node_index: share.index(),
            });
        }
        record
    }

    /// The node's state if it may serve. A refusal older than the chain view is read again
    /// first: a node the registry allows again serves from that block, not from the watcher's
    /// next turn.
    pub async fn serving_state(&self) -> Result<KmsState, ReleaseError> {
        let state = self.state();
        if state.serving.is_err() {
            if let Some(pinned) = self.authorizer.pinned_block() {
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
    /// The snapshot it checked is returned: what the caller releases under (its share epoch)
    /// is what was found serving, not a later read.
    async fn standing_at(&self, at: BlockRef) -> Result<KmsState, ReleaseError> {
        if self.state().checked_at != Some(at) {
            self.refresh_standing_if(|checked| checked != Some(at))
                .await;
        }
        let state = self.state();
        state.serving.clone().map_err(ReleaseError::NotServing)?;
        Ok(state)
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
        if let Some(read) = &read {
            state.key_epoch = read.key_epoch;
            state.share_epoch = read.share_epoch;
        }
        state.checked_at = read.map(|read| read.block);
        state.serving = verdict;
        state.clone()
    }

    /// What the registry said (key epoch, share epoch, at which block), and whether this node
    /// may serve.
    async fn standing(&self) -> (Option<Standing>, Result<(), String>) {
        let unreadable =
            |e: crate::ports::AuthorizerError| Err(format!("the registry could not be read: {e}"));
        let info = match self.authorizer.kms_info().await {
            Ok(info) => info,
            Err(e) => return (None, unreadable(e)),
        };
        let group = match self.authorizer.threshold_group().await {
            Ok(group) => group,
            Err(e) => return (None, unreadable(e)),
        };
        let read = Some(Standing {
            key_epoch: info.key_epoch,
            share_epoch: group.share_epoch,
            // The later of the two reads: the verdict holds from there.
            block: if group.block.number >= info.block.number {
                group.block
            } else {
                info.block
            },
        });
        let named = match &self.custody {
            Custody::Root(_) if group.is_threshold_mode() => Err(format!(
                "the registry runs the threshold mode (share epoch {}): a replicated root \
                 vouches for nothing there, so this node does not serve",
                group.share_epoch
            )),
            Custody::Root(_) if info.root_signing_address != self.signing_address => Err(format!(
                "the registry's KMS root signing address is 0x{} but this node's is 0x{}; \
                 register this node's KMS info (snpkms gov set-kms-info) or onboard it from a peer",
                hex::encode(info.root_signing_address),
                hex::encode(self.signing_address)
            )),
            Custody::Root(_) => Ok(()),
            Custody::Share(share) => share_is_listed(share, &group),
        };
        if let Err(why) = named {
            return (read, Err(why));
        }
        let me = match self.self_boot().await {
            Ok(me) => me,
            Err(why) => return (read, Err(format!("this node cannot attest itself: {why}"))),
        };
        let verdict = match self
            .authorizer
            .is_kms_allowed(&me, self.config_digest)
            .await
        {
            Err(e) => Err(format!("the registry could not be read: {e}")),
            Ok(d) if !d.allowed => Err(format!(
                "the registry does not allow this node as a KMS at block {}: {} \
                 (configuration digest 0x{})",
                d.block,
                d.reason,
                hex::encode(self.config_digest)
            )),
            Ok(_) => Ok(()),
        };
        (read, verdict)
    }
}

/// One standing read: the epochs and the block they were read at.
struct Standing {
    key_epoch: u32,
    share_epoch: u32,
    block: BlockRef,
}

/// A threshold node serves only while the registry's current share set lists its index with
/// its own verifying share and signing address: a node left out at a re-share (its share is
/// then of an old polynomial), or one whose share the set does not match, answers nothing.
fn share_is_listed(
    share: &crate::custody::NodeShare,
    group: &ThresholdGroup,
) -> Result<(), String> {
    if !group.is_threshold_mode() {
        return Err(
            "the registry runs the replicated-root mode (no threshold share set is \
                    recorded): a threshold share serves nothing there"
                .into(),
        );
    }
    let Some(me) = group.nodes.iter().find(|n| n.index == share.index()) else {
        return Err(format!(
            "the registry's share set (share epoch {}) has no node {}: this node's share is \
             not part of it",
            group.share_epoch,
            share.index()
        ));
    };
    if me.verifying_share != share.verifying_share() {
        return Err(format!(
            "the registry's share set (share epoch {}) records another verifying share for \
             node {} than this node's: its share is of another key generation or share epoch",
            group.share_epoch,
            share.index()
        ));
    }
    if me.signer != share.signing_address() {
        return Err(format!(
            "the registry's share set (share epoch {}) lists 0x{} as node {}'s signer, but this \
             node signs as 0x{}",
            group.share_epoch,
            hex::encode(me.signer),
            share.index(),
            hex::encode(share.signing_address())
        ));
    }
    Ok(())
}

impl<P: Ports> Node<P> {
    /// This node's own BootInfo: its evidence verified with its own verifier (and its VCEK
    /// fetched if its host supplied none), once.
    async fn self_boot(&self) -> Result<BootInfo, String> {
        if let Some(me) = self
            .self_boot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Ok(me);
        }
        let own = self.self_evidence.as_ref().map_err(Clone::clone)?;
        let verified = self
            .evidence
            .verify_or_fetch(
                &own.report,
                &own.cert_table,
                UnixTime(self.clock.now_unix()),
                &self.certificates,
            )
            .await
            .map_err(|e| e.to_string())?;
        let me = BootInfo::for_kms(&verified);
        *self.self_boot.write().unwrap_or_else(|e| e.into_inner()) = Some(me.clone());
        Ok(me)
    }
}
