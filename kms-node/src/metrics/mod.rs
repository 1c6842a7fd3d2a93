//! Prometheus metrics on their own listener. Labels never carry key material; the app label is
//! the public app id. Every family is there from the first scrape, and the label values known
//! in advance (each method's OK, every verification check, every registry error kind, the KDS
//! outcomes that are not failures) start at 0, so `rate()` sees their first event.

mod exposition;
mod process;
mod snapshot;

pub use exposition::{serve, Format};
pub use snapshot::{Snapshot, SnapshotFn};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use snpkms_verifier::VerifyError;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

type Labels = Vec<(&'static str, String)>;

pub struct Metrics {
    /// Registered once at construction; encoding needs only a shared reference.
    registry: Registry,
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
        for method in crate::service::METHODS {
            let _ = requests.get_or_create(&vec![
                ("method", method.to_string()),
                ("code", format!("{:?}", tonic::Code::Ok)),
            ]);
            let _ = request_seconds.get_or_create(&vec![("method", method.to_string())]);
        }
        for reason in VerifyError::KINDS {
            let _ = verify_failures.get_or_create(&vec![("reason", reason.to_string())]);
        }
        for kind in crate::adapters::REGISTRY_ERROR_KINDS {
            let _ = chain_errors.get_or_create(&vec![("kind", kind.to_string())]);
        }
        let build = Family::<Labels, Gauge>::default();
        build
            .get_or_create(&vec![
                ("version", env!("CARGO_PKG_VERSION").to_string()),
                ("simulator", cfg!(feature = "simulator").to_string()),
            ])
            .set(1);
        registry.register(
            "snpkms_build_info",
            "1, labelled with the node's version and whether this build contains the SNP simulator (a development build)",
            build,
        );
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
        registry.register_collector(Box::new(snapshot::SnapshotCollector(snapshot.clone())));
        registry.register_collector(Box::new(process::ProcessCollector));
        Metrics {
            registry,
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

    /// One answered request (by its handler, or by the router before one: see
    /// [`crate::wire_status`]).
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

    /// The exposition in `format`, or none if it failed to encode.
    pub fn render(&self, format: Format) -> Option<String> {
        let mut out = String::new();
        let encoded = match format {
            Format::OpenMetrics => {
                prometheus_client::encoding::text::encode(&mut out, &self.registry)
            }
            Format::Text004 => {
                prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            }
        };
        encoded.ok().map(|()| out)
    }
}
