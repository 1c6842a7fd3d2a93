//! `snpkms node bootstrap` prints KMS info with evidence binding it; `node check-bootstrap` lets
//! governance check that before registering, and refuses evidence for other KMS info, and
//! evidence the registry would refuse (its minimum TCB, KMS images and chips).

use snpkms_chain_client::Address;
use snpkms_e2e::node_config;
use std::process::Command;

/// Bootstraps a simulated node on `chip` in `dir` with `snpkms node bootstrap`: its
/// configuration file and what the command printed.
fn bootstrap_node(dir: &std::path::Path, chip: &str) -> (std::path::PathBuf, Vec<u8>) {
    let cfg = node_config(
        "http://127.0.0.1:1",
        Address::from([1; 20]),
        &dir.join("data"),
        chip,
    );
    let config = dir.join("node.toml");
    std::fs::write(&config, cfg.to_toml().unwrap()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_snpkms"))
        .args(["node", "bootstrap", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (config, out.stdout)
}

#[tokio::test(flavor = "multi_thread")]
async fn bootstrap_evidence_binds_the_kms_info() {
    let f = snpkms_testkit::deploy_fixture().await;
    let (rpc_url, registry) = (f.chain.url.clone(), f.deployment.registry.to_string());
    let dir = tempfile::tempdir().unwrap();
    let (config, out) = bootstrap_node(dir.path(), "bootstrap-check-chip");
    let bootstrap = dir.path().join("bootstrap.json");
    std::fs::write(&bootstrap, &out).unwrap();
    let sim_root = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../simulator/fixtures/ark-milan.pem"
    );

    let check = |file: &std::path::Path, roots: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_snpkms"));
        cmd.args(["node", "check-bootstrap", "--bootstrap"])
            .arg(file)
            .args(["--rpc-url", &rpc_url, "--registry", &registry]);
        for r in roots {
            cmd.args(["--extra-root", r]);
        }
        cmd.output().unwrap()
    };
    let ok = check(&bootstrap, &[sim_root]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(
        text.contains(&hex::encode(snpkms_testkit::KMS_MEASUREMENT)),
        "{text}"
    );
    // The evidence commits to the configuration digest, which `node config-digest` prints.
    let digest = Command::new(env!("CARGO_BIN_EXE_snpkms"))
        .args(["node", "config-digest", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(digest.status.success());
    let digest = String::from_utf8(digest.stdout).unwrap();
    let digest = digest.trim();
    assert_eq!(digest.len(), 66, "{digest}");
    assert!(
        text.contains(&format!("config digest        {digest}")),
        "{text}"
    );

    // Without the simulator root: not evidence of real hardware.
    let untrusted = check(&bootstrap, &[]);
    assert_eq!(untrusted.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&untrusted.stderr).contains("not a pinned root"));

    // Someone swaps in their own root signing address, or another configuration digest.
    for (field, value) in [
        ("root_signing_address", format!("0x{}", "42".repeat(20))),
        ("config_digest", format!("0x{}", "42".repeat(32))),
    ] {
        let mut json: serde_json::Value = serde_json::from_slice(&out).unwrap();
        json[field] = value.into();
        let swapped = dir.path().join("swapped.json");
        std::fs::write(&swapped, json.to_string()).unwrap();
        let refused = check(&swapped, &[sim_root]);
        assert_eq!(refused.status.code(), Some(1), "{field}");
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("does not bind"),
            "{field}"
        );
    }

    // What the registry holds decides too: with only listed chips allowed, this chip is not;
    // listed, it is; a product without a minimum TCB is refused.
    f.governor.set_any_kms_chip_allowed(false).await.unwrap();
    let refused = check(&bootstrap, &[sim_root]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("kms chip not allowed"), "{stderr}");
    let chip = text
        .lines()
        .find_map(|l| l.strip_prefix("chip id"))
        .unwrap()
        .trim()
        .to_string();
    f.governor
        .add_kms_chip(&hex::decode(&chip).unwrap())
        .await
        .unwrap();
    let ok = check(&bootstrap, &[sim_root]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    f.governor
        .remove_kms_measurement(&snpkms_testkit::KMS_MEASUREMENT)
        .await
        .unwrap();
    let refused = check(&bootstrap, &[sim_root]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("kms measurement not allowed"), "{stderr}");
}

/// A bare-metal node's host supplies no certificates: its bootstrap evidence comes without a
/// VCEK, and `check-bootstrap --kds` fetches it (here from a KDS stand-in serving the simulated
/// chip's VCEK) and checks it against the roots given.
#[tokio::test(flavor = "multi_thread")]
async fn a_bare_metal_bootstrap_is_checked_with_a_vcek_from_kds() {
    use snpkms_simulator::SimulatedPlatform;
    use snpkms_verifier::{Policy, TrustRoots, Verifier};
    let f = snpkms_testkit::deploy_fixture().await;
    let (rpc_url, registry) = (f.chain.url.clone(), f.deployment.registry.to_string());
    let dir = tempfile::tempdir().unwrap();
    let chip = "bare-metal-bootstrap-chip";
    let (_, out) = bootstrap_node(dir.path(), chip);
    let mut json: serde_json::Value = serde_json::from_slice(&out).unwrap();
    json["cert_table"] = "".into();
    let bootstrap = dir.path().join("bootstrap.json");
    std::fs::write(&bootstrap, serde_json::to_vec(&json).unwrap()).unwrap();

    let kds = snpkms_testkit::kds::KdsStandIn::start().await;
    let platform = SimulatedPlatform::new(
        snpkms_e2e::authority(),
        snpkms_verifier::Product::Milan,
        chip.as_bytes(),
    );
    let verifier = Verifier::new(TrustRoots::empty(), Policy::default());
    let report = hex::decode(json["report"].as_str().unwrap()).unwrap();
    let id = verifier.vcek_id(&verifier.parse(&report).unwrap()).unwrap();
    kds.serve(
        &snpkms_kds::Document::vcek(&id).url_path,
        platform.vcek_der(id.tcb),
    );
    // The simulator's ASK and ARK, as AMD's come compiled in.
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../simulator/fixtures");
    let sim_chain = dir.path().join("sim-ask-ark.pem");
    std::fs::write(
        &sim_chain,
        [
            std::fs::read(format!("{fixtures}/ask-milan.pem")).unwrap(),
            std::fs::read(format!("{fixtures}/ark-milan.pem")).unwrap(),
        ]
        .concat(),
    )
    .unwrap();

    let check = |with_kds: bool| {
        let (bootstrap, sim_chain, rpc_url, registry, url) = (
            bootstrap.clone(),
            sim_chain.clone(),
            rpc_url.clone(),
            registry.clone(),
            kds.url(),
        );
        tokio::task::spawn_blocking(move || {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_snpkms"));
            cmd.args(["node", "check-bootstrap", "--bootstrap"])
                .arg(&bootstrap)
                .arg("--extra-root")
                .arg(&sim_chain)
                .args(["--rpc-url", &rpc_url, "--registry", &registry]);
            if with_kds {
                cmd.args(["--kds", &url]);
            }
            cmd.output().unwrap()
        })
    };
    let without = check(false).await.unwrap();
    assert_eq!(without.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&without.stderr).contains("no VCEK"),
        "{}",
        String::from_utf8_lossy(&without.stderr)
    );
    let with = check(true).await.unwrap();
    assert!(
        String::from_utf8_lossy(&with.stdout).contains("the evidence binds this KMS info"),
        "{}\n{}",
        String::from_utf8_lossy(&with.stdout),
        String::from_utf8_lossy(&with.stderr)
    );
    assert_eq!(kds.total_requests(), 1);
}
