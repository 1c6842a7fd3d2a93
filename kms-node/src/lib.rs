//! A KMS node around the node core ([`snpkms_core`]): its configuration ([`config`], and the
//! part of it sealed with the root, [`SecuritySettings`]), the sealed root ([`bootstrap`] makes
//! one, [`join`] receives one from a peer), the key-release log ([`read_audit_log`]), the
//! adapters that give the core its ports, the gRPC service and its status mapping, the
//! listeners, background tasks and metrics. [`start`] wires them and returns a
//! [`RunningNode`]. ARCHITECTURE.md at the repository root shows where each check lives.

#![warn(missing_docs)]

mod adapters;
pub mod audit_log;
mod bootstrap;
pub mod config;
mod connections;
mod join;
pub mod kds;
mod keygen;
mod metrics;
mod platform;
mod sealed_secret;
mod security;
mod server;
mod service;
mod status;
mod store;
mod tasks;
mod tls;
mod wire_status;

pub use audit_log::{
    AuditLogError, HashChainBreak, HeadCheckError, History, LogContents, ReleaseRecord,
};
pub use bootstrap::{
    bootstrap, check_bootstrap, BootstrapCheckError, BootstrapOutput, CheckedBootstrap,
};
pub use join::{join, JoinOutcome, PeerError};
pub use keygen::{
    check_keygen, keygen, CheckedGroup, CheckedMember, KeyGenCheckError, KeyGenError, KeyGenOutput,
    KeyGenPlan, VerifyingShare,
};
pub use platform::PlatformError;
pub use security::{ConfigDigest, SecuritySettings};
pub use status::ERROR_DOMAIN;
pub use store::StoreError;
pub use tls::TlsError;

use crate::adapters::{Node, NodeMetrics, Registry, SystemClock};
use crate::audit_log::AuditLog;
use crate::config::NodeConfig;
use crate::metrics::{Metrics, Snapshot};

