//! Values sampled at scrape time from the parts that keep their own counts (caches, the log,
//! the connection table, the chain follower), encoded as constant metrics.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use std::sync::{Arc, OnceLock};

/// The values, as the node's parts report them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    pub registry_decision_cache_hits: u64,
    pub registry_decision_cache_misses: u64,
    pub registry_decision_cache_invalidations: u64,
    pub cert_chain_cache_hits: u64,
    pub cert_chain_cache_misses: u64,
    pub outstanding_nonces: u64,
    pub audit_records: u64,
    pub audit_syncs: u64,
    /// The background check of the log's history found a break.
    pub audit_history_broken: bool,
    /// The background check of the log's history is still running.
    pub audit_history_checking: bool,
    /// Records the background check found intact (0 while it runs).
    pub audit_history_checked_records: u64,
    /// The registry names this node's root and allows this node as a KMS.
    pub serving: bool,
    /// The gRPC listener's connections.
    pub connections: crate::connections::ConnectionStats,
    /// Where the chain follower last saw the chain (none before its first poll).
    pub chain: Option<snpkms_chain_client::ChainPosition>,
}

/// Samples a [`Snapshot`] at scrape time.
pub type SnapshotFn = Arc<dyn Fn() -> Snapshot + Send + Sync>;

/// The collector; before the node sets its sampler every value is 0 (so every family is
/// there from the first scrape).
pub(super) struct SnapshotCollector(pub(super) Arc<OnceLock<SnapshotFn>>);

impl std::fmt::Debug for SnapshotCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SnapshotCollector")
    }
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: i64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn as_gauge(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self.0.get().map(|f| f()).unwrap_or_default();
        let e = &mut encoder;
        counter(
            e,
            "snpkms_registry_decision_cache_hits",
            "Authorization decisions served from the event-invalidated cache",
            s.registry_decision_cache_hits,
        )?;
        counter(
            e,
            "snpkms_registry_decision_cache_misses",
            "Authorization decisions read from the chain",
            s.registry_decision_cache_misses,
        )?;
        counter(
            e,
            "snpkms_registry_decision_cache_invalidations",
            "Cached decisions dropped by events or reorgs",
            s.registry_decision_cache_invalidations,
        )?;
        counter(
            e,
            "snpkms_cert_chain_cache_hits",
            "Reports whose VCEK chain was already verified",
            s.cert_chain_cache_hits,
        )?;
        counter(
            e,
            "snpkms_cert_chain_cache_misses",
            "Reports whose VCEK chain had to be verified",
            s.cert_chain_cache_misses,
        )?;
        counter(
            e,
            "snpkms_audit_syncs",
            "Writes of the key-release log made durable (one fdatasync each, shared by the records appended meanwhile)",
            s.audit_syncs,
        )?;
        gauge(
            e,
            "snpkms_outstanding_nonces",
            "Used challenges remembered (issued ones cost no memory)",
            as_gauge(s.outstanding_nonces),
        )?;
        gauge(
            e,
            "snpkms_audit_records",
            "Records in the key-release log",
            as_gauge(s.audit_records),
        )?;
        gauge(
            e,
            "snpkms_audit_history_broken",
            "1 if the check of the key-release log's history (before the head the node opened at) found it changed; 0 while intact or still checking",
            i64::from(s.audit_history_broken),
        )?;
        gauge(
            e,
            "snpkms_audit_history_checking",
            "1 while the check of the key-release log's history after opening runs (ten million records take about half a minute)",
            i64::from(s.audit_history_checking),
        )?;
        gauge(
            e,
            "snpkms_audit_history_checked_records",
            "Records of the key-release log's history read and found intact by the check after opening (0 while it runs; records archived before the log's first line are not counted)",
            as_gauge(s.audit_history_checked_records),
        )?;
        gauge(
            e,
            "snpkms_serving",
            "1 while the registry names this node's root and allows this node as a KMS (its image, chip, TCB and configuration); 0 while it refuses every request",
            i64::from(s.serving),
        )?;
        connections(e, &s.connections)?;
        chain(e, s.chain)
    }
}

fn connections(
    e: &mut DescriptorEncoder,
    c: &crate::connections::ConnectionStats,
) -> Result<(), std::fmt::Error> {
    gauge(
        e,
        "snpkms_grpc_connections",
        "TCP connections the gRPC listener holds",
        as_gauge(c.open),
    )?;
    counter(
        e,
        "snpkms_grpc_connections_accepted",
        "TCP connections the gRPC listener admitted",
        c.accepted,
    )?;
    let mut family = e.encode_descriptor(
        "snpkms_grpc_connections_closed",
        "TCP connections the gRPC listener refused or closed by its limits: the address held its share (peer_share), the oldest of the fullest address made room past the total (make_room), no handshake in time (no_handshake)",
        None,
        prometheus_client::metrics::MetricType::Counter,
    )?;
    for (reason, value) in [
        ("peer_share", c.refused_peer_share),
        ("make_room", c.closed_for_room),
        ("no_handshake", c.closed_no_handshake),
    ] {
        let labels = [("reason", reason)];
        ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

fn chain(
    e: &mut DescriptorEncoder,
    position: Option<snpkms_chain_client::ChainPosition>,
) -> Result<(), std::fmt::Error> {
    let p = position.unwrap_or(snpkms_chain_client::ChainPosition {
        head: 0,
        pinned: 0,
        pinned_timestamp: 0,
        max_staleness_secs: 0,
        healthy: false,
    });
    gauge(
        e,
        "snpkms_chain_head_block",
        "The chain's head as the node's quorum of RPC endpoints sees it (the k-th newest)",
        as_gauge(p.head),
    )?;
    gauge(
        e,
        "snpkms_chain_pinned_block",
        "The block every authorization read is made at (head minus confirmations, or safe/finalized)",
        as_gauge(p.pinned),
    )?;
    gauge(
        e,
        "snpkms_chain_pinned_block_timestamp_seconds",
        "The pinned block's timestamp (Unix seconds); time() minus this is how stale the node's view is",
        as_gauge(p.pinned_timestamp),
    )?;
    gauge(
        e,
        "snpkms_chain_max_staleness_seconds",
        "How old the pinned block may be before the node refuses to decide (chain.max_staleness_secs)",
        as_gauge(p.max_staleness_secs),
    )?;
    gauge(
        e,
        "snpkms_chain_view_healthy",
        "1 while the chain follower's last poll succeeded (a quorum agreed on the pinned block)",
        i64::from(p.healthy),
    )
}
