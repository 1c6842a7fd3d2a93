//! The README's reference stays complete: every key a node's configuration has (every section,
//! every policy field, every limit) and every RPC of the proto appears in it. A field added to
//! the code without its line in the README fails here.

use snpkms_chain_client::Address;
use snpkms_kms_node::config::{ChainSection, NodeConfig, PlatformConfig, TlsConfig};
use snpkms_verifier::{Abi, HexBytes, Policy, Product, TcbVersion};
use std::collections::BTreeSet;
use std::path::PathBuf;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap()
}

/// The README from a heading to the next one.
fn section(text: &str, from: &str) -> String {
    let start = text
        .find(from)
        .unwrap_or_else(|| panic!("README has no {from:?}"));
    let rest = &text[start + from.len()..];
    let end = rest.find("\n## ").unwrap_or(rest.len());
    rest[..end].to_string()
}

/// A configuration with every optional part present and every policy field away from its
/// default, so that serialization leaves none out.
fn everything() -> NodeConfig {
    let mut cfg = NodeConfig::new(
        "127.0.0.1:1".parse().unwrap(),
        PathBuf::from("/var/lib/snpkms"),
        ChainSection::new(
            vec!["https://rpc.example".to_string().into()],
            Address::ZERO,
        ),
        PlatformConfig::Hardware,
    );
    cfg.metrics_listen = Some("127.0.0.1:2".parse().unwrap());
    cfg.tls = Some(TlsConfig {
        cert: "c".into(),
        key: "k".into(),
    });
    cfg.chain.chain_id = Some(1);
    cfg.trust.extra_roots = vec!["r".into()];
    cfg.trust.crls = vec!["c".into()];
    let tcb = TcbVersion {
        bootloader: 1,
        tee: 1,
        snp: 1,
        microcode: 1,
        fmc: 0,
    };
    cfg.policy = Policy {
        product_for_v2: Some(Product::Milan),
        allow_debug: true,
        allow_masked_chip_id: true,
        min_tcb: [(Product::Milan, tcb)].into(),
        allow_provisional_firmware: true,
        min_build: [(Product::Milan, 1)].into(),
        min_guest_policy_abi: Abi { major: 1, minor: 1 },
        allow_cxl: true,
        require_mem_aes_256_xts: true,
        require_page_swap_disable: true,
        require_rapl_disabled: true,
        require_ciphertext_hiding: true,
        require_tsme: true,
        require_ecc: true,
        require_alias_check_complete: true,
        allow_tio: false,
        required_launch_mit_vector: 1,
        required_current_mit_vector: 1,
        trusted_id_key_digests: vec![HexBytes([1; 48])],
        trusted_author_key_digests: vec![HexBytes([1; 48])],
        family_id: Some(HexBytes([1; 16])),
        image_id: Some(HexBytes([1; 16])),
        report_id_ma: Some(HexBytes([1; 32])),
        allow_vlek: true,
        allowed_csp_ids: vec!["CN=x".into()],
        ..Policy::default()
    };
    cfg
}

fn keys(value: &toml::Value, out: &mut BTreeSet<String>) {
    let toml::Value::Table(table) = value else {
        return;
    };
    for (key, inner) in table {
        out.insert(key.clone());
        // Per-product tables are keyed by product name; an ABI's parts are major and minor.
        if !["min_tcb", "min_build", "min_abi", "min_guest_policy_abi"].contains(&key.as_str()) {
            keys(inner, out);
        }
    }
}

fn words(text: &str) -> BTreeSet<&str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .collect()
}

#[test]
fn every_configuration_key_is_in_the_readme() {
    let text = section(&readme(), "## Node configuration");
    let value: toml::Value = toml::from_str(&everything().to_toml().unwrap()).unwrap();
    let mut all = BTreeSet::new();
    keys(&value, &mut all);
    assert!(
        all.contains("kind") && all.contains("allow_vlek"),
        "{all:?}"
    );
    let documented = words(&text);
    let missing: Vec<_> = all
        .iter()
        .filter(|k| !documented.contains(k.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "README.md's node configuration lacks {missing:?}"
    );
}

#[test]
fn every_rpc_is_in_the_readme() {
    let proto = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../api/proto/snpkms/v1/kms.proto"
    ))
    .unwrap();
    let text = section(&readme(), "## gRPC API");
    let rpcs: Vec<&str> = proto
        .lines()
        .filter_map(|l| l.trim().strip_prefix("rpc "))
        .filter_map(|l| l.split('(').next())
        .collect();
    assert!(rpcs.len() >= 5, "{rpcs:?}");
    let missing: Vec<_> = rpcs
        .iter()
        .filter(|rpc| !text.contains(&format!("`{rpc}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "README.md's gRPC table lacks {missing:?}"
    );
}
