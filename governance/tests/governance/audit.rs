//! The audit stream lists exactly the events produced, in order, with their arguments.

use alloy::eips::BlockNumberOrTag;
use alloy::primitives::{Address, Bytes, B256};
use alloy::providers::Provider;
use snpkms_governance::*;
use snpkms_testkit::*;
use snpkms_verifier::{Product, TcbVersion};
use std::time::Duration;

#[tokio::test]
async fn audit_lists_exactly_the_events_in_order() {
    let f = deploy_fixture().await;
    let from = f.chain.head().await + 1;
    let app = f.app;
    let h2 = B256::repeat_byte(0xa2);
    let d2 = device_id(&[0xd2; 64]);
    let m2 = [0x5a; 48];
    let tcb = TcbVersion {
        bootloader: 1,
        tee: 2,
        snp: 3,
        microcode: 4,
        fmc: 0,
    };
    let root = Address::repeat_byte(0x7e);
    let mut expected: Vec<(TxOutcome, Address, AuditKind)> = Vec::new();
    let reg = f.deployment.registry;
    macro_rules! step {
        ($op:expr, $contract:expr, $kind:expr) => {
            expected.push(($op.await.unwrap(), $contract, $kind))
        };
    }
    step!(
        f.app_owner.add_compose_hash(app, h2),
        app,
        AuditKind::ComposeHashAdded {
            app,
            compose_hash: h2
        }
    );
    step!(
        f.app_owner.add_device(app, d2),
        app,
        AuditKind::DeviceAdded { app, device_id: d2 }
    );
    step!(
        f.governor.add_os_image(&m2),
        reg,
        AuditKind::OsImageAdded {
            measurement: Bytes::from(m2.to_vec())
        }
    );
    step!(
        f.app_owner.set_allow_any_device(app, true),
        app,
        AuditKind::AllowAnyDeviceSet { app, allowed: true }
    );
    step!(
        f.app_owner.disable_app(app),
        app,
        AuditKind::AppDisabled { app }
    );
    step!(
        f.governor.set_min_tcb(Product::Genoa, tcb),
        reg,
        AuditKind::MinTcbSet { product: 1, tcb }
    );
    step!(
        f.app_owner.enable_app(app),
        app,
        AuditKind::AppEnabled { app }
    );
    step!(
        f.governor.set_kms_info(root, &[1, 2, 3]),
        reg,
        AuditKind::KmsInfoSet {
            root_signing_address: root,
            tls_public_key: Bytes::from(vec![1, 2, 3]),
            epoch: 0
        }
    );
    step!(
        f.governor.bump_key_epoch(),
        reg,
        AuditKind::KeyEpochBumped { epoch: 1 }
    );
    step!(
        f.app_owner.remove_compose_hash(app, h2),
        app,
        AuditKind::ComposeHashRemoved {
            app,
            compose_hash: h2
        }
    );
    step!(
        f.app_owner.remove_device(app, d2),
        app,
        AuditKind::DeviceRemoved { app, device_id: d2 }
    );
    step!(
        f.governor.remove_os_image(&m2),
        reg,
        AuditKind::OsImageRemoved {
            measurement: Bytes::from(m2.to_vec())
        }
    );
    // Failed operations leave no trace.
    assert!(f.stranger.add_os_image(&m2).await.is_err());

    let reader = AuditReader::new(&f.chain.url, reg).unwrap();
    let all = reader.events(None, from, None).await.unwrap();
    assert_eq!(all.len(), expected.len(), "{all:#?}");
    for (e, (tx, contract, kind)) in all.iter().zip(&expected) {
        assert_eq!(&e.kind, kind);
        assert_eq!(e.contract, *contract);
        assert_eq!(e.tx_hash, tx.tx_hash);
        assert_eq!(e.block_number, tx.block);
        let block = f
            .chain
            .provider()
            .get_block_by_number(BlockNumberOrTag::Number(tx.block))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(e.block_timestamp, block.header.inner.timestamp);
    }

    // One app: its events only.
    let mine = reader.events(Some(app), from, None).await.unwrap();
    let want: Vec<&AuditKind> = expected
        .iter()
        .filter(|(_, c, _)| *c == app)
        .map(|(_, _, k)| k)
        .collect();
    assert_eq!(mine.iter().map(|e| &e.kind).collect::<Vec<_>>(), want);

    // A sub-range, bounded on both ends.
    let (first, last) = (expected[2].0.block, expected[4].0.block);
    let some = reader.events(None, first, Some(last)).await.unwrap();
    assert_eq!(
        some.iter().map(|e| &e.kind).collect::<Vec<_>>(),
        expected[2..=4]
            .iter()
            .map(|(_, _, k)| k)
            .collect::<Vec<_>>()
    );

    // The whole history of the app starts with its registration.
    let history = reader
        .events(Some(app), f.deployment.block, None)
        .await
        .unwrap();
    let names: Vec<&str> = history.iter().map(|e| e.kind.name()).collect();
    assert_eq!(
        &names[..5],
        [
            "OwnershipTransferred",
            "Initialized",
            "AppRegistered",
            "ComposeHashAdded",
            "DeviceAdded"
        ]
    );
    assert_eq!(
        history[2].kind,
        AuditKind::AppRegistered {
            app,
            owner: f.app_owner.address(),
            salt: B256::from(APP_SALT)
        }
    );

    // JSON: the event name and its arguments.
    let json = serde_json::to_value(&all[0]).unwrap();
    assert_eq!(json["event"], "ComposeHashAdded");
    assert_eq!(json["args"]["compose_hash"], format!("{h2}"));
    assert_eq!(json["block_number"], all[0].block_number);
}

#[tokio::test]
async fn audit_follow_streams_new_events() {
    let f = deploy_fixture().await;
    let reader = AuditReader::new(&f.chain.url, f.deployment.registry).unwrap();
    let from = f.chain.head().await + 1;
    let mut rx = reader.follow(None, from, 0, Duration::from_millis(20));
    // A new app: its initialization events are included even though it did not exist before.
    let (other, _) = f.stranger.register_app(B256::repeat_byte(3)).await.unwrap();
    let tx = f.stranger.disable_app(other).await.unwrap();
    let mut got = Vec::new();
    while got.len() < 4 {
        let e = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("event in time")
            .expect("stream open")
            .unwrap();
        got.push(e);
    }
    let names: Vec<&str> = got.iter().map(|e| e.kind.name()).collect();
    assert_eq!(
        names,
        [
            "OwnershipTransferred",
            "Initialized",
            "AppRegistered",
            "AppDisabled"
        ]
    );
    assert_eq!(got[3].tx_hash, tx.tx_hash);
    assert_eq!(got[3].contract, other);
    // Nothing more arrives.
    assert!(tokio::time::timeout(Duration::from_millis(200), rx.recv())
        .await
        .is_err());
}
