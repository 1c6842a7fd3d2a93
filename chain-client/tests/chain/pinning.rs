//! Reads are pinned to a block deep enough, and a stale or unreachable chain gives no decision.

use crate::{connect, eventually};
use alloy::eips::BlockNumberOrTag;
use alloy::providers::ext::AnvilApi;
use alloy::providers::Provider;
use snpkms_chain_client::*;
use snpkms_testkit::*;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn a_change_is_invisible_until_deep_enough() {
    let f = deploy_fixture().await;
    let mut cfg = f.config();
    cfg.read_at = ReadAt::Confirmations(3);
    f.chain.mine(3).await;
    let c = connect(cfg).await;
    let info = f.app_boot_info();
    let d = c.is_app_allowed(&info).await.unwrap();
    assert!(d.allowed);
    assert_eq!(d.block.number, f.chain.head().await - 3);

    let removal = f
        .app_owner
        .remove_compose_hash(f.app, COMPOSE_HASH.into())
        .await
        .unwrap();
    for _ in 0..3 {
        // The removal is 0, 1, 2 blocks deep: still invisible, cached or not.
        c.refresh().await.unwrap();
        let d = c.is_app_allowed(&info).await.unwrap();
        assert!(
            d.allowed,
            "visible too early at head {}",
            f.chain.head().await
        );
        assert!(d.block.number < removal.block);
        f.chain.mine(1).await;
    }
    // Now 3 deep.
    let pinned = c.refresh().await.unwrap();
    assert_eq!(pinned.number, removal.block);
    let d = c.is_app_allowed(&info).await.unwrap();
    assert_eq!(
        (d.allowed, d.reason.as_str()),
        (false, "compose hash not allowed")
    );
    assert_eq!(d.block, pinned);
}

/// A reorg shallower than the confirmations never shows what it took back: a compose-hash
/// removal mined and then reorged away before it was deep enough never refuses anyone. (A reorg
/// deeper than the confirmations, replacing the pinned block, is `cache::a_reorg_drops_the_cache`.)
#[tokio::test]
async fn a_reorg_shallower_than_the_confirmations_is_never_seen() {
    let f = deploy_fixture().await;
    let mut cfg = f.config();
    cfg.read_at = ReadAt::Confirmations(3);
    f.chain.mine(3).await;
    let c = connect(cfg.clone()).await;
    let info = f.app_boot_info();
    let pinned_before = c.is_app_allowed(&info).await.unwrap().block;

    let removal = f
        .app_owner
        .remove_compose_hash(f.app, COMPOSE_HASH.into())
        .await
        .unwrap();
    f.chain.mine(1).await;
    c.refresh().await.unwrap();
    assert!(c.is_app_allowed(&info).await.unwrap().allowed);

    // Take back the removal's block and the one after it (2 < 3 confirmations), then grow the
    // chain past the depth where the removal would have become visible.
    f.chain.provider().anvil_rollback(Some(2)).await.unwrap();
    f.chain.mine(5).await;
    let pinned = c.refresh().await.unwrap();
    assert!(
        pinned.number >= removal.block,
        "the pin moved past the old removal height"
    );
    let d = c.is_app_allowed(&info).await.unwrap();
    assert!(d.allowed, "a reorged-away removal refused at {:?}", d.block);
    // A client with no cache reads the new pinned block itself, and agrees.
    let fresh = connect(cfg).await;
    let d = fresh.is_app_allowed(&info).await.unwrap();
    assert!(!d.cached);
    assert!(d.allowed, "a reorged-away removal refused at {:?}", d.block);
    assert_eq!(d.block, pinned);
    // The removal is not on the chain any more.
    let receipt = f
        .chain
        .provider()
        .get_transaction_receipt(removal.tx_hash)
        .await
        .unwrap();
    assert!(receipt.is_none(), "the removal survived the reorg");
    assert!(pinned.number > pinned_before.number);
}