use crate::store::Store;
use crate::tls::TlsIdentity;
use snpkms_chain_client::{ChainClient, ChainError};
use snpkms_core::{CoreLimits, Custody, NodeParts};
use snpkms_verifier::TrustRoots;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Why the node did not start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The configuration is unreadable or invalid.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The store is missing, damaged, locked, or sealed under another configuration.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The key-release log is missing or damaged.
    #[error(transparent)]
    AuditLog(#[from] audit_log::AuditLogError),
    /// The platform gave no evidence or key.
    #[error(transparent)]
    Platform(#[from] platform::PlatformError),
    /// The chain could not be reached or is not the configured one.
    #[error("chain: {0}")]
    Chain(#[from] ChainError),
    /// The TLS identity is unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The reflection service could not be built.
    #[error("gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The gRPC server failed.
    #[error("server: {0}")]
    Serve(#[source] tonic::transport::Error),
    /// A task of the node panicked or was cancelled.
    #[error("server task: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The threshold key generation failed (naming the participant where one is at fault).
    #[error("key generation: {0}")]
    KeyGen(#[from] keygen::KeyGenError),
    /// No peer onboarded this node (each peer's reason).
    #[error("onboarding failed: {}", onboard_failures(.0))]
    Onboard(Vec<join::PeerError>),
}

fn onboard_failures(failures: &[join::PeerError]) -> String {
    if failures.is_empty() {
        return "no peer given".into();
    }
    failures
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Logs which roots the node trusts; anything not AMD's loudly, once per origin (the
/// simulator's root is one fact, however many products it covers).
fn log_roots(roots: &TrustRoots) {
    let mut extra: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for anchor in roots.anchors() {
        if matches!(anchor.origin, snpkms_verifier::RootOrigin::Amd) {
            tracing::debug!(product = %anchor.product, fingerprint = %anchor.fingerprint(), "trusting AMD root");
        } else {
            extra
                .entry(anchor.origin.to_string())
                .or_default()
                .push(format!("{} ({})", anchor.product, anchor.fingerprint()));
        }
    }
    for (origin, products) in extra {
        tracing::warn!(
            %origin,
            products = %products.join(", "),
            "TRUSTING A NON-AMD ROOT: evidence signed under it proves nothing about real hardware; never do this in production"
        );
    }
}

/// What `snpkms node run` prints on stdout, as one JSON line, once it listens: for programs
/// that start a node (the bench, tests, supervisors), so that none parses a log line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ready {
    /// The gRPC address.
    pub grpc: SocketAddr,
    /// The metrics address, if metrics are on.
    pub metrics: Option<SocketAddr>,
    /// Whether gRPC is behind TLS.
    pub tls: bool,
    /// The KMS root signing address, `0x…`.
    pub root_signing_address: String,
    /// The security configuration digest, `0x…`.
    pub config_digest: String,
    /// Whether the registry allowed the node at start (it follows the registry afterwards).
    pub serving: bool,
}

/// A started node: its addresses, its state, and a way to stop it.
pub struct RunningNode {
    /// The node core.
    pub node: Arc<Node>,
    /// The gRPC address.
    pub addr: SocketAddr,
    /// The metrics address, if metrics are on.
    pub metrics_addr: Option<SocketAddr>,
    /// Held for its lock: one node per data dir.
    _store: Store,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    server: server::ServerTask,
}

impl RunningNode {
    /// Stops serving and waits for the server to finish.
    pub async fn stop(self) -> Result<(), NodeError> {
        let _ = self.shutdown.send(true);
        for t in &self.tasks {
            t.abort();
        }
        // Wait for the aborted tasks to drop what they hold.
        for t in self.tasks {
            let _ = t.await;
        }
        let served = self.server.await?;
        self.node.log().close().await;
        served
    }

    /// What the node reports when it is ready.
    pub fn ready(&self, tls: bool) -> Ready {
        Ready {
            grpc: self.addr,
            metrics: self.metrics_addr,
            tls,
            root_signing_address: format!("0x{}", hex::encode(self.node.signing_address())),
            config_digest: self.config_digest().to_string(),
            serving: self.node.state().serving.is_ok(),
        }
    }

    /// The node's chain client.
    pub fn chain(&self) -> &ChainClient {
        &self.node.authorizer().0
    }

    /// Records in the key-release log.
    pub fn audit_records(&self) -> u64 {
        snpkms_core::ReleaseLog::len(self.node.log())
    }

    /// The security configuration digest, as `0x…` hex.
    pub fn config_digest(&self) -> security::ConfigDigest {
        security::ConfigDigest(self.node.config_digest())
    }

    /// Waits until the server ends on its own (an error) or is stopped.
    pub async fn wait(&mut self) -> Result<(), NodeError> {
        (&mut self.server).await?
    }
}

/// Opens the store, unseals the root (only under the security configuration it was sealed
/// under), connects to the chain and starts serving (only while the registry allows it).
pub async fn start(cfg: NodeConfig) -> Result<RunningNode, NodeError> {
    let settings = SecuritySettings::resolve(&cfg)?;
    let attestor = platform::open(&cfg.platform)?;
    let store = Store::open(&cfg.data_dir)?;
    let custody = sealed_secret::unseal(&store, attestor.as_ref(), settings.digest())?;
    let tls = TlsIdentity::load(&cfg)?;
    log_roots(&settings.roots);
    let chain = ChainClient::connect(settings.chain.clone()).await?;
    let metrics = Arc::new(Metrics::new());
    let kds = Arc::new(kds::client(
        &cfg,
        Arc::new(kds::KdsMetrics(metrics.clone())),
    )?);
    tracing::info!(
        urls = ?kds.source_labels(),
        store = %kds::store_dir(&cfg.data_dir).display(),
        "VCEKs that guests' hosts do not supply come from these KDS URLs and the store"
    );
    // The node's key (the root's, or its share's) signs the log's heads: a host that rewrites
    // the file cannot re-sign them.
    let log_signer = custody.signing_key();
    let node = Arc::new(Node::new(
        NodeParts {
            custody,
            config_digest: settings.digest().0,
            verifier: settings.verifier(),
            tls_public_key: TlsIdentity::public_key_of(&tls),
            limits: CoreLimits {
                nonce_ttl_secs: cfg.limits.nonce_ttl_secs,
                max_outstanding_nonces: cfg.limits.max_outstanding_nonces,
                verified_cert_chain_cache: cfg.limits.verified_chain_cache,
                grant_cache: cfg.limits.grant_cache,
                per_app_rate: cfg.limits.per_app_rate,
                per_app_burst: cfg.limits.per_app_burst,
            },
            authorizer: Registry(chain),
            log: AuditLog::open(
                &cfg.data_dir,
                log_signer,
                Duration::from_micros(cfg.limits.audit_commit_delay_us),
            )?,
            clock: SystemClock,
            certificates: kds::KdsSource(kds),
            observer: NodeMetrics(metrics.clone()),
        },
        attestor.as_ref(),
    ));
    let connections = server::connections(&cfg);
    metrics.set_snapshot(snapshot_of(&node, &connections));
    tracing::info!(
        mode = node.custody().mode(),
        signing_address = %format!("0x{}", hex::encode(node.signing_address())),
        chain_id = node.authorizer().0.chain_id(),
        registry = %node.authorizer().0.registry(),
        config_digest = %settings.digest(),
        "node unsealed its secret"
    );

    let (shutdown, shutdown_rx) = watch::channel(false);
    let initial = node.refresh_kms_state().await.serving;
    let backstop = Duration::from_millis(cfg.chain.poll_interval_ms.max(200)) * 4;
    let mut tasks = vec![tasks::sweep_nonces(node.clone())];
    let metrics_addr =
        server::serve_metrics(&cfg, metrics.clone(), shutdown_rx.clone(), &mut tasks).await?;
    let grpc =
        server::serve_grpc(&cfg, node.clone(), metrics, tls, connections, shutdown_rx).await?;
    tasks.push(tasks::watch_standing(
        node.clone(),
        grpc.health,
        initial,
        backstop,
    ));
    Ok(RunningNode {
        node,
        addr: grpc.addr,
        metrics_addr,
        _store: store,
        shutdown,
        tasks,
        server: grpc.task,
    })
}

/// Opens the store in `cfg.data_dir` and unseals its secret on the configured platform, as
/// [`start`] does first (only under the security configuration it was sealed under). For what
/// runs inside the node's TEE with the node stopped: a re-share reads its share this way.
pub fn unseal_secret(cfg: &NodeConfig) -> Result<Custody, NodeError> {
    let settings = SecuritySettings::resolve(cfg)?;
    let attestor = platform::open(&cfg.platform)?;
    let store = Store::open(&cfg.data_dir)?;
    sealed_secret::unseal(&store, attestor.as_ref(), settings.digest())
}

/// What the metrics sample from the node at scrape time.
fn snapshot_of(
    node: &Arc<Node>,
    connections: &Arc<connections::Connections>,
) -> metrics::SnapshotFn {
    let weak = Arc::downgrade(node);
    let connections = Arc::downgrade(connections);
    Arc::new(move || {
        let Some(node) = weak.upgrade() else {
            return Snapshot::default();
        };
        let chain = node.authorizer().0.cache_stats();
        let (vh, vm) = node.evidence().cache_stats();
        let history = node.log().history();
        Snapshot {
            registry_decision_cache_hits: chain.hits,
            registry_decision_cache_misses: chain.misses,
            registry_decision_cache_invalidations: chain.invalidations,
            cert_chain_cache_hits: vh,
            cert_chain_cache_misses: vm,
            outstanding_nonces: node.outstanding_nonces() as u64,
            audit_records: snpkms_core::ReleaseLog::len(node.log()),
            audit_syncs: node.log().syncs(),
            audit_history_broken: matches!(history, History::Broken(_)),
            audit_history_checking: matches!(history, History::Checking),
            audit_history_checked_records: match history {
                History::Intact { records } => records,
                _ => 0,
            },
            serving: node.state().serving.is_ok(),
            connections: connections.upgrade().map(|c| c.stats()).unwrap_or_default(),
            chain: node.authorizer().0.position(),
        }
    })
}

/// `snpkms node audit-log`: every record, with the chain checked. Reads the file only, so it
/// works beside a running node.
pub fn read_audit_log(cfg: &NodeConfig) -> Result<LogContents, AuditLogError> {
    audit_log::read(&cfg.data_dir)
}

/// `snpkms node audit-log --archive DIR`: the archived segments in `archive` and the live log,
/// checked as one chain.
pub fn read_audit_log_with_archive(
    cfg: &NodeConfig,
    archive: &Path,
) -> Result<LogContents, AuditLogError> {
    audit_log::read_chain(&audit_log::archived_segments(archive)?, &cfg.data_dir)
}

/// `snpkms node audit-archive`: moves the log's records into a segment in `into` and starts the
/// live log at its last head. Only with the node stopped: the node's store is held meanwhile,
/// so a running node makes it fail ("locked by another process").
pub fn archive_audit_log(
    cfg: &NodeConfig,
    into: &Path,
) -> Result<audit_log::ArchivedSegment, NodeError> {
    let _store = Store::open(&cfg.data_dir)?;
    Ok(audit_log::archive(&cfg.data_dir, into)?)
}
