//! The decision cache: free when warm, dropped by the events that can change a decision.

use crate::{connect, eventually};
use alloy::primitives::B256;
use alloy::providers::ext::AnvilApi;
use snpkms_chain_client::*;
use snpkms_testkit::*;
use std::time::Duration;

#[tokio::test]
async fn a_warm_decision_costs_no_rpc_call() {
    let f = deploy_fixture().await;
    let proxy = RpcProxy::start(&f.chain.url).await;
    let mut cfg = f.config();
    cfg.endpoints = vec![endpoint(&proxy.url)];
    let c = connect(cfg).await;
    let info = f.app_boot_info();

    let cold = c.is_app_allowed(&info).await.unwrap();
    assert!(!cold.cached);
    assert_eq!(
        proxy.count("eth_call"),
        1,
        "a cold decision is one eth_call"
    );
    let requests = proxy.total();
    let warm = c.is_app_allowed(&info).await.unwrap();
    assert!(warm.cached);
    assert_eq!((warm.allowed, warm.block), (cold.allowed, cold.block));
    assert_eq!(proxy.count("eth_call"), 1, "a warm decision is no eth_call");
    // Nothing else was asked for it either (the follower only polls every 50 ms and may have
    // run in between; it never calls eth_call).
    assert!(proxy.total() - requests <= 3);

    // App and KMS decisions on the same BootInfo are different entries.
    let kms = c.is_kms_allowed(&info, KMS_CONFIG).await.unwrap();
    assert!(!kms.cached);
    assert_eq!(proxy.count("eth_call"), 2);
    assert_eq!(
        c.cache_stats(),
        CacheStats {
            hits: 1,
            misses: 2,
            invalidations: 0
        }
    );
}

#[tokio::test]
async fn a_removal_event_invalidates_the_cache_by_itself() {
    let f = deploy_fixture().await;
    let c = connect(f.config()).await;
    let info = f.app_boot_info();
    assert!(c.is_app_allowed(&info).await.unwrap().allowed);
    assert!(c.is_app_allowed(&info).await.unwrap().cached);

    let removal = f
        .app_owner
        .remove_device(f.app, snpkms_governance::device_id(&CHIP_ID))
        .await
        .unwrap();
    // No refresh(): the follower alone must notice within a few polls.
    let d = eventually(Duration::from_secs(5), "the removal to take effect", || {
        let c = c.clone();
        let info = info.clone();
        async move {
            let d = c.is_app_allowed(&info).await.unwrap();
            (!d.allowed).then_some(d)
        }
    })
    .await;
    assert_eq!(d.reason, "device not allowed");
    assert!(!d.cached);
    assert!(d.block.number >= removal.block);
    assert_eq!(c.cache_stats().invalidations, 1);
}

#[tokio::test]
async fn closing_the_chip_list_invalidates_cached_kms_decisions() {
    let f = deploy_fixture().await;
    let c = connect(f.config()).await;
    let info = f.kms_boot_info();
    assert!(c.is_kms_allowed(&info, KMS_CONFIG).await.unwrap().allowed);
    assert!(c.is_kms_allowed(&info, KMS_CONFIG).await.unwrap().cached);
    let closed = f.governor.set_any_kms_chip_allowed(false).await.unwrap();
    let d = eventually(
        Duration::from_secs(5),
        "closing the chip list to take effect",
        || {
            let c = c.clone();
            let info = info.clone();
            async move {
                let d = c.is_kms_allowed(&info, KMS_CONFIG).await.unwrap();
                (!d.allowed).then_some(d)
            }
        },
    )
    .await;
    assert_eq!(d.reason, "kms chip not allowed");
    assert!(d.block.number >= closed.block);
}

