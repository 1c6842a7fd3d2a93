//! Every decision path of isAppAllowed / isKmsAllowed, and the other reads.

use crate::connect;
use snpkms_chain_client::*;
use snpkms_testkit::*;
use snpkms_verifier::{Product, TcbVersion};
use std::str::FromStr;

#[tokio::test]
async fn app_decision_paths() {
    let f = deploy_fixture().await;
    let c = connect(f.config()).await;
    let allowed = f.app_boot_info();

    let d = c.is_app_allowed(&allowed).await.unwrap();
    assert!(d.allowed, "{d:?}");
    assert_eq!(d.reason, "");
    assert!(!d.cached);
    assert_eq!(d.block.number, f.chain.head().await, "read at latest - 0");

    let refused = |info: snpkms_verifier::BootInfo, reason: &'static str| {
        let c = c.clone();
        async move {
            let d = c.is_app_allowed(&info).await.unwrap();
            assert!(!d.allowed, "expected refusal {reason:?}, got {d:?}");
            assert_eq!(d.reason, reason);
        }
    };

    let mut info = allowed.clone();
    info.measurement[0] ^= 1;
    refused(info, "os image not allowed").await;

    for which in 0..3 {
        let mut info = allowed.clone();
        let below = TcbVersion {
            microcode: MIN_TCB.microcode - 1,
            ..MIN_TCB
        };
        match which {
            0 => info.reported_tcb = below,
            1 => info.committed_tcb = below,
            _ => info.launch_tcb = below,
        }
        refused(info, "tcb below minimum").await;
    }
    // Componentwise: a higher bootloader does not make up for a lower snp.
    let mut info = allowed.clone();
    info.reported_tcb.bootloader = 200;
    info.reported_tcb.snp = MIN_TCB.snp - 1;
    refused(info, "tcb below minimum").await;

    let mut info = allowed.clone();
    info.app_id = [0x99; 20];
    refused(info, "app not registered").await;

    let mut info = allowed.clone();
    info.compose_hash[0] ^= 1;
    refused(info, "compose hash not allowed").await;

    let mut info = allowed.clone();
    if let Some(id) = info.chip_id.as_mut() {
        id[0] ^= 1;
    }
    refused(info.clone(), "device not allowed").await;
    // A guest no certificate ties to a chip (VLEK-signed, or masked chip id) matches no
    // device list, not even one listing keccak256 of nothing.
    let mut anonymous = allowed.clone();
    anonymous.chip_id = None;
    refused(anonymous.clone(), "no device identity").await;
    f.app_owner.set_allow_any_device(f.app, true).await.unwrap();
    c.refresh().await.unwrap();
    let d = c.is_app_allowed(&info).await.unwrap();
    assert!(d.allowed, "allowAnyDevice admits any chip: {d:?}");
    let d = c.is_app_allowed(&anonymous).await.unwrap();
    assert!(
        d.allowed,
        "allowAnyDevice admits a guest of no device identity: {d:?}"
    );

    f.app_owner.disable_app(f.app).await.unwrap();
    c.refresh().await.unwrap();
    refused(allowed.clone(), "app disabled").await;
    f.app_owner.enable_app(f.app).await.unwrap();
    c.refresh().await.unwrap();
    assert!(c.is_app_allowed(&allowed).await.unwrap().allowed);
}

#[tokio::test]
async fn kms_decision_paths() {
    let f = deploy_fixture().await;
    let c = connect(f.config()).await;
    let allowed = f.kms_boot_info();
    let d = c.is_kms_allowed(&allowed, KMS_CONFIG).await.unwrap();
    assert!(d.allowed, "{d:?}");

    // The node's security configuration is part of the decision.
    let d = c.is_kms_allowed(&allowed, [0xee; 32]).await.unwrap();
    assert_eq!(
        (d.allowed, d.reason.as_str()),
        (false, "kms config not allowed")
    );

    // App identity is not part of the KMS decision.
    let mut info = allowed.clone();
    info.app_id = [0x99; 20];
    info.compose_hash = [0x98; 32];
    assert!(c.is_kms_allowed(&info, KMS_CONFIG).await.unwrap().allowed);

    // An app OS image is not a KMS image, and the other way round.
    let d = c
        .is_kms_allowed(&f.app_boot_info(), KMS_CONFIG)
        .await
        .unwrap();
    assert_eq!(
        (d.allowed, d.reason.as_str()),
        (false, "kms measurement not allowed")
    );
    let mut as_app = f.app_boot_info();
    as_app.measurement = KMS_MEASUREMENT;
    let d = c.is_app_allowed(&as_app).await.unwrap();
    assert_eq!(
        (d.allowed, d.reason.as_str()),
        (false, "os image not allowed")
    );

    let mut info = allowed.clone();
    info.launch_tcb.tee = 0;
    info.launch_tcb.bootloader = MIN_TCB.bootloader - 1;
    let d = c.is_kms_allowed(&info, KMS_CONFIG).await.unwrap();
    assert_eq!((d.allowed, d.reason.as_str()), (false, "tcb below minimum"));

    // With "any chip" off, the list admits only listed chips.
    let other_chip = [0x77u8; 64];
    f.governor.add_kms_chip(&other_chip).await.unwrap();
    f.governor.set_any_kms_chip_allowed(false).await.unwrap();
    c.refresh().await.unwrap();
    let d = c.is_kms_allowed(&allowed, KMS_CONFIG).await.unwrap();
    assert_eq!(
        (d.allowed, d.reason.as_str()),
        (false, "kms chip not allowed")
    );
    f.governor.add_kms_chip(&CHIP_ID).await.unwrap();
    c.refresh().await.unwrap();
    assert!(
        c.is_kms_allowed(&allowed, KMS_CONFIG)
            .await
            .unwrap()
            .allowed
    );
    // A node of no device identity (VLEK-signed evidence) is on no chip list.
    let mut anonymous = allowed.clone();
    anonymous.chip_id = None;
    let d = c.is_kms_allowed(&anonymous, KMS_CONFIG).await.unwrap();
    assert_eq!(
        (d.allowed, d.reason.as_str()),
        (false, "kms chip not allowed")
    );
}

