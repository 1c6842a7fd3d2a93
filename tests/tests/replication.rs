//! Root secret replication between attested nodes, and key epochs.

use snpkms_api::pb;
use snpkms_api::seal::{self};
use snpkms_e2e::*;
use snpkms_guest::GuestClient;
use snpkms_testkit::KMS_MEASUREMENT;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn onboarded_nodes_serve_identical_keys_and_follow_epochs() {
    let stack = Stack::start().await;
    let app = stack.app();
    let g = guest(app, stack.compose_hash);
    let url1 = stack.url();
    let (node2, _, _d2) = stack
        .join(
            "e2e-kms-chip-2",
            KMS_MEASUREMENT,
            std::slice::from_ref(&url1),
        )
        .await
        .expect("node 2 onboarded");
    let url2 = format!("http://{}", node2.addr);
    // Node 3 learns it from node 2 (after a dead first peer): any allowed node can onboard.
    let (node3, _, _d3) = stack
        .join(
            "e2e-kms-chip-3",
            KMS_MEASUREMENT,
            &["http://127.0.0.1:1".to_string(), url2.clone()],
        )
        .await
        .expect("node 3 onboarded");
    let url3 = format!("http://{}", node3.addr);
    assert_eq!(
        node2.node.signing_address(),
        stack.node.as_ref().unwrap().node.signing_address()
    );
    assert_eq!(node3.node.signing_address(), node2.node.signing_address());

    let mut grants = Vec::new();
    for url in [&url1, &url2, &url3] {
        let mut c = GuestClient::connect(url).await.unwrap();
        grants.push(
            c.get_app_key(&g, app.0 .0, stack.compose_hash, None, stack.root)
                .await
                .unwrap_or_else(|e| panic!("{url}: {e}")),
        );
    }
    for g in &grants[1..] {
        assert_eq!(*g.disk_key, *grants[0].disk_key);
        assert_eq!(*g.signing_key, *grants[0].signing_key);
        assert_eq!(g.kms_signature, grants[0].kms_signature);
    }

    // Every onboarding is in the serving node's key-release log.
    let log1 = stack.node.as_ref().unwrap().audit_records();
    assert_eq!(log1, 2, "node 1: onboarding of node 2 + one key release");

    // Governance bumps the epoch: every node derives the new keys, and old ones on request.
    stack.fixture.governor.bump_key_epoch().await.unwrap();
    stack.settle().await;
    let mut new = Vec::new();
    let mut old = Vec::new();
    for url in [&url1, &url2, &url3] {
        let mut c = GuestClient::connect(url).await.unwrap();
        let mut grant = None;
        for _ in 0..40 {
            let g1 = c
                .get_app_key(&g, app.0 .0, stack.compose_hash, None, stack.root)
                .await
                .unwrap();
            if g1.key_epoch == 1 {
                grant = Some(g1);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        new.push(grant.unwrap_or_else(|| panic!("{url} did not move to epoch 1")));
        old.push(
            c.get_app_key(&g, app.0 .0, stack.compose_hash, Some(0), stack.root)
                .await
                .unwrap(),
        );
    }
    for (n, o) in new.iter().zip(&old) {
        assert_eq!(*n.disk_key, *new[0].disk_key);
        assert_ne!(
            *n.disk_key, *grants[0].disk_key,
            "epoch 1 keys differ from epoch 0"
        );
        assert_eq!(o.key_epoch, 0);
        assert_eq!(
            *o.disk_key, *grants[0].disk_key,
            "epoch 0 still served on request"
        );
    }
    let mut c = GuestClient::connect(&url2).await.unwrap();
    assert!(c
        .get_app_key(&g, app.0 .0, stack.compose_hash, Some(2), stack.root)
        .await
        .is_err());
    node2.stop().await.unwrap();
    node3.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_joiner_with_an_unregistered_measurement_learns_nothing() {
    let stack = Stack::start().await;
    let err = stack
        .join("e2e-kms-rogue", [0x99; 48], &[stack.url()])
        .await
        .err()
        .expect("refused");
    assert!(err.contains("PermissionDenied"), "{err}");
    assert!(err.contains("kms measurement not allowed"), "{err}");
    // The refusal is in the serving node's log, as a denial.
    let node = stack.node.as_ref().unwrap();
    assert_eq!(node.audit_records(), 1);
}

/// A peer that answers Onboard with a well-formed, sealed, but different root secret.
struct LyingPeer;

#[tonic::async_trait]
impl pb::kms_server::Kms for LyingPeer {
    async fn get_challenge(
        &self,
        _: tonic::Request<pb::GetChallengeRequest>,
    ) -> Result<tonic::Response<pb::GetChallengeResponse>, tonic::Status> {
        Ok(tonic::Response::new(pb::GetChallengeResponse {
            nonce: vec![7; 32],
            expires_at: u64::MAX,
        }))
    }
    async fn get_app_key(
        &self,
        _: tonic::Request<pb::GetAppKeyRequest>,
    ) -> Result<tonic::Response<pb::GetAppKeyResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("lying peer"))
    }
    async fn get_app_key_share(
        &self,
        _: tonic::Request<pb::GetAppKeyRequest>,
    ) -> Result<tonic::Response<pb::GetAppKeyShareResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("lying peer"))
    }
    async fn sign_app_key(
        &self,
        _: tonic::Request<pb::SignAppKeyRequest>,
    ) -> Result<tonic::Response<pb::SignAppKeyResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("lying peer"))
    }
    async fn get_kms_info(
        &self,
        _: tonic::Request<pb::GetKmsInfoRequest>,
    ) -> Result<tonic::Response<pb::GetKmsInfoResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("lying peer"))
    }
    async fn get_audit_head(
        &self,
        _: tonic::Request<pb::GetAuditHeadRequest>,
    ) -> Result<tonic::Response<pb::GetAuditHeadResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("lying peer"))
    }
    async fn onboard(
        &self,
        request: tonic::Request<pb::OnboardRequest>,
    ) -> Result<tonic::Response<pb::OnboardResponse>, tonic::Status> {
        let req = request.into_inner();
        let fake = snpkms_core::keys::RootSecret::generate();
        let claimed = fake.root_signing_address();
        let sealed = seal::seal(
            &req.ephemeral_public_key,
            seal::ROOT_SECRET_INFO,
            &seal::root_secret_aad(&req.nonce, &claimed),
            fake.expose(),
        )
        .unwrap();
        Ok(tonic::Response::new(pb::OnboardResponse {
            encapsulated_key: sealed.encapsulated_key,
            sealed_root_secret: sealed.ciphertext,
            root_signing_address: claimed.to_vec(),
            block_number: 1,
            block_hash: vec![0; 32],
        }))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_handing_out_another_secret_is_refused() {
    let stack = Stack::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let liar = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(pb::kms_server::KmsServer::new(LyingPeer))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let err = stack
        .join(
            "e2e-kms-chip-4",
            KMS_MEASUREMENT,
            std::slice::from_ref(&liar),
        )
        .await
        .err()
        .expect("refused");
    assert!(err.contains("but the registry names"), "{err}");
    // The liar first, then an honest peer: the joiner moves on and gets the real root.
    let (node, cfg, _dir) = stack
        .join("e2e-kms-chip-5", KMS_MEASUREMENT, &[liar, stack.url()])
        .await
        .expect("honest peer used");
    assert_eq!(
        node.node.signing_address(),
        stack.node.as_ref().unwrap().node.signing_address()
    );
    node.stop().await.unwrap();
    assert!(cfg.data_dir.join("store").exists());
}

/// The documented way to change a node's security configuration: governance allows the new
/// digest, a node with the new configuration starts from an empty data dir and onboards from a
/// peer, and governance withdraws the old digest. The deployment's root (every app key) stays.
#[tokio::test(flavor = "multi_thread")]
async fn changing_the_security_configuration_keeps_the_root() {
    let stack = Stack::start().await;
    let app = stack.app();
    let g = guest(app, stack.compose_hash);
    let mut c = stack.client().await;
    let before = c
        .get_app_key(&g, app.0 .0, stack.compose_hash, None, stack.root)
        .await
        .unwrap();

    let change = |c: &mut snpkms_kms_node::config::NodeConfig| {
        c.limits.nonce_ttl_secs = 30;
        c.chain.max_staleness_secs = 1800;
    };
    let mut new_cfg = stack.config.clone();
    change(&mut new_cfg);
    let new_digest = snpkms_kms_node::SecuritySettings::resolve(&new_cfg)
        .unwrap()
        .digest();
    assert_ne!(new_digest.0, stack.config_digest.0);
    stack
        .fixture
        .governor
        .add_kms_config(new_digest.0.into())
        .await
        .unwrap();
    let (node, cfg, _dir) = stack
        .join_with("e2e-kms-chip-7", KMS_MEASUREMENT, &[stack.url()], change)
        .await
        .expect("onboarded with the new configuration");
    assert_eq!(node.config_digest(), new_digest);
    assert_eq!(cfg.limits.nonce_ttl_secs, 30);
    let new_url = format!("http://{}", node.addr);
    let mut c2 = GuestClient::connect(&new_url).await.unwrap();
    let after = c2
        .get_app_key(&g, app.0 .0, stack.compose_hash, None, stack.root)
        .await
        .unwrap();
    assert_eq!(*after.disk_key, *before.disk_key, "same root, same keys");

    // The old configuration is withdrawn: the old node stops, the new one goes on.
    let tx = stack
        .fixture
        .governor
        .remove_kms_config(stack.config_digest)
        .await
        .unwrap();
    stack.wait_pinned(tx.block).await;
    match c
        .get_app_key(&g, app.0 .0, stack.compose_hash, None, stack.root)
        .await
    {
        Err(snpkms_guest::GuestClientError::Refused { code, message }) => {
            assert_eq!(code, tonic::Code::Unavailable, "{message}");
            assert!(message.contains("kms config not allowed"), "{message}");
        }
        other => panic!("the old configuration still serves: {:?}", other.err()),
    }
    c2.get_app_key(&g, app.0 .0, stack.compose_hash, None, stack.root)
        .await
        .expect("the new node serves");
    node.stop().await.unwrap();
}