#[tokio::test]
async fn only_the_affected_entries_are_dropped() {
    let f = deploy_fixture().await;
    let c = connect(f.config()).await;
    let info = f.app_boot_info();
    let kms = f.kms_boot_info();
    c.is_app_allowed(&info).await.unwrap();
    c.is_kms_allowed(&kms, KMS_CONFIG).await.unwrap();

    // Another app's change and a KMS info change leave both cached.
    let (other, _) = f.stranger.register_app(B256::repeat_byte(9)).await.unwrap();
    f.stranger
        .add_compose_hash(other, B256::repeat_byte(8))
        .await
        .unwrap();
    f.governor.bump_key_epoch().await.unwrap();
    c.refresh().await.unwrap();
    assert!(c.is_app_allowed(&info).await.unwrap().cached);
    assert!(c.is_kms_allowed(&kms, KMS_CONFIG).await.unwrap().cached);
    assert_eq!(c.cache_stats().invalidations, 0);

    // This app's change drops its entry only.
    f.app_owner
        .set_allow_any_device(f.app, false)
        .await
        .unwrap();
    c.refresh().await.unwrap();
    assert!(!c.is_app_allowed(&info).await.unwrap().cached);
    assert!(c.is_kms_allowed(&kms, KMS_CONFIG).await.unwrap().cached);
    assert_eq!(c.cache_stats().invalidations, 1);

    // A registry policy change drops everything.
    f.governor.add_os_image(&[0x66; 48]).await.unwrap();
    c.refresh().await.unwrap();
    assert!(!c.is_app_allowed(&info).await.unwrap().cached);
    assert!(!c.is_kms_allowed(&kms, KMS_CONFIG).await.unwrap().cached);
    assert_eq!(c.cache_stats().invalidations, 3);
}

#[tokio::test]
async fn the_ttl_caps_a_cached_decision() {
    let f = deploy_fixture().await;
    let mut cfg = f.config();
    cfg.cache_ttl = Duration::from_millis(150);
    let c = connect(cfg).await;
    let info = f.app_boot_info();
    c.is_app_allowed(&info).await.unwrap();
    assert!(c.is_app_allowed(&info).await.unwrap().cached);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!c.is_app_allowed(&info).await.unwrap().cached);
}

#[tokio::test]
async fn a_reorg_drops_the_cache() {
    let f = deploy_fixture().await;
    // Empty blocks on top, so the reorg below replaces only them.
    f.chain.mine(2).await;
    let c = connect(f.config()).await;
    let info = f.app_boot_info();
    let before = c.is_app_allowed(&info).await.unwrap();
    assert!(c.is_app_allowed(&info).await.unwrap().cached);
    // Replace the pinned block and the one before it with other blocks at the same heights.
    f.chain.provider().anvil_rollback(Some(2)).await.unwrap();
    f.chain.mine(2).await;
    let after = c.refresh().await.unwrap();
    assert_eq!(after.number, before.block.number);
    assert_ne!(after.hash, before.block.hash);
    let d = c.is_app_allowed(&info).await.unwrap();
    assert!(!d.cached, "an entry read on a replaced block is not served");
    assert!(d.allowed);
    assert_eq!(d.block, after);
    assert!(c.cache_stats().invalidations >= 1);
}

#[tokio::test]
async fn a_shortened_chain_moves_the_pin_back_and_drops_the_cache() {
    let f = deploy_fixture().await;
    f.chain.mine(2).await;
    let c = connect(f.config()).await;
    let info = f.app_boot_info();
    let before = c.is_app_allowed(&info).await.unwrap();
    assert!(c.is_app_allowed(&info).await.unwrap().cached);
    // The pinned block is gone and nothing replaced it yet.
    f.chain.provider().anvil_rollback(Some(1)).await.unwrap();
    let after = c.refresh().await.unwrap();
    assert_eq!(after.number, before.block.number - 1);
    let d = c.is_app_allowed(&info).await.unwrap();
    assert!(!d.cached);
    assert_eq!(d.block, after);
    assert_eq!(c.cache_stats().invalidations, 1);
}

#[tokio::test]
async fn the_follower_stops_with_the_last_clone() {
    let f = deploy_fixture().await;
    let proxy = RpcProxy::start(&f.chain.url).await;
    let mut cfg = f.config();
    cfg.endpoints = vec![endpoint(&proxy.url)];
    cfg.poll_interval = Duration::from_millis(20);
    let c = connect(cfg).await;
    let other = c.clone();
    drop(c);
    let polls = proxy.count("eth_getBlockByNumber");
    eventually(
        Duration::from_secs(5),
        "the follower to keep polling",
        || {
            let proxy = proxy.clone();
            async move { (proxy.count("eth_getBlockByNumber") > polls + 2).then_some(()) }
        },
    )
    .await;
    drop(other);
    tokio::time::sleep(Duration::from_millis(60)).await;
    let stopped = proxy.count("eth_getBlockByNumber");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        proxy.count("eth_getBlockByNumber"),
        stopped,
        "no polls after the last drop"
    );
}
