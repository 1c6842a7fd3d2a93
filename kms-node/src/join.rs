//! `snpkms node onboard`: the joining side of root secret replication. The joiner proves itself
//! with its own SNP evidence (bound to a fresh nonce, its ephemeral key and its configuration
//! digest); a serving node (`snpkms_core::Node::onboard`) hands it the root secret sealed to
//! that key only if the registry allows it; the joiner keeps the secret only if it derives the
//! root signing address the registry names, and seals it under its own platform key and
//! configuration. The secret never leaves a TEE in the clear.

use crate::config::NodeConfig;
use crate::sealed_secret::SealedUnder;
use crate::security::{ConfigDigest, SecuritySettings};
use crate::store::Store;
use crate::{platform, sealed_secret, NodeError};
use snpkms_api::binding;
use snpkms_api::pb;
use snpkms_api::pb::kms_client::KmsClient;
use snpkms_api::seal::{self, EphemeralKeyPair, Sealed};
use snpkms_chain_client::ChainClient;
use snpkms_core::keys::{RootSecret, ROOT_SECRET_LEN};
use snpkms_core::Custody;
use snpkms_platform::Attestor;
use zeroize::Zeroizing;

/// Why one peer could not onboard us.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// No connection to the peer.
    #[error("cannot reach {peer}: {source}")]
    Connect {
        /// The peer's URL.
        peer: String,
        /// Why.
        #[source]
        source: tonic::transport::Error,
    },
    /// The peer refused (its status code and message).
    #[error("{peer} refused: {code:?}: {message}")]
    Refused {
        /// The peer's URL.
        peer: String,
        /// The gRPC code.
        code: tonic::Code,
        /// Its message.
        message: String,
    },
    /// This node's platform gave no evidence.
    #[error("evidence: {0}")]
    Evidence(#[from] snpkms_platform::PlatformError),
    /// The answer does not open with our ephemeral key.
    #[error("{peer} sent a response that does not open with our key: {message}")]
    Open {
        /// The peer's URL.
        peer: String,
        /// Why.
        message: String,
    },
    /// The secret derives another root than the registry names.
    #[error("{peer} handed out a root secret for {claimed} but the registry names {registered}: refused; report this peer")]
    WrongRoot {
        /// The peer's URL.
        peer: String,
        /// The root the secret derives.
        claimed: String,
        /// The registry's root.
        registered: String,
    },
}

/// What a successful onboarding reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JoinOutcome {
    /// The URL of the peer that handed over the root.
    pub peer: String,
    /// The root signing address the secret derives (the registry's), `0x…`.
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
                    sealed_secret::store_custody(store, &sealing_key, under, &Custody::Root(root))
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
    let mut client = KmsClient::connect(peer.to_string())
        .await
        .map_err(|source| PeerError::Connect {
            peer: peer.to_string(),
            source,
        })?;
    let nonce = client
        .get_challenge(pb::GetChallengeRequest {})
        .await
        .map_err(refused)?
        .into_inner()
        .nonce;
    let ephemeral = EphemeralKeyPair::generate();
    let evidence = source.attest(binding::onboard_report_data(
        &nonce,
        &ephemeral.public_key(),
        &digest.0,
    ))?;
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
