//! The snpkms node. `Node` holds the state and the GetAppKey flow ([`release`]); the gRPC
//! service ([`service`]) and the process wiring ([`start`]) sit around it.

pub mod audit_log;
pub mod bootstrap;
pub mod config;
pub mod error;
pub mod evidence;
pub mod grants;
pub mod keys;
pub mod metrics;
pub mod nonces;
pub mod onboard;
pub mod platform;
pub mod ratelimit;
pub mod release;
pub mod sealed_root;
pub mod security;
pub mod service;
pub mod store;

use crate::audit_log::AuditLog;
use crate::config::NodeConfig;
use crate::evidence::EvidenceVerifier;
use crate::metrics::{Metrics, Snapshot};
use crate::nonces::NonceStore;
use crate::release::{now_unix, KmsState, Node};
use crate::security::{ConfigDigest, SecuritySettings};
use crate::store::{Store, StoreError};
use snpkms_api::pb::kms_server::KmsServer;
use snpkms_chain_client::{ChainClient, ChainError};
use snpkms_verifier::TrustRoots;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use release::Node as KmsNode;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    AuditLog(#[from] audit_log::AuditLogError),
    #[error(transparent)]
    Platform(#[from] platform::PlatformError),
    #[error("chain: {0}")]
    Chain(#[from] ChainError),
    #[error("trust roots: {0}")]
    Roots(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("cannot listen on {addr}: {message}")]
    Listen { addr: SocketAddr, message: String },
    #[error("server: {0}")]
    Serve(String),
    #[error("onboarding failed: {}", onboard_failures(.0))]
    Onboard(Vec<onboard::PeerError>),
}

fn onboard_failures(failures: &[onboard::PeerError]) -> String {
    if failures.is_empty() {
        return "no peer given".into();
    }
    failures
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The public key of the node's TLS certificate (SPKI DER), registered on chain so guests can
/// pin it; empty without TLS.
pub fn tls_public_key(cfg: &NodeConfig) -> Result<Vec<u8>, NodeError> {
    let Some(tls) = &cfg.tls else {
        return Ok(Vec::new());
    };
    let pem = std::fs::read(&tls.cert)
        .map_err(|e| NodeError::Tls(format!("{}: {e}", tls.cert.display())))?;
    let chain = x509_cert::Certificate::load_pem_chain(&pem)
        .map_err(|e| NodeError::Tls(format!("{}: {e}", tls.cert.display())))?;
    let leaf = chain
        .first()
        .ok_or_else(|| NodeError::Tls(format!("{} holds no certificate", tls.cert.display())))?;
    der::Encode::to_der(&leaf.tbs_certificate.subject_public_key_info)
        .map_err(|e| NodeError::Tls(e.to_string()))
}

/// Logs which roots the node trusts; anything not AMD's loudly.
fn log_roots(roots: &TrustRoots) {
    for anchor in roots.anchors() {
        if matches!(anchor.origin, snpkms_verifier::RootOrigin::Amd) {
            tracing::debug!(product = %anchor.product, fingerprint = %anchor.fingerprint(), "trusting AMD root");
        } else {
            tracing::warn!(
                product = %anchor.product,
                origin = %anchor.origin,
                fingerprint = %anchor.fingerprint(),
                "TRUSTING A NON-AMD ROOT: evidence signed under it proves nothing about real hardware; never do this in production"
            );
        }
    }
}

/// This node's own evidence, verified with its own verifier: the BootInfo it asks the registry
/// about (`isKmsAllowed`) before it serves and before it onboards others.
fn attest_self(
    platform: &dyn snpkms_platform::Attestor,
    evidence: &EvidenceVerifier,
    root_address: &[u8; 20],
    digest: &ConfigDigest,
) -> Result<snpkms_verifier::BootInfo, String> {
    let report_data =
        snpkms_api::binding::report_data(b"snpkms/self-check/v2", root_address, &digest.0);
    let own = platform.attest(report_data).map_err(|e| e.to_string())?;
    let verified = evidence
        .verify(
            &own.report,
            &own.cert_table,
            snpkms_verifier::UnixTime(now_unix()),
        )
        .map_err(|e| e.to_string())?;
    Ok(snpkms_verifier::BootInfo::for_kms(&verified))
}

/// A started node: its addresses, its state, and a way to stop it.
pub struct RunningNode {
    pub node: Arc<Node>,
    pub addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    server: JoinHandle<Result<(), NodeError>>,
}

impl RunningNode {
    /// Stops serving and waits for the server to finish.
    pub async fn stop(self) -> Result<(), NodeError> {
        let _ = self.shutdown.send(true);
        for t in &self.tasks {
            t.abort();
        }
        // Wait for the aborted tasks to drop what they hold (the store lock among it).
        for t in self.tasks {
            let _ = t.await;
        }
        let served = self
            .server
            .await
            .map_err(|e| NodeError::Serve(e.to_string()))?;
        self.node.audit.close().await;
        served
    }

    /// Waits until the server ends on its own (an error) or is stopped.
    pub async fn wait(&mut self) -> Result<(), NodeError> {
        (&mut self.server)
            .await
            .map_err(|e| NodeError::Serve(e.to_string()))?
    }
}

/// Opens the store, unseals the root (only under the security configuration it was sealed
/// under), connects to the chain and starts serving (only while the registry allows it).
pub async fn start(cfg: NodeConfig) -> Result<RunningNode, NodeError> {
    let settings = SecuritySettings::resolve(&cfg)?;
    let digest = settings.digest();
    let platform = platform::open(&cfg.platform)?;
    let store = Store::open(&cfg.data_dir)?;
    let record = sealed_root::read_record(&store)?;
    // Compared before the platform is asked for a key: a changed configuration is named as
    // such, and never leads to a new root.
    if record.under.config_digest != digest {
        return Err(StoreError::ConfigChanged {
            sealed: record.under.config_digest,
            current: digest,
        }
        .into());
    }
    let sealing_key = platform
        .sealing_key(record.under.tcb_version)
        .map_err(platform::PlatformError::from)?;
    let root = sealed_root::open(&record, &sealing_key, digest)?;
    drop(sealing_key);
    let root_signing_key = root.root_signing_key();
    let root_address = root.root_signing_address();
    let tls_public_key = tls_public_key(&cfg)?;
    log_roots(&settings.roots);
    let evidence = Arc::new(EvidenceVerifier::new(
        settings.verifier(),
        cfg.limits.verified_chain_cache,
    ));
    let self_boot = attest_self(platform.as_ref(), &evidence, &root_address, &digest);
    if let Err(why) = &self_boot {
        tracing::error!("this node cannot attest itself, so it will not serve: {why}");
    }
    let chain = ChainClient::connect(settings.chain.clone()).await?;
    let metrics = Arc::new(Metrics::new());
    let node = Arc::new(Node {
        evidence,
        chain,
        nonces: NonceStore::new(cfg.limits.nonce_ttl_secs, cfg.limits.max_outstanding_nonces),
        audit: AuditLog::open(
            &cfg.data_dir,
            Duration::from_micros(cfg.limits.audit_commit_delay_us),
        )?,
        _store: store,
        root,
        root_signing_key,
        root_address,
        state: RwLock::new(KmsState {
            serving: Err("the on-chain KMS info has not been checked yet".into()),
            key_epoch: 0,
            tls_public_key,
            checked_at: None,
        }),
        standing_check: tokio::sync::Mutex::new(()),
        metrics: metrics.clone(),
        grants: grants::GrantCache::new(10_000),
        self_boot,
        config_digest: digest,
    });
    {
        let weak = Arc::downgrade(&node);
        metrics.set_snapshot(Arc::new(move || {
            let Some(node) = weak.upgrade() else {
                return Snapshot::default();
            };
            let chain = node.chain.cache_stats();
            let (vh, vm) = node.evidence.cache_stats();
            Snapshot {
                chain_cache_hits: chain.hits,
                chain_cache_misses: chain.misses,
                chain_cache_invalidations: chain.invalidations,
                verified_chain_cache_hits: vh,
                verified_chain_cache_misses: vm,
                outstanding_nonces: node.nonces.outstanding() as u64,
                audit_records: node.audit.len(),
                audit_syncs: node.audit.syncs(),
                serving: node.state().serving.is_ok(),
            }
        }));
    }
    tracing::info!(
        root_signing_address = %format!("0x{}", hex::encode(root_address)),
        chain_id = node.chain.chain_id(),
        registry = %node.chain.registry(),
        config_digest = %digest,
        "node unsealed its root secret"
    );

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut tasks = Vec::new();

    // The node's standing, checked at every new pinned block: the registry names this node's
    // root and allows this node (image, chip, TCB, configuration) as a KMS. Logs changes of
    // verdict only. A backstop timer re-checks while the chain gives no new blocks.
    let backstop = Duration::from_millis(cfg.chain.poll_interval_ms.max(200)) * 4;
    let mut pinned = node.chain.watch_pinned();
    let initial = node.refresh_kms_state().await.serving;
    {
        let node = node.clone();
        let health = health_reporter.clone();
        tasks.push(tokio::spawn(async move {
            let mut last: Option<Result<(), String>> = None;
            let mut serving = initial;
            loop {
                if last.as_ref() != Some(&serving) {
                    match (&serving, &last) {
                        (Ok(()), _) => {
                            tracing::info!(
                                "serving: the registry names this node's root and allows this node"
                            );
                            health.set_serving::<KmsServer<service::KmsService>>().await;
                        }
                        (Err(why), Some(Ok(()))) => {
                            tracing::error!("stopped serving: {why}");
                            health
                                .set_not_serving::<KmsServer<service::KmsService>>()
                                .await;
                        }
                        (Err(why), _) => {
                            tracing::info!("not serving: {why}");
                            health
                                .set_not_serving::<KmsServer<service::KmsService>>()
                                .await;
                        }
                    }
                    last = Some(serving);
                }
                tokio::select! {
                    changed = pinned.changed() => {
                        if changed.is_err() {
                            tokio::time::sleep(backstop).await;
                        }
                    }
                    _ = tokio::time::sleep(backstop) => {}
                }
                serving = node.refresh_kms_state().await.serving;
            }
        }));
    }
    {
        let node = node.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(30)).await;
                node.nonces.sweep(now_unix());
            }
        }));
    }

    let metrics_addr = match cfg.metrics_listen {
        None => None,
        Some(addr) => {
            let listener =
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| NodeError::Listen {
                        addr,
                        message: e.to_string(),
                    })?;
            let local = listener.local_addr().map_err(|e| NodeError::Listen {
                addr,
                message: e.to_string(),
            })?;
            let mut rx = shutdown_rx.clone();
            let metrics = metrics.clone();
            tasks.push(tokio::spawn(async move {
                let stop = async move {
                    let _ = rx.wait_for(|s| *s).await;
                };
                if let Err(e) = metrics::serve(listener, metrics, stop).await {
                    tracing::error!("metrics server stopped: {e}");
                }
            }));
            Some(local)
        }
    };

    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| NodeError::Listen {
            addr: cfg.listen,
            message: e.to_string(),
        })?;
    let addr = listener.local_addr().map_err(|e| NodeError::Listen {
        addr: cfg.listen,
        message: e.to_string(),
    })?;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(snpkms_api::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| NodeError::Serve(e.to_string()))?;
    let kms = KmsServer::new(service::KmsService::new(node.clone(), &cfg.limits))
        .max_decoding_message_size(cfg.limits.max_request_bytes);
    let mut builder = tonic::transport::Server::builder()
        .concurrency_limit_per_connection(cfg.limits.max_concurrent_requests)
        .timeout(Duration::from_secs(30));
    if let Some(tls) = &cfg.tls {
        let cert = std::fs::read(&tls.cert)
            .map_err(|e| NodeError::Tls(format!("{}: {e}", tls.cert.display())))?;
        let key = std::fs::read(&tls.key)
            .map_err(|e| NodeError::Tls(format!("{}: {e}", tls.key.display())))?;
        builder = builder
            .tls_config(
                tonic::transport::ServerTlsConfig::new()
                    .identity(tonic::transport::Identity::from_pem(cert, key)),
            )
            .map_err(|e| NodeError::Tls(e.to_string()))?;
    }
    let router = builder
        .add_service(health_service)
        .add_service(reflection)
        .add_service(kms);
    let mut rx = shutdown_rx;
    // serve_with_incoming ignores the builder's tcp_nodelay: set it on the incoming stream, or
    // Nagle and delayed ACKs add ~40 ms to every small response.
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let server = tokio::spawn(async move {
        router
            .serve_with_incoming_shutdown(incoming, async move {
                let _ = rx.wait_for(|s| *s).await;
            })
            .await
            .map_err(|e| NodeError::Serve(e.to_string()))
    });
    tracing::info!(%addr, tls = cfg.tls.is_some(), "gRPC listening");
    Ok(RunningNode {
        node,
        addr,
        metrics_addr,
        shutdown,
        tasks,
        server,
    })
}

/// `snpkms node audit-log`: every record, with the chain checked. Reads the file only, so it
/// works beside a running node.
pub fn read_audit_log(
    cfg: &NodeConfig,
) -> Result<audit_log::LogContents, audit_log::AuditLogError> {
    audit_log::read(&cfg.data_dir)
}
