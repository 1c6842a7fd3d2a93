//! `snpkms node onboard` killed with SIGKILL in the middle restarts cleanly and can onboard
//! again; a half-written store from a crash never counts as a store.

use snpkms_e2e::{node_config, Stack};
use snpkms_kms_node::config::PlatformConfig;
use snpkms_testkit::KMS_MEASUREMENT;
use snpkms_verifier::Product;
use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_during_onboarding_then_onboard_again() {
    let stack = Stack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = node_config(
        &stack.proxy.url,
        stack.fixture.deployment.registry,
        &dir.path().join("data"),
        "crash-test-chip",
    );
    cfg.platform = PlatformConfig::Simulator {
        product: Product::Milan,
        chip_seed: "crash-test-chip".into(),
        measurement: hex::encode(KMS_MEASUREMENT),
    };
    let config_path = dir.path().join("node.toml");
    std::fs::write(&config_path, cfg.to_toml().unwrap()).unwrap();

    // A peer that accepts connections and never answers: the joiner waits mid-protocol.
    let hang = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hang_url = format!("http://{}", hang.local_addr().unwrap());
    let mut child = Command::new(env!("CARGO_BIN_EXE_snpkms"))
        .args(["node", "onboard", "--config"])
        .arg(&config_path)
        .args(["--peer", &hang_url])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (_conn, _) = tokio::task::spawn_blocking(move || hang.accept().unwrap())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(!cfg.data_dir.join("store").exists());

    // As if a crash had also interrupted the store's creation.
    std::fs::create_dir_all(cfg.data_dir.join("store.staging")).unwrap();
    std::fs::write(cfg.data_dir.join("store.staging/junk"), b"half written").unwrap();
    // `node run` refuses a node that has no complete store, and creates nothing.
    let run = Command::new(env!("CARGO_BIN_EXE_snpkms"))
        .args(["node", "run", "--config"])
        .arg(&config_path)
        .output()
        .unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("snpkms node onboard"));
    assert!(!cfg.data_dir.join("store").exists());

    let out = Command::new(env!("CARGO_BIN_EXE_snpkms"))
        .args(["node", "onboard", "--config"])
        .arg(&config_path)
        .args(["--peer", &stack.url()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!cfg.data_dir.join("store.staging").exists());
    let node = snpkms_kms_node::start(cfg).await.unwrap();
    assert_eq!(
        node.node.signing_address(),
        stack.node.as_ref().unwrap().node.signing_address()
    );
    node.stop().await.unwrap();

    // A second onboarding onto an existing store is refused: it would replace the root.
    let again = Command::new(env!("CARGO_BIN_EXE_snpkms"))
        .args(["node", "onboard", "--config"])
        .arg(&config_path)
        .args(["--peer", &stack.url()])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}
