//! What a KMS node's host writes (its configuration file and environment) cannot change what
//! the node trusts: the process refuses to start, and says why.

use snpkms_chain_client::Address;
use snpkms_e2e::{node_config, Stack};
use snpkms_kms_node::config::PlatformConfig;
use std::process::Command;

fn snpkms() -> Command {
    Command::new(env!("CARGO_BIN_EXE_snpkms"))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_environment_override_of_a_security_setting_stops_the_node() {
    let mut stack = Stack::start().await;
    stack.stop_node().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(&config, stack.config.to_toml().unwrap()).unwrap();
    let sealed = format!("{:#x}", stack.config_digest);
    for (var, value) in [
        ("SNPKMS_NODE__POLICY__ALLOW_DEBUG", "true"),
        ("SNPKMS_NODE__CHAIN__MAX_STALENESS_SECS", "99999999"),
        ("SNPKMS_NODE__LIMITS__NONCE_TTL_SECS", "86400"),
    ] {
        let out = snpkms()
            .args(["node", "run", "--config"])
            .arg(&config)
            .env(var, value)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{var}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("the security configuration changed"),
            "{var}: {err}"
        );
        assert!(
            err.contains(&sealed),
            "{var}: names the sealed digest: {err}"
        );
        // ... and the one it has, which `config-digest` prints with the same environment.
        let now = snpkms()
            .args(["node", "config-digest", "--config"])
            .arg(&config)
            .env(var, value)
            .output()
            .unwrap();
        let now = String::from_utf8(now.stdout).unwrap();
        assert!(err.contains(now.trim()), "{var}: {err}");
        assert_ne!(now.trim(), sealed);
    }
}

#[test]
fn a_hardware_node_trusts_only_amd_roots_whatever_its_configuration_says() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = node_config(
        "http://127.0.0.1:1",
        Address::from([1; 20]),
        &dir.path().join("data"),
        "unused",
    );
    cfg.platform = PlatformConfig::Hardware;
    let sim_root = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../simulator/fixtures/ark-milan.pem"
    );
    let amd_root = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../verifier/testdata/amd/roots/milan-ask-ark.pem"
    );
    let config = dir.path().join("node.toml");
    let run = |cfg: &snpkms_kms_node::config::NodeConfig, env: Option<(&str, &str)>| {
        std::fs::write(&config, cfg.to_toml().unwrap()).unwrap();
        let mut cmd = snpkms();
        cmd.args(["node", "run", "--config"]).arg(&config);
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };

    // The simulator root, from the file or from the environment.
    let err = run(&cfg, None);
    assert!(err.contains("never trusts the simulator root"), "{err}");
    let mut no_sim = cfg.clone();
    no_sim.trust.simulator_root = false;
    let err = run(
        &no_sim,
        Some(("SNPKMS_NODE__TRUST__SIMULATOR_ROOT", "true")),
    );
    assert!(err.contains("never trusts the simulator root"), "{err}");

    // An extra root that is not AMD's (the simulator's ARK under another name).
    let mut extra = no_sim.clone();
    extra.trust.extra_roots = vec![sim_root.into()];
    let err = run(&extra, None);
    assert!(err.contains("is not one of AMD's"), "{err}");

    // AMD's own root is accepted as an extra root: the node gets as far as its hardware.
    extra.trust.extra_roots = vec![amd_root.into()];
    let err = run(&extra, None);
    assert!(
        err.contains("SEV-SNP guest") || err.contains("platform"),
        "{err}"
    );
}

#[test]
fn get_key_without_a_trusted_root_refuses_to_ask() {
    // Whoever answers at --kms could name any root it likes: without --expected-root or a
    // chain read, the guest does not ask at all.
    let out = snpkms()
        .args([
            "get-key",
            "--kms",
            "http://127.0.0.1:1",
            "--app-id",
            &format!("0x{}", "11".repeat(20)),
            "--compose-hash",
            &format!("0x{}", "22".repeat(32)),
            "--source",
            "simulator",
            "--sim-measurement",
            &"33".repeat(48),
        ])
        .env_remove("SNPKMS_RPC_URL")
        .env_remove("SNPKMS_REGISTRY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--expected-root"), "{err}");
    assert!(err.contains("--rpc-url"), "{err}");
}