#[tokio::test]
async fn safe_and_finalized_tags_follow_the_node() {
    let f = deploy_fixture().await;
    f.chain.mine(100).await;
    for (read_at, tag) in [
        (ReadAt::Safe, BlockNumberOrTag::Safe),
        (ReadAt::Finalized, BlockNumberOrTag::Finalized),
    ] {
        let mut cfg = f.config();
        cfg.read_at = read_at;
        let c = connect(cfg).await;
        let node = f
            .chain
            .provider()
            .get_block_by_number(tag)
            .await
            .unwrap()
            .unwrap();
        let d = c.is_app_allowed(&f.app_boot_info()).await.unwrap();
        assert!(d.allowed);
        assert_eq!(d.block.number, node.header.inner.number, "{read_at}");
        assert_eq!(d.block.hash, node.header.hash);
        assert!(
            d.block.number < f.chain.head().await,
            "{read_at} is behind latest"
        );
    }
}

#[tokio::test]
async fn an_old_chain_is_stale() {
    // Genesis two hours ago: anvil's clock runs from there.
    let start = now() - 7200;
    let chain = spawn_anvil_with(&["--timestamp", &start.to_string()]);
    let f = deploy_fixture_on(chain).await;
    let c = connect(f.config()).await; // max_staleness: 1 h
    match c.is_app_allowed(&f.app_boot_info()).await {
        Err(ChainError::Stale {
            age_secs, max_secs, ..
        }) => {
            assert!(age_secs >= 7200 - 60, "age {age_secs}");
            assert_eq!(max_secs, 3600);
        }
        other => panic!("expected Stale, got {other:?}"),
    }
    assert!(matches!(c.kms_info().await, Err(ChainError::Stale { .. })));
    // A fresh block makes it live again.
    f.chain.mine_at(now()).await;
    c.refresh().await.unwrap();
    assert!(c.is_app_allowed(&f.app_boot_info()).await.unwrap().allowed);
}

#[tokio::test]
async fn a_stalled_finality_is_stale_even_with_a_fresh_head() {
    // Everything up to the finalized block three hours ago, then a fresh head: anvil's
    // `finalized` is 64 blocks below `latest`, and its `safe` 32.
    let start = now() - 3 * 3600;
    let chain = spawn_anvil_with(&["--timestamp", &start.to_string()]);
    let f = deploy_fixture_on(chain).await;
    f.chain.mine(70).await;
    f.chain.mine_at(now()).await;
    for read_at in [ReadAt::Finalized, ReadAt::Safe] {
        let mut cfg = f.config();
        cfg.read_at = read_at;
        let c = connect(cfg).await;
        match c.is_app_allowed(&f.app_boot_info()).await {
            Err(ChainError::Stale {
                block, age_secs, ..
            }) => {
                assert!(
                    block < f.chain.head().await - 30,
                    "{read_at}: block {block}"
                );
                assert!(age_secs >= 3 * 3600 - 120, "{read_at}: age {age_secs}");
            }
            other => panic!("{read_at}: an old view was served: {other:?}"),
        }
        assert!(matches!(c.kms_info().await, Err(ChainError::Stale { .. })));
    }
    // Reading at the fresh head is not stale.
    let c = connect(f.config()).await;
    assert!(c.is_app_allowed(&f.app_boot_info()).await.unwrap().allowed);
}

