//! Root secret replication. A serving node hands the root secret only to a joiner whose own SNP
//! evidence the registry allows as a KMS (`isKmsAllowed`), sealed to a key bound into that
//! evidence; the joiner accepts it only if it derives the root signing address the registry
//! names. The secret never leaves a TEE in the clear.

use crate::config::NodeConfig;
use crate::error::ReleaseError;
use crate::keys::{RootSecret, ROOT_SECRET_LEN};
use crate::release::{now_unix, Node};
use crate::sealed_root::SealedUnder;
use crate::security::{ConfigDigest, SecuritySettings};
use crate::store::Store;
use crate::{platform, sealed_root, NodeError};
use snpkms_api::binding;
use snpkms_api::pb;
use snpkms_api::pb::kms_client::KmsClient;
use snpkms_api::seal::{self, EphemeralKeyPair, Sealed};
use snpkms_chain_client::ChainClient;
use snpkms_platform::Attestor;
use snpkms_verifier::BootInfo;
use zeroize::Zeroizing;

fn fixed<const N: usize>(bytes: &[u8], field: &str) -> Result<[u8; N], ReleaseError> {
    bytes.try_into().map_err(|_| {
        ReleaseError::InvalidArgument(format!("{field} must be {N} bytes, got {}", bytes.len()))
    })
}

impl Node {
    /// The serving side of onboarding.
    pub async fn onboard(
        &self,
        req: pb::OnboardRequest,
    ) -> Result<pb::OnboardResponse, ReleaseError> {
        let state = self.serving_state().await?;
        let ephemeral: [u8; 32] = fixed(&req.ephemeral_public_key, "ephemeral_public_key")?;
        let nonce: [u8; 32] = fixed(&req.nonce, "nonce")?;
        let joiner_digest: [u8; 32] = fixed(&req.config_digest, "config_digest")?;
        self.nonces.consume(&nonce, now_unix())?;

        let report = self.verify_evidence(req.evidence)?;
        // The joiner commits to the configuration it will seal the root under; the registry
        // must allow that configuration, not only the joiner's image and chip.
        if report.report_data != binding::onboard_report_data(&nonce, &ephemeral, &joiner_digest) {
            return Err(ReleaseError::ReportDataMismatch {
                domain: "snpkms/onboard/v2",
            });
        }
        let joiner = BootInfo::for_kms(&report);
        let decision = self.chain.is_kms_allowed(&joiner, joiner_digest).await?;
        if !decision.allowed {
            self.record_kind("onboard", &joiner, state.key_epoch, &decision)
                .await?;
            return Err(ReleaseError::Denied {
                reason: decision.reason,
                block: decision.block.to_string(),
            });
        }
        // A node the registry has since dropped (old image, revoked chip, another
        // configuration) must not hand out the root any more, even between two checks of
        // its standing.
        let me = self.self_boot.as_ref().map_err(|why| {
            ReleaseError::NotServing(format!("this node cannot attest itself: {why}"))
        })?;
        let mine = self.chain.is_kms_allowed(me, self.config_digest.0).await?;
        if !mine.allowed {
            return Err(ReleaseError::NotServing(format!(
                "the registry no longer allows this node as a KMS: {}",
                mine.reason
            )));
        }

        let sealed = seal::seal(
            &ephemeral,
            seal::ROOT_SECRET_INFO,
            &seal::root_secret_aad(&nonce, &self.root_address),
            self.root.expose(),
        )
        .map_err(|e| ReleaseError::InvalidArgument(e.to_string()))?;
        self.record_kind("onboard", &joiner, state.key_epoch, &decision)
            .await?;
        tracing::info!(
            chip_id_hash = %hex::encode(snpkms_api::app_key_signature::keccak256(&joiner.chip_id)),
            config_digest = %format!("0x{}", hex::encode(joiner_digest)),
            "root secret handed to an allowed KMS node"
        );
        Ok(pb::OnboardResponse {
            encapsulated_key: sealed.encapsulated_key,
            sealed_root_secret: sealed.ciphertext,
            root_signing_address: self.root_address.to_vec(),
            block_number: decision.block.number,
            block_hash: decision.block.hash.to_vec(),
        })
    }
}

/// Why one peer could not onboard us.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("cannot reach {peer}: {message}")]
    Connect { peer: String, message: String },
    #[error("{peer} refused: {code:?}: {message}")]
    Refused {
        peer: String,
        code: tonic::Code,
        message: String,
    },
    #[error("evidence: {0}")]
    Evidence(String),
    #[error("{peer} sent a response that does not open with our key: {message}")]
    Open { peer: String, message: String },
    #[error("{peer} handed out a root secret for {claimed} but the registry names {registered}: refused; report this peer")]
    WrongRoot {
        peer: String,
        claimed: String,
        registered: String,
    },
}

