//! The node's background work: following its own standing on the registry, and forgetting
//! expired challenges.

use crate::adapters::Node;
use crate::service::KmsService;
use snpkms_api::pb::kms_server::KmsServer;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Checks the node's standing at every new pinned block (the registry names this node's root
/// and allows this node), with a backstop timer while the chain gives no new blocks; reports it
/// to the health service and logs changes of verdict only.
pub fn watch_standing(
    node: Arc<Node>,
    health: tonic_health::server::HealthReporter,
    initial: Result<(), String>,
    backstop: Duration,
) -> JoinHandle<()> {
    let mut pinned = node.authorizer().0.watch_pinned();
    tokio::spawn(async move {
        let mut last: Option<Result<(), String>> = None;
        let mut serving = initial;
        loop {
            if last.as_ref() != Some(&serving) {
                match (&serving, &last) {
                    (Ok(()), _) => {
                        tracing::info!(
                            "serving: the registry names this node's root and allows this node"
                        );
                        health.set_serving::<KmsServer<KmsService>>().await;
                    }
                    (Err(why), Some(Ok(()))) => {
                        tracing::error!("stopped serving: {why}");
                        health.set_not_serving::<KmsServer<KmsService>>().await;
                    }
                    (Err(why), _) => {
                        tracing::info!("not serving: {why}");
                        health.set_not_serving::<KmsServer<KmsService>>().await;
                    }
                }
                last = Some(serving.clone());
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
    })
}

/// Turns challenge generations over when due (checked every 30 s, and at every use), dropping
/// the used set of the generation before.
pub fn sweep_nonces(node: Arc<Node>) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(30)).await;
            node.sweep_nonces();
        }
    })
}