#[tokio::test]
async fn product_is_mapped_to_the_registry_number() {
    let f = deploy_fixture().await;
    let c = connect(f.config()).await;
    // Genoa gets a high minimum: a Genoa guest is refused, a Milan one is not, and a Turin one
    // is refused because governance set no minimum for Turin.
    let genoa_min = TcbVersion {
        bootloader: 9,
        tee: 9,
        snp: 30,
        microcode: 250,
        fmc: 0,
    };
    f.governor
        .set_min_tcb(Product::Genoa, genoa_min)
        .await
        .unwrap();
    c.refresh().await.unwrap();
    for (product, allowed, reason) in [
        (Product::Milan, true, ""),
        (Product::Genoa, false, "tcb below minimum"),
        (Product::Turin, false, "no minimum tcb for product"),
    ] {
        let mut info = f.app_boot_info();
        info.product = product;
        let d = c.is_app_allowed(&info).await.unwrap();
        assert_eq!(
            (d.allowed, d.reason.as_str()),
            (allowed, reason),
            "{product}"
        );
    }
    assert_eq!(c.min_tcb(Product::Genoa).await.unwrap(), genoa_min);
    assert_eq!(c.min_tcb(Product::Milan).await.unwrap(), MIN_TCB);
    assert_eq!(
        c.min_tcb(Product::Turin).await.unwrap(),
        TcbVersion::default()
    );

    // fmc is a Turin component: it counts there.
    let turin_min = TcbVersion {
        fmc: 5,
        ..TcbVersion::default()
    };
    f.governor
        .set_min_tcb(Product::Turin, turin_min)
        .await
        .unwrap();
    c.refresh().await.unwrap();
    let mut info = f.app_boot_info();
    info.product = Product::Turin;
    let d = c.is_app_allowed(&info).await.unwrap();
    assert_eq!((d.allowed, d.reason.as_str()), (false, "tcb below minimum"));
    for t in [
        &mut info.reported_tcb,
        &mut info.committed_tcb,
        &mut info.launch_tcb,
    ] {
        t.fmc = 5;
    }
    assert!(c.is_app_allowed(&info).await.unwrap().allowed);
}

#[tokio::test]
async fn kms_info_epoch_and_app_key_signature() {
    let f = deploy_fixture().await;
    let c = connect(f.config()).await;
    let info = c.kms_info().await.unwrap();
    assert_eq!(info.root_signing_address, Address::ZERO);
    assert_eq!(info.key_epoch, 0);

    // The fixed vector of contracts/README.md: root key 0x…01, app 0x11…, signer 0x22…, epoch 7.
    let root = Address::from_str("0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf").unwrap();
    let tls_key = vec![0xab; 65];
    f.governor.set_kms_info(root, &tls_key).await.unwrap();
    f.governor.bump_key_epoch().await.unwrap();
    f.governor.bump_key_epoch().await.unwrap();
    c.refresh().await.unwrap();
    let info = c.kms_info().await.unwrap();
    assert_eq!(info.root_signing_address, root);
    assert_eq!(info.tls_public_key, tls_key);
    assert_eq!(info.key_epoch, 2);
    assert_eq!(c.key_epoch().await.unwrap(), 2);
    assert_eq!(info.block.number, f.chain.head().await);

    let app = Address::repeat_byte(0x11);
    let signer = Address::repeat_byte(0x22);
    let sig = hex::decode("7dbeadf2427e35090903b403571ff8b2e882ac8f541afe90a44897bab3a7e9da4d87d1aacb7c98fdc1019cd6ecb54d6d418d6ff29a940570868773e45cc873181c").unwrap();
    assert!(c.verify_app_key(app, signer, 7, &sig).await.unwrap());
    assert!(
        !c.verify_app_key(app, signer, 8, &sig).await.unwrap(),
        "other epoch"
    );
    assert!(!c
        .verify_app_key(app, Address::repeat_byte(0x23), 7, &sig)
        .await
        .unwrap());
    assert!(
        !c.verify_app_key(app, signer, 7, &sig[..64]).await.unwrap(),
        "64-byte sig"
    );
}
