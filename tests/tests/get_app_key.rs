//! GetAppKey end to end: anvil + contracts + node on loopback + simulated guest.

use snpkms_api::pb;
use snpkms_api::seal::{self, EphemeralKeyPair, Sealed};
use snpkms_api::{app_key_signature, binding};
use snpkms_chain_client::{Address, B256};
use snpkms_e2e::*;
use snpkms_guest::GuestClientError;
use snpkms_platform::Attestor;
use snpkms_verifier::GuestPolicy;
use tonic::Code;

fn refused(r: Result<snpkms_guest::AppKeyGrant, GuestClientError>) -> (Code, String) {
    match r {
        Err(GuestClientError::Refused { code, message }) => (code, message),
        Err(other) => panic!("expected a refusal, got {other}"),
        Ok(_) => panic!("expected a refusal, got keys"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn allowed_app_gets_stable_keys_signed_for_the_chain() {
    let stack = Stack::start().await;
    let app = stack.app();
    let guest = guest(app, stack.compose_hash);
    let mut client = stack.client().await;
    let root = stack.node.as_ref().unwrap().node.signing_address();

    let a = client
        .get_app_key(&guest, app.0 .0, stack.compose_hash, None, root)
        .await
        .expect("keys");
    let b = client
        .get_app_key(&guest, app.0 .0, stack.compose_hash, None, root)
        .await
        .expect("keys again");
    assert_eq!(*a.disk_key, *b.disk_key);
    assert_eq!(*a.env_secret_key, *b.env_secret_key);
    assert_eq!(*a.signing_key, *b.signing_key);
    assert_eq!(a.kms_signature, b.kms_signature);
    // Purposes are separated.
    assert_ne!(*a.disk_key, *a.env_secret_key);
    assert_ne!(*a.disk_key, *a.signing_key);
    assert_eq!(a.key_epoch, 0);
    assert_eq!(a.kms_root_signing_address, root);

    // The registry itself accepts the KMS signature for this app and signing key.
    let chain = stack.node.as_ref().unwrap().chain().clone();
    assert!(chain
        .verify_app_key(
            app,
            Address::from(a.app_signing_address),
            a.key_epoch,
            &a.kms_signature
        )
        .await
        .unwrap());
    // ... and not for another epoch or another app.
    assert!(!chain
        .verify_app_key(
            app,
            Address::from(a.app_signing_address),
            1,
            &a.kms_signature
        )
        .await
        .unwrap());
    assert!(!chain
        .verify_app_key(
            Address::ZERO,
            Address::from(a.app_signing_address),
            0,
            &a.kms_signature
        )
        .await
        .unwrap());

    // Another app gets other keys.
    let (other_app, _) = stack
        .fixture
        .app_owner
        .register_app(B256::from([0x99; 32]))
        .await
        .unwrap();
    stack
        .fixture
        .app_owner
        .add_compose_hash(other_app, stack.compose())
        .await
        .unwrap();
    stack
        .fixture
        .app_owner
        .set_allow_any_device(other_app, true)
        .await
        .unwrap();
    stack.settle().await;
    let other = client
        .get_app_key(
            &guest_for(other_app, stack.compose_hash),
            other_app.0 .0,
            stack.compose_hash,
            None,
            root,
        )
        .await
        .expect("other app keys");
    assert_ne!(*other.disk_key, *a.disk_key);
    assert_ne!(other.app_signing_address, a.app_signing_address);
}

fn guest_for(app: Address, compose: [u8; 32]) -> snpkms_platform::SimulatedAttestor {
    guest(app, compose)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_response_opens_only_with_the_guests_ephemeral_key() {
    let stack = Stack::start().await;
    let app = stack.app();
    let guest = guest(app, stack.compose_hash);
    let mut raw = stack.raw_client().await;
    let nonce = raw
        .get_challenge(pb::GetChallengeRequest {})
        .await
        .unwrap()
        .into_inner()
        .nonce;
    let ephemeral = EphemeralKeyPair::generate();
    let evidence = guest
        .attest(binding::get_app_key_report_data(
            &nonce,
            &ephemeral.public_key(),
        ))
        .unwrap();
    let response = raw
        .get_app_key(pb::GetAppKeyRequest {
            evidence: Some(pb::Evidence {
                report: evidence.report.clone(),
                cert_table: evidence.cert_table.clone(),
            }),
            nonce: nonce.clone(),
            app_id: app.to_vec(),
            compose_hash: stack.compose_hash.to_vec(),
            ephemeral_public_key: ephemeral.public_key().to_vec(),
            epoch: None,
        })
        .await
        .expect("granted")
        .into_inner();
    let sealed = Sealed {
        encapsulated_key: response.encapsulated_key.clone(),
        ciphertext: response.sealed_keys.clone(),
    };
    let aad = seal::app_keys_aad(&app.0 .0, &stack.compose_hash, response.key_epoch, &nonce);
    assert!(ephemeral.open(seal::APP_KEYS_INFO, &aad, &sealed).is_ok());
    let eavesdropper = EphemeralKeyPair::generate();
    assert!(eavesdropper
        .open(seal::APP_KEYS_INFO, &aad, &sealed)
        .is_err());
    // The signature recovers to the node's root address.
    let signer = app_key_signature::recover(
        &app.0 .0,
        &response.app_signing_address.clone().try_into().unwrap(),
        response.key_epoch,
        &response.kms_signature,
    )
    .unwrap();
    assert_eq!(signer.to_vec(), response.kms_root_signing_address);

    // The guest keeps the grant only from the root it trusts, for the epoch it asked for, and
    // only if the response names the root that signed.
    let open = |response: pb::GetAppKeyResponse, epoch: Option<u32>, root: [u8; 20]| {
        snpkms_guest::open_grant(
            &ephemeral,
            &nonce,
            app.0 .0,
            stack.compose_hash,
            epoch,
            response,
            root,
        )
    };
    let grant = open(response.clone(), Some(0), stack.root).expect("the trusted root's grant");
    assert_eq!(grant.kms_root_signing_address, stack.root);
    assert!(matches!(
        open(response.clone(), None, [0x99; 20]),
        Err(GuestClientError::WrongSigner { .. })
    ));
    assert!(matches!(
        open(response.clone(), Some(1), stack.root),
        Err(GuestClientError::EpochMismatch {
            requested: 1,
            answered: 0
        })
    ));
    let mut misnamed = response.clone();
    misnamed.kms_root_signing_address = vec![0x99; 20];
    match open(misnamed, None, stack.root) {
        Err(GuestClientError::Malformed(m)) => {
            assert!(m.contains("kms_root_signing_address"), "{m}")
        }
        other => panic!("a response naming another root: {:?}", other.map(|_| ())),
    }

    // Replaying the same request: the nonce is spent.
    let replay = raw
        .get_app_key(pb::GetAppKeyRequest {
            evidence: Some(pb::Evidence {
                report: evidence.report,
                cert_table: evidence.cert_table,
            }),
            nonce,
            app_id: app.to_vec(),
            compose_hash: stack.compose_hash.to_vec(),
            ephemeral_public_key: ephemeral.public_key().to_vec(),
            epoch: None,
        })
        .await
        .unwrap_err();
    assert_eq!(replay.code(), Code::FailedPrecondition, "{replay:?}");
    assert!(replay.message().contains("unknown or already used nonce"));
}

#[tokio::test(flavor = "multi_thread")]
async fn chain_and_evidence_refusals_map_to_precise_statuses() {
    let stack = Stack::start().await;
    let app = stack.app();
    let mut client = stack.client().await;

    // An OS image the registry never allowed.
    let rogue = guest_with(
        app,
        stack.compose_hash,
        [0x01; 48],
        GuestPolicy::SMT | GuestPolicy::RESERVED_MBO,
    );
    let (code, msg) = refused(
        client
            .get_app_key(&rogue, app.0 .0, stack.compose_hash, None, stack.root)
            .await,
    );
    assert_eq!(code, Code::PermissionDenied);
    assert!(msg.contains("os image not allowed"), "{msg}");

    // A debug-enabled guest: refused by the node's own policy before the chain is asked.
    let debug = guest_with(
        app,
        stack.compose_hash,
        GUEST_IMAGE,
        GuestPolicy::SMT | GuestPolicy::RESERVED_MBO | GuestPolicy::DEBUG,
    );
    let (code, msg) = refused(
        client
            .get_app_key(&debug, app.0 .0, stack.compose_hash, None, stack.root)
            .await,
    );
    assert_eq!(code, Code::Unauthenticated);
    assert!(msg.contains("debug"), "{msg}");

    // A guest claiming another compose than the one its host_data binds.
    let g = guest(app, stack.compose_hash);
    let (code, msg) = refused(
        client
            .get_app_key(&g, app.0 .0, [0x77; 32], None, stack.root)
            .await,
    );
    assert_eq!(code, Code::Unauthenticated);
    assert!(msg.contains("host_data"), "{msg}");

    // An epoch the registry has not reached.
    let (code, msg) = refused(
        client
            .get_app_key(&g, app.0 .0, stack.compose_hash, Some(5), stack.root)
            .await,
    );
    assert_eq!(code, Code::InvalidArgument);
    assert!(msg.contains("ahead"), "{msg}");

    // Allowed now; then the owner removes the compose hash and the next request is refused.
    client
        .get_app_key(&g, app.0 .0, stack.compose_hash, None, stack.root)
        .await
        .expect("allowed before removal");
    stack
        .fixture
        .app_owner
        .remove_compose_hash(app, stack.compose())
        .await
        .unwrap();
    stack.settle().await;
    let (code, msg) = refused(
        client
            .get_app_key(&g, app.0 .0, stack.compose_hash, None, stack.root)
            .await,
    );
    assert_eq!(code, Code::PermissionDenied);
    assert!(msg.contains("compose hash not allowed"), "{msg}");
}

#[tokio::test(flavor = "multi_thread")]
async fn chain_down_is_unavailable_and_service_recovers() {
    let stack = Stack::start().await;
    let app = stack.app();
    let g = guest(app, stack.compose_hash);
    let mut client = stack.client().await;
    client
        .get_app_key(&g, app.0 .0, stack.compose_hash, None, stack.root)
        .await
        .expect("allowed");

    stack.proxy.set_hang(true);
    // Another compose (allowed on-chain) so that no cached decision applies.
    let second = [0x45; 32];
    stack
        .fixture
        .app_owner
        .add_compose_hash(app, B256::from(second))
        .await
        .unwrap();
    let g2 = guest(app, second);
    let (code, msg) = refused(
        client
            .get_app_key(&g2, app.0 .0, second, None, stack.root)
            .await,
    );
    assert_eq!(code, Code::Unavailable, "{msg}");

    stack.proxy.set_hang(false);
    let mut ok = None;
    for _ in 0..40 {
        match client
            .get_app_key(&g2, app.0 .0, second, None, stack.root)
            .await
        {
            Ok(grant) => {
                ok = Some(grant);
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    assert!(
        ok.is_some(),
        "the node did not recover after the chain came back"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_keeps_the_root_and_the_audit_chain() {
    let mut stack = Stack::start().await;
    let app = stack.app();
    let g = guest(app, stack.compose_hash);
    let before = stack
        .client()
        .await
        .get_app_key(&g, app.0 .0, stack.compose_hash, None, stack.root)
        .await
        .expect("keys");
    let root_before = stack.node.as_ref().unwrap().node.signing_address();
    stack.stop_node().await;
    stack.start_node().await;
    assert_eq!(
        stack.node.as_ref().unwrap().node.signing_address(),
        root_before
    );
    let after = stack
        .client()
        .await
        .get_app_key(&g, app.0 .0, stack.compose_hash, None, stack.root)
        .await
        .expect("keys after restart");
    assert_eq!(*before.disk_key, *after.disk_key);
    assert_eq!(before.app_signing_address, after.app_signing_address);
    stack.stop_node().await;

    let records = snpkms_kms_node::read_audit_log(&stack.config)
        .expect("intact audit chain")
        .records;
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r.decision == "allowed"));
    assert_eq!(records[0].app_id, format!("{:#x}", app));
}

/// The host owns the disk: it can cut the log back to an earlier head (which the node cannot
/// tell from a shorter log), but an auditor who kept a head the node signed can.
#[tokio::test(flavor = "multi_thread")]
async fn a_signed_audit_head_catches_a_log_cut_back() {
    let mut stack = Stack::start().await;
    let app = stack.app();
    let g = guest(app, stack.compose_hash);
    let mut client = stack.client().await;
    for _ in 0..3 {
        client
            .get_app_key(&g, app.0 .0, stack.compose_hash, None, stack.root)
            .await
            .expect("keys");
    }
    let kept = client.audit_head().await.expect("GetAuditHead");
    assert_eq!(kept.head.records, 3);
    assert_eq!(
        kept.signer().unwrap(),
        stack.root,
        "signed by the registered root"
    );
    stack.stop_node().await;
    let log = snpkms_kms_node::read_audit_log(&stack.config).unwrap();
    assert_eq!(log.extends(&kept), Ok(()));

    // Cut back to the head after the first record, as a host could.
    let path = stack.config.data_dir.join("audit.log");
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&path, lines[..2].join("\n") + "\n").unwrap();
    // The node opens it (a valid, shorter log) and goes on...
    stack.start_node().await;
    stack
        .client()
        .await
        .get_app_key(&g, app.0 .0, stack.compose_hash, None, stack.root)
        .await
        .expect("keys after the cut");
    stack.stop_node().await;
    // ...but the log no longer extends the head the auditor kept.
    let log = snpkms_kms_node::read_audit_log(&stack.config).unwrap();
    assert_eq!(log.records.len(), 2);
    assert!(matches!(
        log.extends(&kept),
        Err(snpkms_kms_node::HeadCheckError::Rewritten { records: 3 }
            | snpkms_kms_node::HeadCheckError::Truncated { .. })
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_whose_root_is_not_registered_does_not_serve() {
    let mut stack = Stack::start().await;
    stack.stop_node().await;
    // Governance registers some other root: the node must stop releasing keys.
    stack
        .fixture
        .governor
        .set_kms_info(Address::from([0x42; 20]), &[])
        .await
        .unwrap();
    let node = snpkms_kms_node::start(stack.config.clone()).await.unwrap();
    let url = format!("http://{}", node.addr);
    let mut client = snpkms_guest::GuestClient::connect(&url).await.unwrap();
    let g = guest(stack.app(), stack.compose_hash);
    let (code, msg) = refused(
        client
            .get_app_key(&g, stack.app().0 .0, stack.compose_hash, None, stack.root)
            .await,
    );
    assert_eq!(code, Code::Unavailable);
    assert!(msg.contains("KMS root signing address"), "{msg}");
    node.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_requests_verifications_and_releases() {
    let stack = Stack::start().await;
    let app = stack.app();
    let g = guest(app, stack.compose_hash);
    let mut client = stack.client().await;
    client
        .get_app_key(&g, app.0 .0, stack.compose_hash, None, stack.root)
        .await
        .expect("keys");
    let debug = guest_with(
        app,
        stack.compose_hash,
        GUEST_IMAGE,
        GuestPolicy::SMT | GuestPolicy::RESERVED_MBO | GuestPolicy::DEBUG,
    );
    let _ = client
        .get_app_key(&debug, app.0 .0, stack.compose_hash, None, stack.root)
        .await;
    let addr = stack.node.as_ref().unwrap().metrics_addr.unwrap();
    let body = metrics_text(&format!("{addr}")).await;
    for needle in [
        "snpkms_requests_total{method=\"GetAppKey\",code=\"Ok\"} 1",
        "snpkms_requests_total{method=\"GetAppKey\",code=\"Unauthenticated\"} 1",
        "snpkms_verification_failures_total{reason=\"policy\"} 1",
        &format!("snpkms_key_releases_total{{app=\"{:#x}\"}} 1", app),
        // One for the guest's app, one for the node's own standing (isKmsAllowed).
        "snpkms_registry_decision_cache_misses_total 2",
        "snpkms_serving 1",
        "snpkms_request_duration_seconds_count{method=\"GetAppKey\"} 2",
        "snpkms_audit_records 1",
    ] {
        assert!(body.contains(needle), "missing {needle:?} in\n{body}");
    }
    // No key material in the metrics.
    assert!(!body.contains(&hex::encode(stack.compose_hash)));
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_listener_serves_and_publishes_its_key() {
    let mut stack = Stack::start().await;
    stack.stop_node().await;
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    stack.config.tls = Some(snpkms_kms_node::config::TlsConfig {
        cert: cert_path,
        key: key_path,
    });
    stack.start_node().await;
    let port = stack.node.as_ref().unwrap().addr.port();
    let url = format!("https://localhost:{port}");
    let mut client = snpkms_guest::GuestClient::connect_tls(&url, cert.cert.pem().as_bytes())
        .await
        .expect("TLS connection");
    let app = stack.app();
    let g = guest(app, stack.compose_hash);
    client
        .get_app_key(&g, app.0 .0, stack.compose_hash, None, stack.root)
        .await
        .expect("keys over TLS");
    // The node publishes its TLS key (SPKI) for guests to pin.
    let info = client.kms_info().await.unwrap();
    assert_eq!(info.tls_public_key, cert.key_pair.public_key_der());
    // A plaintext client cannot talk to it.
    let plain = snpkms_guest::GuestClient::connect(&format!("http://localhost:{port}")).await;
    let refused = match plain {
        Err(_) => true,
        Ok(mut c) => c.kms_info().await.is_err(),
    };
    assert!(refused);
}