/// What a successful onboarding reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JoinOutcome {
    pub peer: String,
    pub root_signing_address: String,
    /// The security configuration the root is now sealed under.
    pub config_digest: String,
}

/// The joining side: tries `peers` in order, stores the first root secret that checks out,
/// sealed under this node's platform key and security configuration.
pub async fn join(cfg: &NodeConfig, peers: &[String]) -> Result<JoinOutcome, NodeError> {
    let path = cfg.data_dir.join("store");
    if path.exists() {
        return Err(crate::store::StoreError::AlreadyExists(path).into());
    }
    let settings = SecuritySettings::resolve(cfg)?;
    let digest = settings.digest();
    let source = platform::open(&cfg.platform)?;
    let chain = ChainClient::connect(settings.chain.clone()).await?;
    let registered = chain.kms_info().await?.root_signing_address.0 .0;
    let mut failures = Vec::new();
    for peer in peers {
        match from_peer(peer, source.as_ref(), &registered, &digest).await {
            Ok((root, own_report)) => {
                let under = SealedUnder {
                    config_digest: digest,
                    tcb_version: platform::committed_tcb(&own_report)?,
                };
                let sealing_key = source
                    .sealing_key(under.tcb_version)
                    .map_err(platform::PlatformError::from)?;
                Store::create_with(&cfg.data_dir, |store| {
                    sealed_root::store_root(store, &sealing_key, under, &root)
                })?;
                return Ok(JoinOutcome {
                    peer: peer.clone(),
                    root_signing_address: format!("0x{}", hex::encode(registered)),
                    config_digest: digest.to_string(),
                });
            }
            Err(e) => {
                tracing::error!("onboarding from {peer} failed: {e}");
                failures.push(e);
            }
        }
    }
    Err(NodeError::Onboard(failures))
}

/// One onboarding exchange: the root secret and this node's own report (whose committed TCB
/// the sealing key is bound to).
async fn from_peer(
    peer: &str,
    source: &dyn Attestor,
    registered: &[u8; 20],
    digest: &ConfigDigest,
) -> Result<(RootSecret, Vec<u8>), PeerError> {
    let refused = |s: tonic::Status| PeerError::Refused {
        peer: peer.to_string(),
        code: s.code(),
        message: s.message().to_string(),
    };
    let mut client =
        KmsClient::connect(peer.to_string())
            .await
            .map_err(|e| PeerError::Connect {
                peer: peer.to_string(),
                message: e.to_string(),
            })?;
    let nonce = client
        .get_challenge(pb::GetChallengeRequest {})
        .await
        .map_err(refused)?
        .into_inner()
        .nonce;
    let ephemeral = EphemeralKeyPair::generate();
    let evidence = source
        .attest(binding::onboard_report_data(
            &nonce,
            &ephemeral.public_key(),
            &digest.0,
        ))
        .map_err(|e| PeerError::Evidence(e.to_string()))?;
    let own_report = evidence.report.clone();
    let response = client
        .onboard(pb::OnboardRequest {
            evidence: Some(pb::Evidence {
                report: evidence.report,
                cert_table: evidence.cert_table,
            }),
            nonce: nonce.clone(),
            ephemeral_public_key: ephemeral.public_key().to_vec(),
            config_digest: digest.0.to_vec(),
        })
        .await
        .map_err(refused)?
        .into_inner();
    let open_err = |message: String| PeerError::Open {
        peer: peer.to_string(),
        message,
    };
    let secret = ephemeral
        .open(
            seal::ROOT_SECRET_INFO,
            &seal::root_secret_aad(&nonce, &response.root_signing_address),
            &Sealed {
                encapsulated_key: response.encapsulated_key,
                ciphertext: response.sealed_root_secret,
            },
        )
        .map_err(|e| open_err(e.to_string()))?;
    let mut bytes = Zeroizing::new([0u8; ROOT_SECRET_LEN]);
    if secret.len() != ROOT_SECRET_LEN {
        return Err(open_err(format!("root secret is {} bytes", secret.len())));
    }
    bytes.copy_from_slice(&secret);
    let root = RootSecret::from_bytes(bytes);
    // Whatever the peer claims, the secret must derive the root the registry names.
    let derived = root.root_signing_address();
    if &derived != registered {
        return Err(PeerError::WrongRoot {
            peer: peer.to_string(),
            claimed: format!("0x{}", hex::encode(derived)),
            registered: format!("0x{}", hex::encode(registered)),
        });
    }
    Ok((root, own_report))
}
