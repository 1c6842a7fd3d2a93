//! The core's ports, implemented for a running node: the chain client as the registry, the
//! key-release log file, the system clock, and the Prometheus metrics.

use crate::audit_log::{AuditLog, Coming};
use crate::metrics::Metrics;
use snpkms_chain_client::{ChainClient, ChainError};
use snpkms_core::{
    Authorizer, AuthorizerError, BlockRef, Clock, Decision, KmsInfo, LogError, NewRecord, Observer,
    Ports, ReleaseLog, Reservation, ThresholdGroup, ThresholdMember,
};
use snpkms_verifier::{BootInfo, VerifyError};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The ports of a production node.
pub struct Production;

impl Ports for Production {
    type Authorizer = Registry;
    type Log = AuditLog;
    type Clock = SystemClock;
    type Certificates = crate::kds::KdsSource;
    type Observer = NodeMetrics;
}

/// The node core as a running node has it.
pub type Node = snpkms_core::Node<Production>;

/// The on-chain registry, through the chain client.
pub struct Registry(pub ChainClient);

fn block(b: snpkms_chain_client::BlockRef) -> BlockRef {
    BlockRef {
        number: b.number,
        hash: b.hash.0,
    }
}

fn decision(d: snpkms_chain_client::Decision) -> Decision {
    Decision {
        allowed: d.allowed,
        reason: d.reason,
        block: block(d.block),
    }
}

/// Every label [`authorizer_error`] gives (the metrics show each from the start).
pub const REGISTRY_ERROR_KINDS: [&str; 8] = [
    "unreachable",
    "tls",
    "timeout",
    "stale",
    "no_quorum",
    "disagreement",
    "contract",
    "other",
];

/// A chain error as the core sees it, with a label for metrics.
pub fn authorizer_error(e: ChainError) -> AuthorizerError {
    let kind = match &e {
        ChainError::Unreachable { .. } => "unreachable",
        ChainError::Tls { .. } => "tls",
        ChainError::Timeout { .. } => "timeout",
        ChainError::Stale { .. } => "stale",
        ChainError::NoQuorum { .. } => "no_quorum",
        ChainError::Disagreement { .. } | ChainError::BlockDisagreement { .. } => "disagreement",
        ChainError::Contract(_) => "contract",
        _ => "other",
    };
    AuthorizerError {
        kind,
        internal: matches!(e, ChainError::Contract(_)),
        source: Box::new(e),
    }
}

impl Authorizer for Registry {
    async fn is_app_allowed(&self, info: &BootInfo) -> Result<Decision, AuthorizerError> {
        self.0
            .is_app_allowed(info)
            .await
            .map(decision)
            .map_err(authorizer_error)
    }

    async fn is_kms_allowed(
        &self,
        info: &BootInfo,
        config_digest: [u8; 32],
    ) -> Result<Decision, AuthorizerError> {
        self.0
            .is_kms_allowed(info, config_digest)
            .await
            .map(decision)
            .map_err(authorizer_error)
    }

    async fn kms_info(&self) -> Result<KmsInfo, AuthorizerError> {
        let info = self.0.kms_info().await.map_err(authorizer_error)?;
        Ok(KmsInfo {
            root_signing_address: info.root_signing_address.0 .0,
            key_epoch: info.key_epoch,
            block: block(info.block),
        })
    }

    async fn threshold_group(&self) -> Result<ThresholdGroup, AuthorizerError> {
        let group = self.0.threshold_group().await.map_err(authorizer_error)?;
        Ok(ThresholdGroup {
            share_epoch: group.share_epoch,
            threshold: group.threshold,
            group_key: group.group_key,
            nodes: group
                .nodes
                .into_iter()
                .map(|n| ThresholdMember {
                    index: n.index,
                    verifying_share: n.verifying_share,
                    signer: n.signer.0 .0,
                })
                .collect(),
            block: block(group.block),
        })
    }

    fn pinned_block(&self) -> Option<BlockRef> {
        self.0.pinned_block().map(block)
    }
}

impl ReleaseLog for AuditLog {
    type Reservation<'a> = Coming<'a>;

    fn reserve(&self) -> Coming<'_> {
        self.coming()
    }

    async fn append(&self, record: NewRecord) -> Result<u64, LogError> {
        AuditLog::append(self, record)
            .await
            .map_err(|e| LogError(Box::new(e)))
    }

    fn len(&self) -> u64 {
        AuditLog::len(self)
    }
}

impl Reservation for Coming<'_> {
    fn append(
        self,
        record: NewRecord,
    ) -> impl std::future::Future<Output = Result<u64, LogError>> + Send + 'static {
        let durable = Coming::append(self, record);
        async move { durable.await.map_err(|e| LogError(Box::new(e))) }
    }
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}

/// The node's metrics, as the core reports to them.
#[derive(Clone)]
pub struct NodeMetrics(pub Arc<Metrics>);

impl Observer for NodeMetrics {
    fn verified(&self, elapsed: Duration, failure: Option<&VerifyError>) {
        self.0.observe_verify(elapsed, failure);
    }

    fn authorized(&self, elapsed: Duration, failure: Option<&AuthorizerError>) {
        self.0
            .observe_registry_read(elapsed, failure.map(|e| e.kind));
    }

    fn released(&self, app_id: &[u8; 20]) {
        self.0.key_released(app_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// REGISTRY_ERROR_KINDS lists exactly the labels `authorizer_error` gives.
    #[test]
    fn registry_error_kinds_are_the_labels_given() {
        let s = String::new;
        let errors = [
            ChainError::Unreachable {
                url: s(),
                reason: s(),
            },
            ChainError::Tls {
                url: s(),
                reason: s(),
            },
            ChainError::Timeout {
                url: s(),
                method: "eth_call",
                timeout_ms: 1,
                attempts: 1,
            },
            ChainError::Stale {
                block: 1,
                read_at: s(),
                age_secs: 2,
                max_secs: 1,
            },
            ChainError::NoQuorum {
                needed: 2,
                answered: 1,
                errors: vec![],
            },
            ChainError::BlockDisagreement {
                number: 1,
                detail: s(),
            },
            ChainError::Contract(s()),
            ChainError::Rpc {
                url: s(),
                method: "eth_call",
                message: s(),
            },
        ];
        let kinds: Vec<&str> = errors
            .into_iter()
            .map(|e| authorizer_error(e).kind)
            .collect();
        assert_eq!(kinds, REGISTRY_ERROR_KINDS);
    }
}
