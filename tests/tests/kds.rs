//! Guests whose hosts supply no certificates (stock QEMU on bare metal) and guests of a cloud
//! provider signed by its VLEK (AWS), end to end: a KDS stand-in on loopback serves the
//! simulated chips' VCEKs at AMD's URL layout, and every answer goes through the verifier.

use snpkms_e2e::{authority, guest_on, Stack};
use snpkms_guest::GuestClientError;
use snpkms_kds::Document;
use snpkms_kms_node::config::RpcUrl;
use snpkms_platform::{Attestor, SimulatedAttestor};
use snpkms_simulator::SimulatedPlatform;
use snpkms_testkit::kds::KdsStandIn;
use snpkms_verifier::{Policy, Product, Verifier};
use tonic::Code;

fn bare_metal(chip: &str) -> SimulatedPlatform {
    SimulatedPlatform::new(authority(), Product::Milan, chip.as_bytes()).with_empty_cert_table()
}

/// Where KDS serves this platform's VCEK, read from one of its reports as a verifier would.
fn vcek_path(platform: &SimulatedPlatform) -> String {
    let verifier = Verifier::new(snpkms_verifier::TrustRoots::empty(), Policy::default());
    let report = platform.sign(&platform.default_fields());
    let id = verifier.vcek_id(&verifier.parse(&report).unwrap()).unwrap();
    Document::vcek(&id).url_path
}

fn serve_vcek(kds: &KdsStandIn, platform: &SimulatedPlatform) -> String {
    let path = vcek_path(platform);
    kds.serve(&path, platform.vcek_der(platform.tcb()));
    path
}

async fn get(stack: &Stack, guest: &SimulatedAttestor) -> Result<(), GuestClientError> {
    let mut client = stack.client().await;
    client
        .get_app_key(
            guest,
            stack.app().0 .0,
            stack.compose_hash,
            None,
            stack.root,
        )
        .await
        .map(|_| ())
}

fn refused(result: Result<(), GuestClientError>, want: Code) -> String {
    match result {
        Err(GuestClientError::Refused { code, message }) => {
            assert_eq!(code, want, "{message}");
            message
        }
        Err(e) => panic!("expected {want:?}, got {e}"),
        Ok(()) => panic!("keys released, expected {want:?}"),
    }
}

async fn with_kds(stack: &mut Stack, urls: Vec<String>) {
    stack.stop_node().await;
    stack.config.kds.urls = urls.into_iter().map(RpcUrl::Plain).collect();
    stack.start_node().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guest_whose_host_supplies_no_certificates_gets_its_keys_through_kds() {
    let mut stack = Stack::start().await;
    let kds = KdsStandIn::start().await;
    stack.allow_any_device().await;
    let platform = bare_metal("bare-metal-chip-1");
    let path = serve_vcek(&kds, &platform);
    let guest = guest_on(platform, &stack);
    assert!(guest.attest([0; 64]).unwrap().cert_table.is_empty());

    // A node with no KDS URL (offline) has only its store, which lacks this chip's VCEK.
    let message = refused(get(&stack, &guest).await, Code::Unavailable);
    assert!(message.contains("not in the store"), "{message}");

    with_kds(&mut stack, vec![kds.url()]).await;
    get(&stack, &guest).await.expect("keys through KDS");
    assert_eq!(kds.requests(&path), 1);
    // The second request makes no fetch.
    get(&stack, &guest).await.expect("keys again");
    assert_eq!(kds.requests(&path), 1);
    let metrics_addr = stack.node.as_ref().unwrap().metrics_addr.unwrap();
    let metrics = snpkms_e2e::metrics_text(&metrics_addr.to_string()).await;
    assert!(
        metrics.contains(r#"snpkms_kds_total{outcome="fetched",reason=""} 1"#),
        "{metrics}"
    );

    // Restarted with no route to any KDS, it serves from its disk cache.
    with_kds(&mut stack, vec![]).await;
    get(&stack, &guest).await.expect("keys from the store");
    assert_eq!(kds.total_requests(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn kds_down_is_unavailable_and_a_lying_kds_is_refused() {
    let mut stack = Stack::start().await;
    stack.allow_any_device().await;
    let kds = KdsStandIn::start().await;
    with_kds(&mut stack, vec![kds.url()]).await;

    // Down: UNAVAILABLE, naming what could not be had and from where; served once it is back.
    let platform = bare_metal("bare-metal-chip-2");
    serve_vcek(&kds, &platform);
    let guest = guest_on(platform, &stack);
    kds.set_down(true);
    let message = refused(get(&stack, &guest).await, Code::Unavailable);
    assert!(
        message.contains("could not get the VCEK for Milan chip"),
        "{message}"
    );
    assert!(message.contains(&kds.url()), "{message}");
    kds.set_down(false);
    get(&stack, &guest).await.expect("served once KDS is back");

    // Another chip's genuine (simulator-signed) VCEK where this chip's should be: refused as
    // unauthenticated, and not kept.
    let victim = bare_metal("bare-metal-chip-3");
    let other = bare_metal("bare-metal-chip-4");
    kds.serve(&vcek_path(&victim), other.vcek_der(other.tcb()));
    let victim_path = vcek_path(&victim);
    let guest = guest_on(victim, &stack);
    let message = refused(get(&stack, &guest).await, Code::Unauthenticated);
    assert!(message.contains("does not verify"), "{message}");
    let message = refused(get(&stack, &guest).await, Code::Unauthenticated);
    assert!(message.contains("does not verify"), "{message}");
    assert_eq!(
        kds.requests(&victim_path),
        2,
        "refused copies are not cached"
    );
    let store = stack.config.data_dir.join("kds/vcek/Milan");
    let kept: Vec<_> = std::fs::read_dir(&store)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert_eq!(kept.len(), 1, "only chip 2's VCEK is kept: {kept:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vlek_guest_gets_keys_only_where_allowed() {
    let mut stack = Stack::start().await;
    let platform = SimulatedPlatform::new(authority(), Product::Milan, b"aws-chip-1")
        .with_vlek("CN=cc-sim-1.example.com");
    let guest = guest_on(platform, &stack);

    // The node's policy takes VCEK-signed reports only (the default).
    let message = refused(get(&stack, &guest).await, Code::Unauthenticated);
    assert!(message.contains("allow_vlek"), "{message}");

    // Allowed by the node's (sealed) policy, it still has no device identity: an app that
    // lists devices refuses it, one that allows any device serves it.
    stack
        .reconfigure(|cfg| {
            cfg.policy = Policy {
                allow_vlek: true,
                allowed_csp_ids: vec!["CN=cc-sim-1.example.com".into()],
                ..cfg.policy.clone()
            }
        })
        .await;
    let message = refused(get(&stack, &guest).await, Code::PermissionDenied);
    assert!(message.contains("no device identity"), "{message}");
    stack.allow_any_device().await;
    stack.settle().await;
    get(&stack, &guest)
        .await
        .expect("a VLEK guest of an app allowing any device");

    // Another provider's VLEK is not on the node's list.
    let elsewhere = SimulatedPlatform::new(authority(), Product::Milan, b"other-cloud-chip")
        .with_vlek("CN=cc-other.example.com");
    let message = refused(
        get(&stack, &guest_on(elsewhere, &stack)).await,
        Code::Unauthenticated,
    );
    assert!(message.contains("allowed_csp_ids"), "{message}");
}
