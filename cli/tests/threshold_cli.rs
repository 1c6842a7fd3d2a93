//! The threshold mode from the command line, every step a real `snpkms` process: three nodes'
//! `snpkms node keygen` against each other over loopback gRPC, `snpkms gov set-threshold-group`
//! checking their outputs and recording the share set on anvil, the nodes serving from their
//! sealed shares (`snpkms node run`), and `snpkms get-key` reading the share set from the chain
//! and combining two partials, with a node down, and refusing with one.

mod common;

use common::{s, snpkms_async};
use snpkms_e2e::threshold::Participants;
use snpkms_e2e::{GUEST_CHIP, GUEST_IMAGE};
use snpkms_testkit::deploy_fixture;
use std::process::{Child, Command, Stdio};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn three_node_processes_generate_shares_and_get_key_combines_any_two() {
    let fixture = deploy_fixture().await;
    snpkms_e2e::allow_simulated_guests(&fixture).await;
    let participants = Participants::new(&fixture, 3).await;
    let dir = tempfile::tempdir().unwrap();
    let session = hex::encode([0x5e; 32]);

    // The three key generations, each its own process.
    let mut configs = Vec::new();
    let mut keygens = Vec::new();
    for (k, cfg) in participants.configs.iter().enumerate() {
        let i = k + 1;
        let path = dir.path().join(format!("node{i}.toml"));
        std::fs::write(&path, cfg.to_toml().unwrap()).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_snpkms"));
        cmd.args([
            "node",
            "keygen",
            "--config",
            s(&path),
            "--session",
            &session,
        ])
        .args([
            "--index",
            &i.to_string(),
            "--threshold",
            "2",
            "--timeout-secs",
            "60",
        ]);
        for (j, other) in participants.configs.iter().enumerate() {
            if j != k {
                cmd.args(["--peer", &format!("{}=http://{}", j + 1, other.listen)]);
            }
        }
        keygens.push(
            cmd.stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        configs.push(path);
    }
    let mut outputs = Vec::new();
    for (k, child) in keygens.into_iter().enumerate() {
        let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "keygen {}: {}",
            k + 1,
            text(&out.stderr)
        );
        let path = dir.path().join(format!("keygen{}.json", k + 1));
        std::fs::write(&path, &out.stdout).unwrap();
        outputs.push(path);
    }

    // Governance checks the three outputs and records the share set.
    let key = dir.path().join("governor.key");
    std::fs::write(&key, fixture.chain.key_hex(0)).unwrap();
    let registry = fixture.deployment.registry.to_string();
    let sim_root = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../simulator/fixtures/ark-milan.pem"
    );
    let mut args: Vec<String> = [
        "gov",
        "set-threshold-group",
        "--rpc-url",
        &fixture.chain.url,
        "--registry",
        &registry,
        "--key-file",
        s(&key),
        "--extra-root",
        sim_root,
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    // Two outputs of three: refused before anything is sent.
    let mut two = args.clone();
    for path in &outputs[..2] {
        two.extend(["--keygen".to_string(), s(path).to_string()]);
    }
    let refused = snpkms_async(two).await;
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr)
            .contains("the outputs cover participants [1, 2] but the share set names [1, 2, 3]"),
        "{}",
        text(&refused.stderr)
    );
    for path in &outputs {
        args.extend(["--keygen".to_string(), s(path).to_string()]);
    }
    let recorded = snpkms_async(args).await;
    assert!(recorded.status.success(), "{}", text(&recorded.stderr));

    // The nodes serve from their shares.
    let mut nodes = Vec::new();
    for path in &configs {
        let mut child = Command::new(env!("CARGO_BIN_EXE_snpkms"))
            .args(["node", "run", "--config", s(path)])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let ready = snpkms_local::wait_ready(stdout).expect("node ready");
        assert!(ready.serving, "{ready:?}");
        nodes.push(Some(Killed(child)));
    }

    let urls: Vec<String> = participants
        .configs
        .iter()
        .map(|c| format!("http://{}", c.listen))
        .collect();
    let get_key = |urls: Vec<String>| {
        let mut args: Vec<String> = vec!["get-key".into(), "--kms".into(), urls.join(",")];
        for a in [
            "--rpc-url",
            &fixture.chain.url,
            "--registry",
            &registry,
            "--read-at",
            "0",
            "--app-id",
            &fixture.app.to_string(),
            "--compose-hash",
            &hex::encode(snpkms_testkit::COMPOSE_HASH),
            "--source",
            "simulator",
            "--sim-chip-seed",
            GUEST_CHIP,
            "--sim-measurement",
            &hex::encode(GUEST_IMAGE),
            "--kms-timeout-secs",
            "5",
            "--json",
            "--print-secrets",
        ] {
            args.push(a.to_string());
        }
        snpkms_async(args)
    };
    let all = get_key(urls.clone()).await;
    assert!(all.status.success(), "{}", text(&all.stderr));
    let all: serde_json::Value = serde_json::from_slice(&all.stdout).unwrap();
    assert_eq!(all["mode"], "threshold");
    assert_eq!(all["nodes_used"], serde_json::json!([1, 2]));

    // The threshold KMS signature: t signatures of distinct nodes, which the registry accepts
    // on-chain for this address and epoch, and not with fewer or for another address.
    // (Read at the latest block: the share set was recorded a block ago.)
    let mut cfg = snpkms_chain_client::ChainConfig::new(
        snpkms_chain_client::RpcEndpoint::new(&fixture.chain.url).unwrap(),
        registry.parse().unwrap(),
    );
    cfg.read_at = "0".parse().unwrap();
    let chain = snpkms_chain_client::ChainClient::connect(cfg)
        .await
        .unwrap();
    let sigs: Vec<Vec<u8>> = all["kms_signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| hex::decode(s["signature"].as_str().unwrap().trim_start_matches("0x")).unwrap())
        .collect();
    assert_eq!(sigs.len(), 2);
    let address: snpkms_chain_client::Address = all["app_signing_address"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let epoch = u32::try_from(all["key_epoch"].as_u64().unwrap()).unwrap();
    let app = fixture.app;
    assert!(chain
        .verify_app_key_threshold(app, address, epoch, &sigs)
        .await
        .unwrap());
    assert!(!chain
        .verify_app_key_threshold(app, address, epoch, &sigs[..1])
        .await
        .unwrap());
    let twice = vec![sigs[0].clone(), sigs[0].clone()];
    assert!(!chain
        .verify_app_key_threshold(app, address, epoch, &twice)
        .await
        .unwrap());
    assert!(!chain
        .verify_app_key_threshold(
            app,
            snpkms_chain_client::Address::repeat_byte(7),
            epoch,
            &sigs
        )
        .await
        .unwrap());

    // Node 1 down: nodes 2 and 3 give the same keys, and node 1 is named.
    nodes[0] = None;
    let two = get_key(urls.clone()).await;
    assert!(two.status.success(), "{}", text(&two.stderr));
    let two: serde_json::Value = serde_json::from_slice(&two.stdout).unwrap();
    assert_eq!(two["nodes_used"], serde_json::json!([2, 3]));
    assert_eq!(two["disk_key"], all["disk_key"]);
    assert_eq!(two["signing_key"], all["signing_key"]);
    assert_eq!(two["nodes_skipped"][0]["node"], urls[0]);

    // Node 2 down too: one partial, nothing derived, a clear error naming every node.
    nodes[1] = None;
    let one = get_key(urls.clone()).await;
    assert_eq!(one.status.code(), Some(1));
    let err = text(&one.stderr);
    assert!(
        err.contains("1 valid partial(s) for one epoch, 2 needed"),
        "{err}"
    );
    assert!(err.contains(&urls[0]) && err.contains(&urls[1]), "{err}");
    assert!(one.stdout.is_empty(), "no keys printed");
}
