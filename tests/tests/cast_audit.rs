//! Auditing with cast alone: the contracts stay auditable without snpkms. The test deploys the
//! committed artifacts with `cast send --create`, makes every event of KmsRegistry and AppAuth
//! happen (their ABIs list what "every" means, so a new event without a case here fails), reads
//! the history back with `cast logs --json` and decodes each log the way contracts/README.md
//! tells an auditor to: topic 0 from `cast sig-event`, indexed arguments from the topics with
//! `cast abi-decode`, the rest with `cast decode-event --sig`. Every decoded value is compared
//! with what the transaction set.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

/// One ABI event: its name and inputs (canonical type, indexed).
struct AbiEvent {
    name: String,
    inputs: Vec<(String, bool)>,
}

impl AbiEvent {
    /// `Name(type,type)`: what `cast sig-event` hashes into topic 0.
    fn signature(&self) -> String {
        let types: Vec<&str> = self.inputs.iter().map(|(t, _)| t.as_str()).collect();
        format!("{}({})", self.name, types.join(","))
    }

    /// `Name(type,...)` of the non-indexed inputs only: what `cast decode-event` decodes.
    fn data_signature(&self) -> String {
        let types: Vec<&str> = (self.inputs.iter())
            .filter(|(_, indexed)| !indexed)
            .map(|(t, _)| t.as_str())
            .collect();
        format!("{}({})", self.name, types.join(","))
    }
}

/// A Solidity ABI type in canonical form (tuples spelled out as `(t1,t2,...)`).
fn canonical_type(input: &Value) -> String {
    let ty = input["type"].as_str().expect("abi input type");
    match ty.strip_prefix("tuple") {
        Some(array_suffix) => {
            let parts: Vec<String> = (input["components"].as_array().expect("tuple components"))
                .iter()
                .map(canonical_type)
                .collect();
            format!("({}){array_suffix}", parts.join(","))
        }
        None => ty.to_string(),
    }
}

fn artifact(name: &str) -> Value {
    let path = snpkms_local::workspace_root().join(format!("contracts/artifacts/{name}.json"));
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn abi_events(artifact: &Value) -> Vec<AbiEvent> {
    (artifact["abi"].as_array().unwrap().iter())
        .filter(|item| item["type"] == "event")
        .map(|event| AbiEvent {
            name: event["name"].as_str().unwrap().to_string(),
            inputs: (event["inputs"].as_array().unwrap().iter())
                .map(|input| (canonical_type(input), input["indexed"] == true))
                .collect(),
        })
        .collect()
}

/// Runs cast with `args`; its stdout, trimmed. Fails the test with cast's stderr otherwise.
struct Cast {
    bin: PathBuf,
    rpc: String,
}

impl Cast {
    fn run(&self, args: &[&str]) -> String {
        let output = Command::new(&self.bin).args(args).output().unwrap();
        assert!(
            output.status.success(),
            "cast {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap().trim().to_string()
    }

    /// `cast send` from the account with private key `key`; the receipt.
    fn send(&self, key: &str, args: &[&str]) -> Value {
        let mut all = vec![
            "send",
            "--json",
            "--rpc-url",
            &self.rpc,
            "--private-key",
            key,
        ];
        all.extend_from_slice(args);
        let receipt: Value = serde_json::from_str(&self.run(&all)).unwrap();
        assert_eq!(
            receipt["status"], "0x1",
            "cast {args:?} reverted: {receipt}"
        );
        receipt
    }

    fn deploy(&self, key: &str, code: &str) -> String {
        let receipt = self.send(key, &["--create", code]);
        receipt["contractAddress"].as_str().unwrap().to_string()
    }

    fn call(&self, to: &str, sig: &str, args: &[&str]) -> String {
        let mut all = vec!["call", "--rpc-url", &self.rpc, to, sig];
        all.extend_from_slice(args);
        self.run(&all)
    }
}

fn bytecode(artifact: &Value) -> &str {
    artifact["bytecode"]["object"].as_str().unwrap()
}

/// Decodes one log the auditor's way; (event name, each argument in declaration order).
fn decode(cast: &Cast, events: &BTreeMap<String, &AbiEvent>, log: &Value) -> (String, Vec<Value>) {
    let topics: Vec<&str> = (log["topics"].as_array().unwrap().iter())
        .map(|t| t.as_str().unwrap())
        .collect();
    let event = events
        .get(topics[0])
        .unwrap_or_else(|| panic!("a log whose topic 0 no ABI event has: {log}"));
    let data = log["data"].as_str().unwrap();
    let decoded: Value = serde_json::from_str(&cast.run(&[
        "decode-event",
        "--json",
        "--sig",
        &event.data_signature(),
        data,
    ]))
    .unwrap();
    let mut data_values = decoded.as_array().unwrap().clone().into_iter();
    let mut indexed_topics = topics[1..].iter();
    let values = (event.inputs.iter())
        .map(|(ty, indexed)| {
            if *indexed {
                let topic = indexed_topics.next().expect("a topic per indexed input");
                let out: Value = serde_json::from_str(&cast.run(&[
                    "abi-decode",
                    "--json",
                    &format!("f()({ty})"),
                    topic,
                ]))
                .unwrap();
                out[0].clone()
            } else {
                data_values.next().expect("a value per non-indexed input")
            }
        })
        .collect();
    assert!(
        indexed_topics.next().is_none(),
        "more topics than indexed inputs: {log}"
    );
    (event.name.clone(), values)
}

/// Every log of `address` from block 0, decoded.
fn history(
    cast: &Cast,
    events: &BTreeMap<String, &AbiEvent>,
    address: &str,
) -> Vec<(String, Vec<Value>)> {
    let logs: Value = serde_json::from_str(&cast.run(&[
        "logs",
        "--json",
        "--rpc-url",
        &cast.rpc,
        "--from-block",
        "0",
        "--address",
        address,
    ]))
    .unwrap();
    (logs.as_array().unwrap().iter())
        .map(|log| decode(cast, events, log))
        .collect()
}

/// Topic 0 of each event, computed by cast from the ABI's signature.
fn by_topic<'a>(cast: &Cast, events: &'a [AbiEvent]) -> BTreeMap<String, &'a AbiEvent> {
    (events.iter())
        .map(|event| (cast.run(&["sig-event", &event.signature()]), event))
        .collect()
}

