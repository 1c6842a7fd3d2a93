//! Prometheus metrics on their own listener. Labels never carry key material; the app label is
//! the public app id.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use snpkms_verifier::VerifyError;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

type Labels = Vec<(&'static str, String)>;

/// Counters sampled at scrape time from the parts that keep their own.
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
    /// The registry names this node's root and allows this node as a KMS.
    pub serving: bool,
}

/// Samples a [`Snapshot`] at scrape time.
pub type SnapshotFn = Arc<dyn Fn() -> Snapshot + Send + Sync>;

pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<Labels, Counter>,
    request_seconds: Family<Labels, Histogram>,
    verify_failures: Family<Labels, Counter>,
    verify_seconds: Histogram,
    chain_seconds: Histogram,
    chain_errors: Family<Labels, Counter>,
    key_releases: Family<Labels, Counter>,
    kds_fetches: Family<Labels, Counter>,
    snapshot: Arc<OnceLock<SnapshotFn>>,
}

struct SnapshotCollector(Arc<OnceLock<SnapshotFn>>);

impl std::fmt::Debug for SnapshotCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SnapshotCollector")
    }
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(f) = self.0.get() else {
            return Ok(());
        };
        let s = f();
        let counters = [
            (
                "snpkms_registry_decision_cache_hits",
                "Authorization decisions served from the event-invalidated cache",
                s.registry_decision_cache_hits,
            ),
            (
                "snpkms_registry_decision_cache_misses",
                "Authorization decisions read from the chain",
                s.registry_decision_cache_misses,
            ),
            (
                "snpkms_registry_decision_cache_invalidations",
                "Cached decisions dropped by events or reorgs",
                s.registry_decision_cache_invalidations,
            ),
            (
                "snpkms_cert_chain_cache_hits",
                "Reports whose VCEK chain was already verified",
                s.cert_chain_cache_hits,
            ),
            (
                "snpkms_cert_chain_cache_misses",
                "Reports whose VCEK chain had to be verified",
                s.cert_chain_cache_misses,
            ),
            (
                "snpkms_audit_syncs",
                "Writes of the key-release log made durable (one fdatasync each, shared by the records appended meanwhile)",
                s.audit_syncs,
            ),
        ];
        for (name, help, value) in counters {
            let metric = ConstCounter::new(value);
            metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)?;
        }
        for (name, help, value) in [
            (
                "snpkms_outstanding_nonces",
                "Used challenges remembered (issued ones cost no memory)",
                s.outstanding_nonces,
            ),
            (
                "snpkms_audit_records",
                "Records in the key-release log",
                s.audit_records,
            ),
            (
                "snpkms_serving",
                "1 while the registry names this node's root and allows this node as a KMS (its image, chip, TCB and configuration); 0 while it refuses every request",
                u64::from(s.serving),
            ),
        ] {
            let metric = ConstGauge::new(value as i64);
            metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)?;
        }
        Ok(())
    }
}

fn latency_histogram() -> Histogram {
    // 100 µs .. ~13 s
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<Labels, Counter>::default();
        let request_seconds = Family::<Labels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let verify_failures = Family::<Labels, Counter>::default();
        let verify_seconds = latency_histogram();
        let chain_seconds = latency_histogram();
        let chain_errors = Family::<Labels, Counter>::default();
        let key_releases = Family::<Labels, Counter>::default();
        let kds_fetches = Family::<Labels, Counter>::default();
        for outcome in ["store_hit", "fetched"] {
            let _ = kds_fetches.get_or_create(&vec![
                ("outcome", outcome.to_string()),
                ("reason", String::new()),
            ]);
        }
        registry.register(
            "snpkms_kds",
            "VCEK lookups for evidence that came without one: served from the store (store_hit), fetched from a KDS URL (fetched), or a failed request by reason",
            kds_fetches.clone(),
        );
        registry.register(
            "snpkms_requests",
            "gRPC requests by method and status code",
            requests.clone(),
        );
        registry.register(
            "snpkms_request_duration_seconds",
            "gRPC request latency by method",
            request_seconds.clone(),
        );
        registry.register(
            "snpkms_verification_failures",
            "Rejected evidence by failing check",
            verify_failures.clone(),
        );
        registry.register(
            "snpkms_verification_duration_seconds",
            "Evidence verification time",
            verify_seconds.clone(),
        );
        registry.register(
            "snpkms_registry_read_duration_seconds",
            "Authorization read time (cache hits included)",
            chain_seconds.clone(),
        );
        registry.register(
            "snpkms_registry_read_errors",
            "Authorization reads that gave no decision",
            chain_errors.clone(),
        );
        registry.register(
            "snpkms_key_releases",
            "Keys released by app",
            key_releases.clone(),
        );
        let snapshot = Arc::new(OnceLock::new());
        registry.register_collector(Box::new(SnapshotCollector(snapshot.clone())));
        Metrics {
            registry: Mutex::new(registry),
            requests,
            request_seconds,
            verify_failures,
            verify_seconds,
            chain_seconds,
            chain_errors,
            key_releases,
            kds_fetches,
            snapshot,
        }
    }

    pub fn set_snapshot(&self, f: SnapshotFn) {
        let _ = self.snapshot.set(f);
    }

    pub fn observe_request(&self, method: &'static str, code: tonic::Code, elapsed: Duration) {
        self.requests
            .get_or_create(&vec![
                ("method", method.to_string()),
                ("code", format!("{code:?}")),
            ])
            .inc();
        self.request_seconds
            .get_or_create(&vec![("method", method.to_string())])
            .observe(elapsed.as_secs_f64());
    }

    pub fn observe_verify(&self, elapsed: Duration, error: Option<&VerifyError>) {
        self.verify_seconds.observe(elapsed.as_secs_f64());
        if let Some(e) = error {
            self.verify_failures
                .get_or_create(&vec![("reason", e.kind().to_string())])
                .inc();
        }
    }

    /// One authorization read of the registry, and the kind of failure if it gave no decision.
    pub fn observe_registry_read(&self, elapsed: Duration, failure: Option<&'static str>) {
        self.chain_seconds.observe(elapsed.as_secs_f64());
        if let Some(kind) = failure {
            self.chain_errors
                .get_or_create(&vec![("kind", kind.to_string())])
                .inc();
        }
    }

    pub fn key_released(&self, app_id: &[u8; 20]) {
        self.key_releases
            .get_or_create(&vec![("app", format!("0x{}", hex::encode(app_id)))])
            .inc();
    }

    /// One outcome of the KDS client.
    pub fn kds_outcome(&self, outcome: snpkms_kds::FetchOutcome) {
        let (outcome, reason) = match outcome {
            snpkms_kds::FetchOutcome::StoreHit => ("store_hit", ""),
            snpkms_kds::FetchOutcome::Fetched => ("fetched", ""),
            snpkms_kds::FetchOutcome::Failed(reason) => ("failed", reason),
        };
        self.kds_fetches
            .get_or_create(&vec![
                ("outcome", outcome.to_string()),
                ("reason", reason.to_string()),
            ])
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Serves `/metrics` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = metrics.clone();
            async move {
                (
                    [(
                        "content-type",
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    metrics.render(),
                )
            }
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
