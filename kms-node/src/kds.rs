//! VCEKs for evidence whose host supplied none: the KDS client ([`snpkms_kds`]) as the core's
//! [`CertificateSource`], with the node's store in `<data_dir>/kds/` and its metrics.

use crate::config::{ConfigError, NodeConfig};
use crate::metrics::Metrics;
use snpkms_core::{CertSourceError, CertificateSource, VcekCheck, VcekRefusal};
use snpkms_kds::{CertStore, Document, FetchError, KdsClient, KdsObserver, KdsSettings, Rejection};
use snpkms_verifier::{VcekId, VerifiedVcek, VerifyError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The store below a data directory: what the node fetched, and what `snpkms certs import`
/// put there for a node with no route to AMD.
pub fn store_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("kds")
}

/// The KDS client a node configured with `cfg` uses.
pub fn client(cfg: &NodeConfig, observer: Arc<dyn KdsObserver>) -> Result<KdsClient, ConfigError> {
    let endpoints = cfg
        .kds
        .urls
        .iter()
        .map(|u| crate::security::pinned_endpoint(u, "kds.urls").map(|(e, _, _)| e))
        .collect::<Result<Vec<_>, _>>()?;
    let mut settings = KdsSettings::new(endpoints);
    settings.timeout = Duration::from_secs(cfg.kds.timeout_secs.max(1));
    settings.attempts = cfg.kds.attempts.max(1);
    settings.max_retry_after = Duration::from_secs(cfg.kds.max_retry_after_secs);
    KdsClient::new(
        settings,
        Some(CertStore::new(store_dir(&cfg.data_dir))),
        observer,
    )
    .map_err(|e| ConfigError::Invalid {
        field: "kds.urls",
        message: e.to_string(),
    })
}

/// The node's certificate source.
pub struct KdsSource(pub Arc<KdsClient>);

impl CertificateSource for KdsSource {
    async fn vcek<'a>(
        &'a self,
        id: &'a VcekId,
        check: &'a VcekCheck<'a>,
    ) -> Result<VerifiedVcek, CertSourceError> {
        let doc = Document::vcek(id);
        let accept = |der: &[u8]| {
            check(der).map_err(|refusal| match refusal {
                VcekRefusal::Certificate(e) => Rejection::Document(e),
                VcekRefusal::Report(e) => Rejection::Caller(e),
            })
        };
        self.0
            .fetch(&doc, accept)
            .await
            .map_err(|e: FetchError<VerifyError>| {
                let message = e.to_string();
                match e {
                    FetchError::Unavailable { .. } => CertSourceError::Unavailable(message),
                    FetchError::Refused { error, .. } => {
                        CertSourceError::Refused { message, error }
                    }
                    FetchError::Unusable { error, .. } => CertSourceError::Report(error),
                }
            })
    }
}

/// The metrics as the KDS client's observer.
pub struct KdsMetrics(pub Arc<Metrics>);

impl KdsObserver for KdsMetrics {
    fn outcome(&self, outcome: snpkms_kds::FetchOutcome) {
        self.0.kds_outcome(outcome);
    }
}