fn checksummed(cast: &Cast, address: &str) -> Value {
    json!(cast.run(&["to-check-sum-address", address]))
}

fn names(events: &[AbiEvent]) -> BTreeSet<String> {
    events.iter().map(|e| e.name.clone()).collect()
}

fn hex_of(byte: &str, len: usize) -> String {
    format!("0x{}", byte.repeat(len))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_contract_event_is_produced_and_decoded_with_cast_alone() {
    let root = snpkms_local::workspace_root();
    let anvil = snpkms_local::anvil_path().unwrap();
    let chain = snpkms_local::LocalChain::spawn(&anvil, "127.0.0.1".parse().unwrap(), &[]).unwrap();
    let cast = Cast {
        bin: root.join("node_modules/.bin/cast"),
        rpc: chain.url.clone(),
    };
    assert!(
        Path::new(&cast.bin).is_file(),
        "scripts/setup installs cast"
    );
    let governor_key = format!("0x{}", chain.key_hex(0));
    let governor = checksummed(&cast, &chain.signer(0).address().to_string());
    let app_owner_key = format!("0x{}", chain.key_hex(1));
    let app_owner = checksummed(&cast, &chain.signer(1).address().to_string());
    let successor_key = format!("0x{}", chain.key_hex(2));
    let successor = checksummed(&cast, &chain.signer(2).address().to_string());

    let registry_artifact = artifact("KmsRegistry");
    let app_artifact = artifact("AppAuth");
    let registry_events = abi_events(&registry_artifact);
    let app_events = abi_events(&app_artifact);
    let readme = std::fs::read_to_string(root.join("contracts/README.md")).unwrap();
    for name in names(&registry_events).union(&names(&app_events)) {
        assert!(
            readme.contains(name),
            "contracts/README.md does not name event {name}"
        );
    }

    // Deploy exactly as an operator with cast would: implementation, then the proxy running
    // initialize(governor).
    let g = governor_key.as_str();
    let implementation = cast.deploy(g, bytecode(&registry_artifact));
    let init = cast.run(&[
        "calldata",
        "initialize(address)",
        governor.as_str().unwrap(),
    ]);
    let proxy_args = cast.run(&[
        "abi-encode",
        "constructor(address,bytes)",
        &implementation,
        &init,
    ]);
    let proxy_code = format!(
        "{}{}",
        bytecode(&artifact("ERC1967Proxy")),
        &proxy_args[2..]
    );
    let registry = cast.deploy(g, &proxy_code);
    let r = registry.as_str();

    let root_address = "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf";
    let tls_key = "0x04aabbcc";
    let os_image = hex_of("11", 48);
    let kms_measurement = hex_of("22", 48);
    let chip = hex_of("31", 64);
    let config_digest = hex_of("44", 32);
    let salt = hex_of("55", 32);
    let compose = hex_of("ab", 32);
    let device = hex_of("cd", 32);
    cast.send(g, &[r, "setKmsInfo(address,bytes)", root_address, tls_key]);
    cast.send(g, &[r, "bumpKeyEpoch()"]);
    cast.send(g, &[r, "addOsImage(bytes)", &os_image]);
    cast.send(g, &[r, "removeOsImage(bytes)", &os_image]);
    cast.send(g, &[r, "addKmsMeasurement(bytes)", &kms_measurement]);
    cast.send(g, &[r, "removeKmsMeasurement(bytes)", &kms_measurement]);
    cast.send(g, &[r, "addKmsChip(bytes)", &chip]);
    cast.send(g, &[r, "removeKmsChip(bytes)", &chip]);
    cast.send(
        g,
        &[
            r,
            "setMinTcb(uint8,(uint8,uint8,uint8,uint8,uint8))",
            "2",
            "(1,2,3,4,5)",
        ],
    );
    cast.send(g, &[r, "setAnyKmsChipAllowed(bool)", "true"]);
    cast.send(g, &[r, "addKmsConfig(bytes32)", &config_digest]);
    cast.send(g, &[r, "removeKmsConfig(bytes32)", &config_digest]);
    // A threshold share set of two nodes (the contract checks encodings, the guest the math).
    let group_key = format!("0x02{}", "66".repeat(32));
    let share1 = format!("0x03{}", "77".repeat(32));
    let share2 = format!("0x02{}", "88".repeat(32));
    let signer1 = "0x1111111111111111111111111111111111111111";
    let signer2 = "0x2222222222222222222222222222222222222222";
    cast.send(
        g,
        &[
            r,
            "setThresholdGroup(uint16,bytes,(uint16,bytes,address)[])",
            "2",
            &group_key,
            &format!("[(1,{share1},{signer1}),(2,{share2},{signer2})]"),
        ],
    );
    // An app, registered and configured by its owner.
    let o = app_owner_key.as_str();
    let app = cast.call(
        r,
        "predictAppAddress(address,bytes32)(address)",
        &[app_owner.as_str().unwrap(), &salt],
    );
    cast.send(o, &[r, "registerApp(bytes32)", &salt]);
    let a = app.as_str();
    cast.send(o, &[a, "addComposeHash(bytes32)", &compose]);
    cast.send(o, &[a, "removeComposeHash(bytes32)", &compose]);
    cast.send(o, &[a, "addDevice(bytes32)", &device]);
    cast.send(o, &[a, "removeDevice(bytes32)", &device]);
    cast.send(o, &[a, "setAllowAnyDevice(bool)", "true"]);
    cast.send(o, &[a, "disable()"]);
    cast.send(o, &[a, "enable()"]);
    cast.send(
        o,
        &[a, "transferOwnership(address)", successor.as_str().unwrap()],
    );
    cast.send(&successor_key, &[a, "acceptOwnership()"]);
    // The registry: an upgrade, a change of governor, and the end of upgrades.
    let next_implementation = cast.deploy(g, bytecode(&registry_artifact));
    cast.send(
        g,
        &[
            r,
            "upgradeToAndCall(address,bytes)",
            &next_implementation,
            "0x",
        ],
    );
    cast.send(
        g,
        &[r, "transferOwnership(address)", successor.as_str().unwrap()],
    );
    cast.send(&successor_key, &[r, "acceptOwnership()"]);
    cast.send(&successor_key, &[r, "disableUpgrades()"]);

    let key_of = |bytes: &str| json!(cast.run(&["keccak", bytes]));
    let zero = json!(checksummed(
        &cast,
        "0x0000000000000000000000000000000000000000"
    ));
    let registry_history = history(&cast, &by_topic(&cast, &registry_events), r);
    let expected_registry = vec![
        ("Upgraded", vec![checksummed(&cast, &implementation)]),
        ("OwnershipTransferred", vec![zero.clone(), governor.clone()]),
        ("Initialized", vec![json!(2)]),
        (
            "KmsInfoSet",
            vec![checksummed(&cast, root_address), json!(tls_key), json!(0)],
        ),
        ("KeyEpochBumped", vec![json!(1)]),
        ("OsImageAdded", vec![key_of(&os_image), json!(os_image)]),
        ("OsImageRemoved", vec![key_of(&os_image), json!(os_image)]),
        (
            "KmsMeasurementAdded",
            vec![key_of(&kms_measurement), json!(kms_measurement)],
        ),
        (
            "KmsMeasurementRemoved",
            vec![key_of(&kms_measurement), json!(kms_measurement)],
        ),
        ("KmsChipAdded", vec![key_of(&chip), json!(chip)]),
        ("KmsChipRemoved", vec![key_of(&chip), json!(chip)]),
        ("MinTcbSet", vec![json!(2), json!([1, 2, 3, 4, 5])]),
        ("AnyKmsChipAllowedSet", vec![json!(true)]),
        ("KmsConfigAdded", vec![json!(config_digest)]),
        ("KmsConfigRemoved", vec![json!(config_digest)]),
        (
            "ThresholdGroupSet",
            vec![json!(1), json!(2), json!(group_key)],
        ),
        (
            "ThresholdNodeSet",
            vec![
                json!(1),
                json!(1),
                json!(share1),
                checksummed(&cast, signer1),
            ],
        ),
        (
            "ThresholdNodeSet",
            vec![
                json!(1),
                json!(2),
                json!(share2),
                checksummed(&cast, signer2),
            ],
        ),
        (
            "AppRegistered",
            vec![checksummed(&cast, &app), app_owner.clone(), json!(salt)],
        ),
        ("Upgraded", vec![checksummed(&cast, &next_implementation)]),
        (
            "OwnershipTransferStarted",
            vec![governor.clone(), successor.clone()],
        ),
        (
            "OwnershipTransferred",
            vec![governor.clone(), successor.clone()],
        ),
        ("UpgradesDisabled", vec![]),
    ];
    assert_history("KmsRegistry", &registry_history, &expected_registry);

    let app_history = history(&cast, &by_topic(&cast, &app_events), a);
    let app_id = checksummed(&cast, a);
    let expected_app = vec![
        (
            "OwnershipTransferred",
            vec![zero.clone(), app_owner.clone()],
        ),
        ("Initialized", vec![json!(1)]),
        ("ComposeHashAdded", vec![app_id.clone(), json!(compose)]),
        ("ComposeHashRemoved", vec![app_id.clone(), json!(compose)]),
        ("DeviceAdded", vec![app_id.clone(), json!(device)]),
        ("DeviceRemoved", vec![app_id.clone(), json!(device)]),
        ("AllowAnyDeviceSet", vec![app_id.clone(), json!(true)]),
        ("AppDisabled", vec![app_id.clone()]),
        ("AppEnabled", vec![app_id.clone()]),
        (
            "OwnershipTransferStarted",
            vec![app_owner.clone(), successor.clone()],
        ),
        (
            "OwnershipTransferred",
            vec![app_owner.clone(), successor.clone()],
        ),
    ];
    assert_history("AppAuth", &app_history, &expected_app);

    // Every event either ABI declares is in a history: a new event needs a case above.
    for (contract, events, seen) in [
        ("KmsRegistry", &registry_events, &registry_history),
        ("AppAuth", &app_events, &app_history),
    ] {
        let seen: BTreeSet<String> = seen.iter().map(|(name, _)| name.clone()).collect();
        let missing: Vec<_> = names(events).difference(&seen).cloned().collect();
        assert!(
            missing.is_empty(),
            "{contract} events never produced: {missing:?}"
        );
    }
}

fn assert_history(contract: &str, got: &[(String, Vec<Value>)], want: &[(&str, Vec<Value>)]) {
    let got: Vec<(&str, &Vec<Value>)> = got.iter().map(|(n, v)| (n.as_str(), v)).collect();
    let want: Vec<(&str, &Vec<Value>)> = want.iter().map(|(n, v)| (*n, v)).collect();
    assert_eq!(got, want, "{contract}'s history as cast decodes it");
}