#[tokio::test]
async fn a_chain_that_stops_mining_goes_stale_and_the_cache_is_not_served() {
    let f = deploy_fixture().await;
    f.chain.set_automine(false).await;
    f.chain.mine_at(now()).await;
    let mut cfg = f.config();
    cfg.max_staleness = Duration::from_secs(1);
    let c = connect(cfg).await;
    let info = f.app_boot_info();
    let d = c.is_app_allowed(&info).await.unwrap();
    assert!(d.allowed && !d.cached);
    assert!(c.is_app_allowed(&info).await.unwrap().cached);
    // No block for more than a second: a refusal by staleness, even though a decision is cached.
    let err = eventually(Duration::from_secs(5), "staleness", || {
        let c = c.clone();
        let info = info.clone();
        async move { c.is_app_allowed(&info).await.err() }
    })
    .await;
    assert!(
        matches!(err, ChainError::Stale { max_secs: 1, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn unreachable_rpc_is_a_typed_error() {
    // A port nothing listens on: bind, read the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let mut cfg = ChainConfig::new(
        endpoint(&format!("{url}/v3/SECRET-API-KEY")),
        Address::repeat_byte(1),
    );
    cfg.retries = 1;
    match ChainClient::connect(cfg).await {
        Err(e @ ChainError::Unreachable { .. }) => {
            let ChainError::Unreachable { url: u, reason } = &e else {
                unreachable!()
            };
            assert_eq!(*u, format!("{url}/…"));
            assert!(!reason.is_empty());
            // The API key in the URL's path is in no message.
            assert!(!format!("{e} {e:?}").contains("SECRET-API-KEY"), "{e}");
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }

    // A node that goes away after connecting: no decision, not even a cached one.
    let f = deploy_fixture().await;
    let c = connect(f.config()).await;
    let info = f.app_boot_info();
    assert!(c.is_app_allowed(&info).await.unwrap().allowed);
    assert!(c.is_app_allowed(&info).await.unwrap().cached);
    let Fixture { chain, .. } = f;
    let url = chain.url.clone();
    drop(chain);
    assert!(matches!(
        c.refresh().await,
        Err(ChainError::Unreachable { .. })
    ));
    match c.is_app_allowed(&info).await {
        Err(ChainError::Unreachable { url: u, .. }) => assert_eq!(u, url),
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_hung_rpc_times_out_after_bounded_retries() {
    let f = deploy_fixture().await;
    let proxy = RpcProxy::start(&f.chain.url).await;
    let mut cfg = f.config();
    cfg.endpoints = vec![endpoint(&proxy.url)];
    cfg.request_timeout = Duration::from_millis(200);
    cfg.retries = 2;
    cfg.poll_interval = Duration::from_secs(60); // keep the follower out of the count
    let c = connect(cfg).await;
    proxy.set_hang(true);
    let before = proxy.count("eth_getBlockByNumber");
    match c.refresh().await {
        Err(ChainError::Timeout {
            method,
            timeout_ms,
            attempts,
            ..
        }) => {
            assert_eq!(method, "eth_getBlockByNumber");
            assert_eq!(timeout_ms, 200);
            assert_eq!(attempts, 3);
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert_eq!(
        proxy.count("eth_getBlockByNumber") - before,
        3,
        "1 try + 2 retries"
    );
    assert!(c.is_app_allowed(&f.app_boot_info()).await.is_err());
}

#[tokio::test]
async fn a_lagging_answer_never_moves_the_pin_back() {
    let f = deploy_fixture().await;
    let proxy = RpcProxy::start(&f.chain.url).await;
    let mut cfg = f.config();
    cfg.endpoints = vec![endpoint(&proxy.url)];
    cfg.poll_interval = Duration::from_secs(60);
    let c = connect(cfg).await;
    let info = f.app_boot_info();
    let d = c.is_app_allowed(&info).await.unwrap();
    // From now on the node answers `latest` with the block before: a lagging backend.
    let older = format!("{:#x}", d.block.number - 1);
    proxy.set_request_rewrite(move |req| {
        if req["method"] == "eth_getBlockByNumber" && req["params"][0] == "latest" {
            req["params"][0] = older.clone().into();
        }
    });
    assert_eq!(c.refresh().await.unwrap(), d.block);
    let again = c.is_app_allowed(&info).await.unwrap();
    assert!(again.cached);
    assert_eq!(again.block, d.block);
}
