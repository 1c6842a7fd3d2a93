//! Owner and governance operations: receipts, and refusals with the decoded reason.

use alloy::primitives::{Address, B256};
use alloy::providers::Provider;
use snpkms_chain_client::*;
use snpkms_governance::*;
use snpkms_testkit::*;
use snpkms_verifier::{Product, TcbVersion};

fn reason(r: Result<TxOutcome, ChainError>) -> String {
    match r {
        Err(ChainError::Contract(reason)) => reason,
        other => panic!("expected a contract refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn operations_by_a_non_owner_fail_with_the_decoded_reason() {
    let f = deploy_fixture().await;
    let who = format!("OwnableUnauthorizedAccount({})", f.stranger.address());
    let head = f.chain.head().await;
    for r in [
        f.stranger.add_os_image(&[1; 48]).await,
        f.stranger.remove_kms_measurement(&KMS_MEASUREMENT).await,
        f.stranger
            .set_min_tcb(Product::Milan, TcbVersion::default())
            .await,
        f.stranger.bump_key_epoch().await,
        f.stranger.set_kms_info(Address::repeat_byte(1), b"k").await,
        f.stranger.add_kms_chip(&CHIP_ID).await,
        f.stranger
            .remove_compose_hash(f.app, COMPOSE_HASH.into())
            .await,
        f.stranger.add_device(f.app, B256::ZERO).await,
        f.stranger.set_allow_any_device(f.app, true).await,
        f.stranger.disable_app(f.app).await,
        // The registry owner does not own apps either.
        f.governor.disable_app(f.app).await,
    ] {
        let msg = reason(r);
        assert!(msg.contains("OwnableUnauthorizedAccount("), "{msg}");
        assert!(msg.contains("is not the owner"), "{msg}");
    }
    assert!(reason(f.stranger.add_os_image(&[1; 48]).await).contains(&who));
    assert_eq!(f.chain.head().await, head, "refused calls are not sent");
}

#[tokio::test]
async fn contract_errors_are_decoded() {
    let f = deploy_fixture().await;
    let msg = reason(f.governor.add_os_image(&[1; 47]).await);
    assert!(msg.contains("BadMeasurementLength(47)"), "{msg}");
    let msg = reason(f.governor.add_kms_chip(&[1; 63]).await);
    assert!(msg.contains("BadChipIdLength(63)"), "{msg}");
    let msg = reason(f.governor.add_os_image(&OS_IMAGE).await);
    assert!(msg.contains("AlreadyPresent()"), "{msg}");
    let msg = reason(f.governor.remove_os_image(&[2; 48]).await);
    assert!(msg.contains("NotPresent()"), "{msg}");
    let tcb = TcbVersion {
        fmc: 1,
        ..TcbVersion::default()
    };
    let msg = reason(f.governor.set_min_tcb(Product::Genoa, tcb).await);
    assert!(msg.contains("FmcNotSupported(1)"), "{msg}");
    let msg = reason(
        f.app_owner
            .add_compose_hash(f.app, COMPOSE_HASH.into())
            .await,
    );
    assert!(msg.contains("AlreadyPresent()"), "{msg}");
    match f.app_owner.register_app(B256::from(APP_SALT)).await {
        Err(ChainError::Contract(msg)) => assert!(msg.contains("AlreadyPresent()"), "{msg}"),
        other => panic!("{other:?}"),
    }
    assert!(msg.starts_with("addComposeHash: "), "names the call: {msg}");
}

#[tokio::test]
async fn an_operation_reports_its_receipt() {
    let f = deploy_fixture().await;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let governor = f.governor.clone().with_progress(move |p| {
        if let Progress::Sent { tx_hash, what } = p {
            log.lock().unwrap().push((*tx_hash, what.clone()));
        }
    });
    let out = governor.add_kms_measurement(&[0x31; 48]).await.unwrap();
    assert_eq!(out.block, f.chain.head().await);
    let receipt = f
        .chain
        .provider()
        .get_transaction_receipt(out.tx_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(receipt.gas_used, out.gas_used);
    assert_eq!(receipt.block_number, Some(out.block));
    assert!(out.gas_used > 21_000);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![(out.tx_hash, "addKmsMeasurement".to_string())]
    );
}

#[tokio::test]
async fn deploy_writes_a_deployment_with_a_separate_owner() {
    let chain = spawn_anvil();
    let deployer = chain.signer(4);
    let owner_key = chain.signer(5);
    let d = deploy_registry(&chain.url, deployer.clone(), owner_key.address())
        .await
        .unwrap();
    assert_eq!(d.chain_id, 31337);
    assert_eq!(
        (d.owner, d.deployer),
        (owner_key.address(), deployer.address())
    );
    assert_eq!(Deployment::from_json(&d.to_json()).unwrap(), d);
    for a in [d.registry, d.implementation, d.app_auth_implementation] {
        assert!(
            !chain.provider().get_code_at(a).await.unwrap().is_empty(),
            "{a} has code"
        );
    }
    let status = Inspector::new(&chain.url, d.registry, d.block)
        .unwrap()
        .registry()
        .await
        .unwrap();
    assert_eq!(status.owner, owner_key.address());
    assert_eq!(status.implementation, d.implementation);
    assert_eq!(status.app_auth_implementation, d.app_auth_implementation);

    // The deployer is not the owner; the owner is.
    let by_deployer = Owner::new(&chain.url, deployer, d.registry).unwrap();
    assert!(reason(by_deployer.add_os_image(&[1; 48]).await).contains("OwnableUnauthorizedAccount"));
    let by_owner = Owner::new(&chain.url, owner_key, d.registry).unwrap();
    by_owner.add_os_image(&[1; 48]).await.unwrap();
    by_owner.add_kms_chip(&[2; 64]).await.unwrap();
    let status = Inspector::new(&chain.url, d.registry, d.block)
        .unwrap()
        .registry()
        .await
        .unwrap();
    assert_eq!(
        status.os_images,
        vec![alloy::primitives::Bytes::from(vec![1u8; 48])]
    );
    assert_eq!(status.kms_chips.len(), 1);
}

#[tokio::test]
async fn app_status_replays_the_lists() {
    let f = deploy_fixture().await;
    let extra = B256::repeat_byte(0xe1);
    f.app_owner.add_compose_hash(f.app, extra).await.unwrap();
    f.app_owner
        .remove_compose_hash(f.app, COMPOSE_HASH.into())
        .await
        .unwrap();
    let s = Inspector::new(&f.chain.url, f.deployment.registry, 0)
        .unwrap()
        .app(f.app)
        .await
        .unwrap();
    assert!(s.registered && s.enabled && !s.allow_any_device);
    assert_eq!(s.owner, f.app_owner.address());
    assert_eq!(s.compose_hashes, vec![extra]);
    assert_eq!(s.devices, vec![device_id(&CHIP_ID)]);
    let none = Inspector::new(&f.chain.url, f.deployment.registry, 0)
        .unwrap()
        .app(Address::repeat_byte(0x99))
        .await
        .unwrap();
    assert!(!none.registered);
}

#[tokio::test]
async fn a_refused_call_does_not_stall_the_owners_next_transaction() {
    // A call refused at gas estimation is never sent; a nonce counted for it anyway would
    // leave a gap that keeps every later transaction of this owner from being mined.
    let f = deploy_fixture().await;
    let governor = f
        .governor
        .with_receipt_timeout(std::time::Duration::from_secs(5));
    let msg = reason(governor.add_os_image(&OS_IMAGE).await);
    assert!(msg.contains("AlreadyPresent()"), "{msg}");
    governor
        .add_os_image(&[0x77; 48])
        .await
        .expect("the next transaction is mined");
}
