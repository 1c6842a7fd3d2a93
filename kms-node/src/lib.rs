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
pub mod service;
pub mod store;

use crate::audit_log::AuditLog;
use crate::config::NodeConfig;
use crate::evidence::EvidenceVerifier;
use crate::metrics::{Metrics, Snapshot};
use crate::nonces::NonceStore;
use crate::release::{now_unix, KmsState, Node};
use crate::store::{Store, StoreError};
use snpkms_api::pb::kms_server::KmsServer;
use snpkms_chain_client::{ChainClient, ChainError};
use snpkms_verifier::{Crl, Product, TrustRoots, Verifier};
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
    #[error("onboarding failed: {0}")]
    Onboard(String),
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

fn trust_roots(cfg: &NodeConfig) -> Result<TrustRoots, NodeError> {
    let mut roots = TrustRoots::amd();
    if cfg.trust.simulator_root {
        snpkms_simulator::trust_simulator_root(&mut roots)
            .map_err(|e| NodeError::Roots(e.to_string()))?;
    }
    for path in &cfg.trust.extra_roots {
        let pem = std::fs::read(path)
            .map_err(|e| NodeError::Roots(format!("{}: {e}", path.display())))?;
        roots
            .add_pem(&Product::ALL, &path.display().to_string(), &pem)
            .map_err(|e| NodeError::Roots(format!("{}: {e}", path.display())))?;
    }
    Ok(roots)
}

fn verifier(cfg: &NodeConfig) -> Result<Verifier, NodeError> {
    let roots = trust_roots(cfg)?;
    for anchor in roots.anchors() {
        if matches!(anchor.origin, snpkms_verifier::RootOrigin::Amd) {
            tracing::info!(product = %anchor.product, fingerprint = %anchor.fingerprint(), "trusting AMD root");
        } else {
            tracing::warn!(
                product = %anchor.product,
                origin = %anchor.origin,
                fingerprint = %anchor.fingerprint(),
                "TRUSTING A NON-AMD ROOT: evidence signed under it proves nothing about real hardware; never do this in production"
            );
        }
    }
    let mut verifier = Verifier::new(roots, cfg.policy.clone());
    for path in &cfg.trust.crls {
        let der = std::fs::read(path)
            .map_err(|e| NodeError::Roots(format!("{}: {e}", path.display())))?;
        let crl = Crl::from_der(&der)
            .map_err(|e| NodeError::Roots(format!("{}: {e}", path.display())))?;
        verifier = verifier.with_crl(crl);
    }
    Ok(verifier)
}

/// This node's own evidence, verified with its own verifier: what it presents to the registry
/// as a KMS before onboarding others.
fn attest_self(
    platform: &dyn snpkms_guest::EvidenceSource,
    evidence: &EvidenceVerifier,
    root_address: &[u8; 20],
) -> Result<snpkms_verifier::BootInfo, String> {
    let report_data = snpkms_api::binding::report_data(b"snpkms/self-check/v1", root_address, &[]);
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

/// Opens the store, unseals the root, connects to the chain and starts serving.
pub async fn start(cfg: NodeConfig) -> Result<RunningNode, NodeError> {
    let platform = platform::open(&cfg.platform)?;
    let sealing_key = platform
        .sealing_key()
        .map_err(platform::PlatformError::from)?;
    let store = Store::open(&cfg.data_dir)?;
    let root = sealed_root::load_root(&store, &sealing_key)?;
    drop(sealing_key);
    let root_signing_key = root.root_signing_key();
    let root_address = root.root_signing_address();
    let tls_public_key = tls_public_key(&cfg)?;
    let evidence = Arc::new(EvidenceVerifier::new(
        verifier(&cfg)?,
        cfg.limits.verified_chain_cache,
    ));
    let self_boot = attest_self(platform.as_ref(), &evidence, &root_address);
    if let Err(why) = &self_boot {
        tracing::error!("this node cannot attest itself, so it will not onboard others: {why}");
    }
    let chain = ChainClient::connect(cfg.chain.to_chain_config()?).await?;
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
        }),
        metrics: metrics.clone(),
        grants: grants::GrantCache::new(10_000),
        self_boot,
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
            }
        }));
    }
    tracing::info!(
        root_signing_address = %format!("0x{}", hex::encode(root_address)),
        chain_id = node.chain.chain_id(),
        registry = %node.chain.registry(),
        "node unsealed its root secret"
    );

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut tasks = Vec::new();

    // Checks that the chain still names this node's root, and follows the key epoch. Logs
    // only changes of verdict, not every poll.
    let poll = Duration::from_millis(cfg.chain.poll_interval_ms.max(200));
    let initial = match node.refresh_kms_state().await {
        Ok(state) => state.serving,
        Err(e) => Err(format!("the chain did not answer: {e}")),
    };
    if let Err(why) = &initial {
        tracing::warn!("not serving yet: {why}");
    }
    {
        let node = node.clone();
        let health = health_reporter.clone();
        tasks.push(tokio::spawn(async move {
            let mut last: Option<bool> = None;
            loop {
                let serving = match node.refresh_kms_state().await {
                    Ok(state) => {
                        if let (Err(why), Some(true)) = (&state.serving, last) {
                            tracing::error!("stopped serving: {why}");
                        }
                        state.serving.is_ok()
                    }
                    // Keep the last verdict: reads fail closed on their own while the chain is away.
                    Err(e) => {
                        tracing::debug!("KMS info refresh failed: {e}");
                        node.state().serving.is_ok()
                    }
                };
                if last != Some(serving) {
                    if serving {
                        tracing::info!("serving: the registry names this node's root");
                        health.set_serving::<KmsServer<service::KmsService>>().await;
                    } else {
                        health
                            .set_not_serving::<KmsServer<service::KmsService>>()
                            .await;
                    }
                    last = Some(serving);
                }
                tokio::time::sleep(poll).await;
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
