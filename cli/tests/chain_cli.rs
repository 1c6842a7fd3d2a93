//! `snpkms gov`, `snpkms app` and `snpkms audit` against a real anvil: the CLI's effects are
//! checked through the library's own reads.

use serde_json::Value;
use snpkms_chain_client::{Address, ChainClient, ReadAt};
use snpkms_governance::Deployment;
use snpkms_testkit::{boot_info, spawn_anvil, TestChain, CHIP_ID, MIN_TCB};
use std::path::Path;
use std::process::{Command, Output};

struct Cli<'a> {
    chain: &'a TestChain,
    registry: Option<Address>,
    key: &'a str,
}

impl Cli<'_> {
    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_snpkms"));
        cmd.args(args)
            .env("SNPKMS_RPC_URL", &self.chain.url)
            .env("SNPKMS_OWNER_KEY", self.key)
            .env_remove("SNPKMS_REGISTRY")
            .env_remove("SNPKMS_APP");
        if let Some(r) = self.registry {
            cmd.env("SNPKMS_REGISTRY", r.to_string());
        }
        cmd.output().expect("run snpkms")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "snpkms {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }
}

#[tokio::test]
async fn govern_register_and_audit_through_the_cli() {
    let chain = spawn_anvil();
    // anvil's first default account governs, the second owns the app.
    let key0 = chain.signer(0).to_bytes().to_string();
    let key1 = chain.signer(1).to_bytes().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("deployment.json");
    let mut gov = Cli {
        chain: &chain,
        registry: None,
        key: &key0,
    };
    let printed = gov.ok(&["gov", "deploy", "--out", out_file.to_str().unwrap()]);
    let deployment = Deployment::read(&out_file).unwrap();
    assert_eq!(Deployment::from_json(&printed).unwrap(), deployment);
    gov.registry = Some(deployment.registry);

    let os_image = hex::encode([0x11u8; 48]);
    gov.json(&["gov", "add-os-image", "--measurement", &os_image, "--json"]);
    let tcb = [
        "--bootloader",
        "3",
        "--tee",
        "0",
        "--snp",
        "8",
        "--microcode",
        "115",
    ];
    let mut args = vec!["gov", "set-min-tcb", "--product", "milan"];
    args.extend(tcb);
    gov.ok(&args);

    // The app owner registers an app and allows a compose file and a chip.
    let owner = Cli {
        chain: &chain,
        registry: Some(deployment.registry),
        key: &key1,
    };
    let reg = owner.json(&["app", "register", "--salt", "my app", "--json"]);
    let app: Address = reg["app"].as_str().unwrap().parse().unwrap();
    assert!(reg["gas_used"].as_u64().unwrap() > 21_000);
    let compose = dir.path().join("compose.yaml");
    std::fs::write(&compose, "services: {}\n").unwrap();
    let app_s = app.to_string();
    owner.ok(&[
        "app",
        "add-compose",
        "--app",
        &app_s,
        "--compose",
        compose.to_str().unwrap(),
    ]);
    owner.ok(&[
        "app",
        "add-device",
        "--app",
        &app_s,
        "--chip-id",
        &hex::encode(CHIP_ID),
    ]);

    // What the library reads is what the CLI wrote.
    let compose_hash: [u8; 32] = sha256(&compose);
    let mut cfg = chain.config(deployment.registry);
    cfg.read_at = ReadAt::Confirmations(0);
    let client = ChainClient::connect(cfg).await.unwrap();
    let info = boot_info(app.0 .0, compose_hash, [0x11; 48]);
    let d = client.is_app_allowed(&info).await.unwrap();
    assert!(d.allowed, "{d:?}");
    assert_eq!(
        client
            .min_tcb(snpkms_verifier::Product::Milan)
            .await
            .unwrap(),
        MIN_TCB
    );

    // Refusals: exit status 1 and the contract's reason, decoded.
    let out = owner.run(&["gov", "add-os-image", "--measurement", &os_image]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("OwnableUnauthorizedAccount(0x70997970C51812dc3A010C7d01b50e0d17dc79C8)"),
        "{err}"
    );
    let out = gov.run(&["app", "disable", "--app", &app_s]);
    assert_eq!(out.status.code(), Some(1));
    // Bad input is a usage error, before any transaction.
    let out = gov.run(&["gov", "add-os-image", "--measurement", "1122"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected 48 bytes"));

    owner.ok(&["app", "disable", "--app", &app_s]);
    let show = owner.json(&["app", "show", "--app", &app_s, "--json"]);
    assert_eq!(show["enabled"], false);
    assert_eq!(
        show["compose_hashes"][0],
        format!("0x{}", hex::encode(compose_hash))
    );

    // The audit trail of the app, as JSON lines, in order.
    let lines = owner.ok(&["audit", "--app", &app_s, "--json"]);
    let events: Vec<String> = lines
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        events,
        [
            "OwnershipTransferred",
            "Initialized",
            "AppRegistered",
            "ComposeHashAdded",
            "DeviceAdded",
            "AppDisabled"
        ]
    );
    let table = owner.ok(&["audit", "--from", &deployment.block.to_string()]);
    assert!(table.lines().next().unwrap().contains("EVENT"));
    assert!(
        table.contains("OsImageAdded")
            && table.contains("MinTcbSet")
            && table.contains("AppDisabled")
    );
}

#[test]
fn a_missing_key_is_a_usage_error_naming_the_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_snpkms"))
        .args(["gov", "bump-epoch", "--rpc-url", "http://127.0.0.1:1"])
        .args(["--registry", "0x0000000000000000000000000000000000000001"])
        .args(["--key-env", "SNPKMS_TEST_NO_SUCH_KEY"])
        .env_remove("SNPKMS_TEST_NO_SUCH_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SNPKMS_TEST_NO_SUCH_KEY is not set"));
}

fn sha256(path: &Path) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(path).unwrap()).into()
}
