//! Integration tests against real anvil nodes with the registry deployed from the committed
//! artifacts. One test binary (modules below) so alloy is linked once.

mod cache;
mod pinning;
mod quorum;
mod reads;
mod tls;

use snpkms_chain_client::{ChainClient, ChainConfig};
use std::future::Future;
use std::time::{Duration, Instant};

pub async fn connect(cfg: ChainConfig) -> ChainClient {
    ChainClient::connect(cfg).await.expect("connect")
}

/// Polls `check` every 20 ms until it returns `Some`, failing the test after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
