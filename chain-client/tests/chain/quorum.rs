//! k-of-n RPC quorum: agreement is required on the block hash and on the answer.

use crate::connect;
use snpkms_chain_client::*;
use snpkms_testkit::*;
use std::time::Duration;

#[tokio::test]
async fn two_endpoints_that_agree_make_a_quorum() {
    let f = deploy_fixture().await;
    let a = RpcProxy::start(&f.chain.url).await;
    let b = RpcProxy::start(&f.chain.url).await;
    let mut cfg = f.config();
    cfg.endpoints = vec![endpoint(&a.url), endpoint(&b.url)];
    cfg.quorum = 2;
    let c = connect(cfg).await;
    let d = c.is_app_allowed(&f.app_boot_info()).await.unwrap();
    assert!(d.allowed);
    assert_eq!(a.count("eth_call"), 1, "one eth_call per endpoint");
    assert_eq!(b.count("eth_call"), 1);
}

#[tokio::test]
async fn two_anvils_with_different_state_give_an_error() {
    // Same deployer and nonces, so the same registry address on both; different blocks.
    let one = deploy_fixture().await;
    let two = deploy_fixture().await;
    assert_eq!(one.deployment.registry, two.deployment.registry);
    two.app_owner
        .remove_compose_hash(two.app, COMPOSE_HASH.into())
        .await
        .unwrap();
    // Same height, different blocks (and a different state).
    one.chain.mine(1).await;
    assert_eq!(one.chain.head().await, two.chain.head().await);
    for quorum in [1, 2] {
        let mut cfg = one.config();
        cfg.endpoints = vec![endpoint(&one.chain.url), endpoint(&two.chain.url)];
        cfg.quorum = quorum;
        match ChainClient::connect(cfg).await {
            Err(ChainError::BlockDisagreement { detail, .. }) => {
                assert!(detail.contains(&one.chain.url) && detail.contains(&two.chain.url));
            }
            other => panic!("k={quorum}: expected BlockDisagreement, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn an_endpoint_that_lies_about_the_answer_gives_an_error_not_a_decision() {
    let f = deploy_fixture().await;
    let honest = RpcProxy::start(&f.chain.url).await;
    let liar = RpcProxy::start(&f.chain.url).await;
    // Flip the `allowed` word of every eth_call answer.
    liar.set_tamper(|req, resp| {
        if req["method"] == "eth_call" {
            if let Some(s) = resp["result"].as_str() {
                let mut bytes = hex::decode(&s[2..]).unwrap();
                if bytes.len() >= 32 {
                    bytes[31] ^= 1;
                }
                resp["result"] = format!("0x{}", hex::encode(bytes)).into();
            }
        }
    });
    let mut refused = f.app_boot_info();
    refused.compose_hash[0] ^= 1;
    for quorum in [1, 2] {
        let mut cfg = f.config();
        cfg.endpoints = vec![endpoint(&honest.url), endpoint(&liar.url)];
        cfg.quorum = quorum;
        let c = connect(cfg).await;
        for info in [f.app_boot_info(), refused.clone()] {
            match c.is_app_allowed(&info).await {
                Err(ChainError::Disagreement { block, detail }) => {
                    assert_eq!(block.number, f.chain.head().await);
                    assert!(detail.contains(&liar.url), "{detail}");
                }
                other => panic!("k={quorum}: expected Disagreement, got {other:?}"),
            }
        }
        assert_eq!(c.cache_stats().hits, 0, "an error is never cached");
    }
}

#[tokio::test]
async fn too_few_answers_is_no_quorum() {
    let f = deploy_fixture().await;
    let a = RpcProxy::start(&f.chain.url).await;
    let b = RpcProxy::start(&f.chain.url).await;
    let mut cfg = f.config();
    cfg.endpoints = vec![endpoint(&a.url), endpoint(&b.url)];
    cfg.request_timeout = Duration::from_millis(200);
    cfg.poll_interval = Duration::from_secs(60);

    // k = 1 of 2: one endpoint down still decides.
    let mut one_of_two = cfg.clone();
    one_of_two.quorum = 1;
    let c1 = connect(one_of_two).await;
    cfg.quorum = 2;
    let c2 = connect(cfg).await;
    b.set_hang(true);
    let d = c1.is_app_allowed(&f.app_boot_info()).await.unwrap();
    assert!(d.allowed);
    match c2.is_app_allowed(&f.app_boot_info()).await {
        Err(ChainError::NoQuorum {
            needed,
            answered,
            errors,
        }) => {
            assert_eq!((needed, answered), (2, 1));
            assert_eq!(errors.len(), 1);
            assert!(errors[0].contains(&b.url), "{errors:?}");
        }
        other => panic!("expected NoQuorum, got {other:?}"),
    }
    // And at connect time.
    let mut cfg = f.config();
    cfg.endpoints = vec![endpoint(&a.url), endpoint(&b.url)];
    cfg.quorum = 2;
    cfg.request_timeout = Duration::from_millis(200);
    assert!(matches!(
        ChainClient::connect(cfg).await,
        Err(ChainError::NoQuorum {
            needed: 2,
            answered: 1,
            ..
        })
    ));
}

#[tokio::test]
async fn endpoints_on_another_chain_are_refused() {
    let f = deploy_fixture().await;
    let other = spawn_anvil_with(&["--chain-id", "4242"]);
    let mut cfg = f.config();
    cfg.endpoints = vec![endpoint(&f.chain.url), endpoint(&other.url)];
    assert!(matches!(
        ChainClient::connect(cfg).await,
        Err(ChainError::ChainIdMismatch { .. })
    ));
    let mut cfg = f.config();
    cfg.chain_id = Some(1);
    assert!(matches!(
        ChainClient::connect(cfg).await,
        Err(ChainError::ChainIdMismatch { .. })
    ));
    let mut cfg = f.config();
    cfg.registry = Address::repeat_byte(0x42);
    assert!(matches!(
        ChainClient::connect(cfg).await,
        Err(ChainError::NoContract { .. })
    ));
}

#[tokio::test]
async fn one_endpoint_cannot_choose_the_pinned_blocks_timestamp() {
    // A chain that stopped two hours ago. One endpoint of three answers the right block hash
    // with a fresh timestamp, which would hide the staleness if its word alone set it.
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 7200;
    let f = deploy_fixture_on(spawn_anvil_with(&["--timestamp", &start.to_string()])).await;
    let honest_a = RpcProxy::start(&f.chain.url).await;
    let honest_b = RpcProxy::start(&f.chain.url).await;
    let liar = RpcProxy::start(&f.chain.url).await;
    let fresh = format!(
        "0x{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    );
    liar.set_tamper(move |req, resp| {
        if req["method"] == "eth_getBlockByNumber" && resp["result"].is_object() {
            resp["result"]["timestamp"] = fresh.clone().into();
        }
    });
    let mut cfg = f.config();
    // The liar last: before the vote covered the whole header summary, the last answer set it.
    cfg.endpoints = vec![honest_a.endpoint(), honest_b.endpoint(), liar.endpoint()];
    cfg.quorum = 2;
    let c = connect(cfg).await;
    match c.is_app_allowed(&f.app_boot_info()).await {
        Err(ChainError::Stale { age_secs, .. }) => assert!(age_secs >= 7000, "{age_secs}"),
        other => panic!("the liar's timestamp was used: {other:?}"),
    }
    // With k = 1 its different summary is a disagreement, never a fresh view.
    let mut cfg = f.config();
    cfg.endpoints = vec![honest_a.endpoint(), liar.endpoint()];
    cfg.quorum = 1;
    assert!(matches!(
        ChainClient::connect(cfg).await,
        Err(ChainError::BlockDisagreement { .. })
    ));
}
