//! The node's security configuration: every setting that decides whether a key is released,
//! resolved once (each file it names read exactly once) and summarised by one digest.
//!
//! `node.toml` and the `SNPKMS_NODE__*` environment come from places the node's host writes. So
//! the root secret is sealed under a key derived from the platform's sealing key *and* this
//! digest, bootstrap and onboarding evidence commit to it, and the registry lists the digests
//! allowed to serve (`isKmsAllowed(bootInfo, digest)`). A node started with any other security
//! configuration cannot unseal its root and is not allowed by the chain.
//!
//! What is in the digest, and why, is written at each field of [`CanonicalConfig`]; settings
//! that cannot change a release (log level, listen addresses, metrics, the data dir, the TLS
//! listener, the verified-certificate cache size, the log's commit delay) stay out and can
//! change freely.

use crate::config::{ConfigError, Limits, NodeConfig, PlatformConfig, RpcUrl};
use serde::Serialize;
use sha2::{Digest, Sha256};
use snpkms_chain_client::{ChainConfig, ReadAt, RpcEndpoint};
use snpkms_verifier::{Crl, Policy, TrustRoots};
use std::path::Path;
use std::time::Duration;

/// Domain of the digest: SHA-256(DOMAIN || canonical JSON).
pub const CONFIG_DIGEST_DOMAIN: &[u8] = b"snpkms/kms-config/v1\0";

/// SHA-256 over the canonical security configuration.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ConfigDigest(pub [u8; 32]);

impl std::fmt::Display for ConfigDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl std::fmt::Debug for ConfigDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// The resolved security configuration: what the node runs with, and its digest. Built only by
/// [`SecuritySettings::resolve`], so what is used and what is digested are the same bytes.
#[derive(Debug, Clone)]
pub struct SecuritySettings {
    /// The chain client's configuration, from `[chain]` (endpoints with their pins).
    pub chain: ChainConfig,
    /// AMD's roots, plus the simulator's and extra roots where the platform allows them.
    pub roots: TrustRoots,
    /// The guest policy every report must meet.
    pub policy: Policy,
    /// The verifier of these roots, this policy and the CRLs of `trust.crls`.
    verifier: snpkms_verifier::Verifier,
    /// `[limits]` as configured. Only its sealed fields enter the digest (the cache sizes,
    /// `audit_commit_delay_us` and the connection limits do not).
    pub limits: Limits,
    canonical: String,
    digest: ConfigDigest,
}

/// The canonical form that is digested. Field order is fixed by this struct; bytes from files
/// enter as SHA-256 of their DER, never as paths (a path says nothing about what it holds).
#[derive(Debug, Serialize)]
struct CanonicalConfig<'a> {
    /// Format of this structure.
    version: u32,
    /// `hardware` or `simulator`: which roots the node may trust at all. (Which chip and image
    /// the node runs on is not a setting: its evidence says it, and the registry checks it.)
    platform: &'static str,
    chain: CanonicalChain,
    trust: CanonicalTrust,
    /// The guest policy every report must meet.
    policy: &'a Policy,
    limits: CanonicalLimits,
}

#[derive(Debug, Serialize)]
struct CanonicalChain {
    /// Which chain and which registry decide.
    chain_id: Option<u64>,
    registry: String,
    /// Who answers for the chain, and how each is authenticated.
    endpoints: Vec<CanonicalEndpoint>,
    /// How many must agree.
    quorum: usize,
    /// How deep reads are pinned: a shallower pin lets a short reorg decide.
    read_at: String,
    /// How old a view may be: an old view hides revocations.
    max_staleness_secs: u64,
    /// How long a cached decision may outlive the events that would drop it, how often events
    /// are looked for, and how long a poll may hang (timeout and retries) before cached
    /// decisions stop being served: all bound how long a revocation takes to bite.
    cache_ttl_secs: u64,
    poll_interval_ms: u64,
    request_timeout_ms: u64,
    retries: u32,
}

#[derive(Debug, Serialize)]
struct CanonicalEndpoint {
    /// `scheme://host[:port]`, for people reading the canonical form.
    origin: String,
    /// SHA-256 of the full URL: another URL is another operator (or another chain of the same
    /// provider), and the API key that URLs often carry stays out of the canonical form.
    url_sha256: String,
    /// SHA-256 of each pinned CA certificate (DER).
    ca_sha256: Vec<String>,
    spki_sha256: Option<String>,
}

#[derive(Debug, Serialize)]
struct CanonicalTrust {
    /// The roots evidence must chain to.
    simulator_root: bool,
    /// SHA-256 of each extra ARK's public key (what the verifier trusts), per file.
    extra_roots: Vec<String>,
    /// SHA-256 of each CRL (DER): a missing CRL hides a revocation.
    crls: Vec<String>,
}

/// The abuse limits: the replay window and what a flood can cost.
#[derive(Debug, Serialize)]
struct CanonicalLimits {
    nonce_ttl_secs: u64,
    max_outstanding_nonces: usize,
    max_request_bytes: usize,
    max_concurrent_requests: usize,
    per_client_rate: f64,
    per_client_burst: u32,
    per_app_rate: f64,
    per_app_burst: u32,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|e| ConfigError::File {
        what: what.to_string(),
        path: path.to_path_buf(),
        source: e,
    })
}

impl SecuritySettings {
    /// Reads every file the configuration names (once), builds what the node runs with and
    /// digests it. Refuses what a hardware node must never trust.
    pub fn resolve(cfg: &NodeConfig) -> Result<SecuritySettings, ConfigError> {
        let (chain, endpoints) = resolve_chain(cfg)?;
        let (roots, extra_roots) = resolve_roots(cfg)?;
        let mut verifier = snpkms_verifier::Verifier::new(roots.clone(), cfg.policy.clone());
        let mut crl_hashes = Vec::new();
        for path in &cfg.trust.crls {
            let der = read(path, "trust.crls")?;
            let invalid = |e: &dyn std::fmt::Display| ConfigError::Invalid {
                field: "trust.crls",
                message: format!("{}: {e}", path.display()),
            };
            let crl = Crl::from_der(&der).map_err(|e| invalid(&e))?;
            // A CRL no trusted root signed is a mistake to report now, not on the first guest.
            verifier = verifier.with_crl(crl).map_err(|e| invalid(&e))?;
            crl_hashes.push(sha256_hex(&der));
        }
        let l = &cfg.limits;
        // A NaN rate would refuse every request, and JSON writes NaN and infinity alike as
        // null, so two different limits would share one digest.
        for (field, rate) in [
            ("limits.per_client_rate", l.per_client_rate),
            ("limits.per_app_rate", l.per_app_rate),
        ] {
            if !rate.is_finite() || rate < 0.0 {
                return Err(ConfigError::Invalid {
                    field,
                    message: format!(
                        "{rate} is not a rate: give requests per second, 0 or more (0 disables)"
                    ),
                });
            }
        }
        let canonical = CanonicalConfig {
            version: 1,
            platform: match cfg.platform {
                PlatformConfig::Hardware => "hardware",
                PlatformConfig::Simulator { .. } => "simulator",
            },
            chain: CanonicalChain {
                chain_id: cfg.chain.chain_id,
                registry: format!("{:#x}", cfg.chain.registry),
                endpoints,
                quorum: chain.quorum,
                read_at: chain.read_at.to_string(),
                max_staleness_secs: cfg.chain.max_staleness_secs,
                cache_ttl_secs: cfg.chain.cache_ttl_secs,
                poll_interval_ms: cfg.chain.poll_interval_ms,
                request_timeout_ms: cfg.chain.request_timeout_ms,
                retries: cfg.chain.retries,
            },
            trust: CanonicalTrust {
                simulator_root: cfg.trust.simulator_root,
                extra_roots,
                crls: crl_hashes,
            },
            policy: &cfg.policy,
            limits: CanonicalLimits {
                nonce_ttl_secs: l.nonce_ttl_secs,
                max_outstanding_nonces: l.max_outstanding_nonces,
                max_request_bytes: l.max_request_bytes,
                max_concurrent_requests: l.max_concurrent_requests,
                per_client_rate: l.per_client_rate,
                per_client_burst: l.per_client_burst,
                per_app_rate: l.per_app_rate,
                per_app_burst: l.per_app_burst,
            },
        };
        let canonical = serde_json::to_string(&canonical).map_err(|e| ConfigError::Invalid {
            field: "(configuration)",
            message: e.to_string(),
        })?;
        let digest = ConfigDigest(
            Sha256::new()
                .chain_update(CONFIG_DIGEST_DOMAIN)
                .chain_update(canonical.as_bytes())
                .finalize()
                .into(),
        );
        Ok(SecuritySettings {
            chain,
            roots,
            policy: cfg.policy.clone(),
            verifier,
            limits: cfg.limits.clone(),
            canonical,
            digest,
        })
    }

    /// `SHA-256("snpkms/kms-config/v1\0" || canonical JSON)`: what the root is sealed under
    /// and the registry must allow (`snpkms node config-digest` prints it).
    pub fn digest(&self) -> ConfigDigest {
        self.digest
    }

    /// The canonical JSON the digest is over. It holds no secret (URLs enter as their hash), so
    /// an operator can hand it to governance with the digest.
    pub fn canonical_json(&self) -> &str {
        &self.canonical
    }

    /// The verifier this configuration describes.
    pub fn verifier(&self) -> snpkms_verifier::Verifier {
        self.verifier.clone()
    }
}

fn resolve_chain(cfg: &NodeConfig) -> Result<(ChainConfig, Vec<CanonicalEndpoint>), ConfigError> {
    let c = &cfg.chain;
    let invalid = |field: &'static str, message: String| ConfigError::Invalid { field, message };
    let read_at: ReadAt = c
        .read_at
        .parse()
        .map_err(|e: String| invalid("chain.read_at", e))?;
    let mut endpoints = Vec::new();
    let mut canonical = Vec::new();
    for entry in &c.rpc_urls {
        let (endpoint, ca_sha256, spki_sha256) = pinned_endpoint(entry, "chain.rpc_urls")?;
        canonical.push(CanonicalEndpoint {
            origin: endpoint.url().origin().ascii_serialization(),
            url_sha256: sha256_hex(endpoint.url().as_str().as_bytes()),
            ca_sha256,
            spki_sha256,
        });
        endpoints.push(endpoint);
    }
    let first = endpoints
        .first()
        .cloned()
        .ok_or_else(|| invalid("chain.rpc_urls", "no RPC URL configured".into()))?;
    let mut chain = ChainConfig::new(first, c.registry);
    chain.endpoints = endpoints;
    chain.quorum = c.quorum;
    chain.chain_id = c.chain_id;
    chain.read_at = read_at;
    chain.max_staleness = Duration::from_secs(c.max_staleness_secs);
    chain.request_timeout = Duration::from_millis(c.request_timeout_ms);
    chain.retries = c.retries;
    chain.cache_ttl = Duration::from_secs(c.cache_ttl_secs);
    chain.poll_interval = Duration::from_millis(c.poll_interval_ms);
    chain.decision_cache = cfg.limits.decision_cache;
    chain
        .validate()
        .map_err(|e| invalid("chain", e.to_string()))?;
    Ok((chain, canonical))
}

/// An endpoint as a configuration entry names it, with its pinned CA and server key applied;
/// also the SHA-256 of each pinned CA certificate and the pinned key hash, for the canonical
/// form. `field` names the setting in errors.
pub(crate) fn pinned_endpoint(
    entry: &RpcUrl,
    field: &'static str,
) -> Result<(RpcEndpoint, Vec<String>, Option<String>), ConfigError> {
    let invalid = |message: String| ConfigError::Invalid { field, message };
    let (url, ca, spki) = match entry {
        RpcUrl::Plain(url) => (url, None, None),
        RpcUrl::Pinned(p) => (&p.url, p.ca.as_ref(), p.spki_sha256.as_ref()),
    };
    let mut endpoint = RpcEndpoint::new(url).map_err(|e| invalid(e.to_string()))?;
    let mut ca_sha256 = Vec::new();
    if let Some(path) = ca {
        let pem = read(path, &format!("{field}[].ca"))?;
        endpoint = endpoint
            .with_ca_pem(&pem)
            .map_err(|e| invalid(e.to_string()))?;
        ca_sha256 = endpoint.ca_certs().iter().map(|d| sha256_hex(d)).collect();
    }
    let mut spki_sha256 = None;
    if let Some(hash) = spki {
        let bytes: [u8; 32] = hex::decode(hash.trim_start_matches("0x"))
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| invalid(format!("spki_sha256 {hash:?} is not 32 bytes of hex")))?;
        endpoint = endpoint
            .with_spki_sha256(bytes)
            .map_err(|e| invalid(e.to_string()))?;
        spki_sha256 = Some(hex::encode(bytes));
    }
    Ok((endpoint, ca_sha256, spki_sha256))
}

/// AMD's roots, plus the simulator's and extra ones only where the platform allows them: a
/// hardware node trusts AMD and nothing else, whatever its (host-written) configuration says.
fn resolve_roots(cfg: &NodeConfig) -> Result<(TrustRoots, Vec<String>), ConfigError> {
    let hardware = matches!(cfg.platform, PlatformConfig::Hardware);
    let mut roots = TrustRoots::amd();
    if cfg.trust.simulator_root {
        if hardware {
            return Err(ConfigError::Invalid {
                field: "trust.simulator_root",
                message: "a hardware node never trusts the simulator root: its private keys are \
                          public, in the snpkms repository"
                    .into(),
            });
        }
        add_simulator_root(&mut roots)?;
    }
    let amd: Vec<String> = TrustRoots::amd()
        .anchors()
        .iter()
        .map(|a| a.fingerprint())
        .collect();
    let mut hashes = Vec::new();
    for path in &cfg.trust.extra_roots {
        let pem = read(path, "trust.extra_roots")?;
        let mut extra = TrustRoots::empty();
        extra
            .add_pem_for_named_product(&path.display().to_string(), &pem)
            .map_err(|e| ConfigError::Invalid {
                field: "trust.extra_roots",
                message: format!("{}: {e}", path.display()),
            })?;
        let fingerprint = extra
            .anchors()
            .first()
            .map(|a| a.fingerprint())
            .unwrap_or_default();
        if hardware && !amd.contains(&fingerprint) {
            return Err(ConfigError::Invalid {
                field: "trust.extra_roots",
                message: format!(
                    "{}: its ARK (public key SHA-256 {fingerprint}) is not one of AMD's; a hardware \
                     node trusts only AMD's roots",
                    path.display()
                ),
            });
        }
        for anchor in extra.anchors() {
            roots.add(anchor.clone());
        }
        hashes.push(fingerprint);
    }
    Ok((roots, hashes))
}

#[cfg(feature = "simulator")]
fn add_simulator_root(roots: &mut TrustRoots) -> Result<(), ConfigError> {
    snpkms_simulator::trust_simulator_root(roots).map_err(|e| ConfigError::Invalid {
        field: "trust.simulator_root",
        message: e.to_string(),
    })
}

#[cfg(not(feature = "simulator"))]
fn add_simulator_root(_: &mut TrustRoots) -> Result<(), ConfigError> {
    Err(ConfigError::Invalid {
        field: "trust.simulator_root",
        message: "this build has no simulator (built without the `simulator` feature)".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
        listen = "127.0.0.1:50051"
        data_dir = "/tmp/snpkms-test"
        [chain]
        rpc_urls = ["https://rpc-a.example", "http://127.0.0.1:8545"]
        registry = "0x0101010101010101010101010101010101010101"
        [platform]
        kind = "hardware"
    "#;

    fn digest(toml: &str) -> ConfigDigest {
        SecuritySettings::resolve(&NodeConfig::from_toml_str(toml).unwrap())
            .unwrap()
            .digest()
    }

    #[test]
    fn defaults_written_out_or_left_out_give_one_digest() {
        let explicit = BASE.replace(
            "[platform]",
            "quorum = 1\nread_at = \"3\"\nmax_staleness_secs = 300\n[policy]\nallow_debug = false\nmax_vmpl = 0\n[limits]\nnonce_ttl_secs = 60\n[platform]",
        );
        assert_eq!(digest(BASE), digest(&explicit));
    }

    #[test]
    fn only_what_decides_a_release_changes_the_digest() {
        let base = digest(BASE);
        for free in [
            BASE.replace("50051", "50052"),
            BASE.replace("/tmp/snpkms-test", "/var/lib/other"),
            format!("metrics_listen = \"127.0.0.1:9464\"\n{BASE}")
                .replace("\n        listen", "\nlisten"),
            BASE.replace(
                "[platform]",
                "[limits]\nverified_chain_cache = 1\ndecision_cache = 2\ngrant_cache = 3\n\
                 audit_commit_delay_us = 0\n[platform]",
            ),
            BASE.replace(
                "[platform]",
                "[limits]\nmax_connections_per_peer = 1\nmax_connections = 2\n\
                 connection_first_bytes_secs = 3\nmax_connection_age_secs = 4\n[platform]",
            ),
        ] {
            assert_eq!(digest(&free), base, "{free}");
        }
        for bound in [
            BASE.replace("rpc-a.example", "rpc-z.example"),
            BASE.replace("0x0101", "0x0102"),
            BASE.replace("[platform]", "quorum = 2\n[platform]"),
            BASE.replace("[platform]", "read_at = \"safe\"\n[platform]"),
            BASE.replace("[platform]", "chain_id = 1\n[platform]"),
            BASE.replace("[platform]", "request_timeout_ms = 86400000\n[platform]"),
            BASE.replace("[platform]", "retries = 9\n[platform]"),
            BASE.replace(
                "\"https://rpc-a.example\"",
                "{ url = \"https://rpc-a.example\", spki_sha256 = \"00000000000000000000000000000000000000000000000000000000000000aa\" }",
            ),
            BASE.replace("[platform]", "[policy]\nallow_smt = false\n[platform]"),
            BASE.replace("[platform]", "[limits]\nper_app_burst = 1\n[platform]"),
            BASE.replace("kind = \"hardware\"", "kind = \"simulator\"\nproduct = \"milan\"\nchip_seed = \"x\"\nmeasurement = \"00\""),
        ] {
            assert_ne!(digest(&bound), base, "{bound}");
        }
    }

    #[test]
    fn rates_must_be_finite_and_not_negative() {
        for (key, field) in [
            ("per_client_rate", "limits.per_client_rate"),
            ("per_app_rate", "limits.per_app_rate"),
        ] {
            for bad in ["nan", "inf", "-1.0"] {
                let toml = BASE.replace(
                    "[platform]",
                    &format!("[limits]\n{key} = {bad}\n[platform]"),
                );
                let err = SecuritySettings::resolve(&NodeConfig::from_toml_str(&toml).unwrap())
                    .unwrap_err();
                assert!(
                    matches!(err, ConfigError::Invalid { field: f, .. } if f == field),
                    "{key} = {bad}: {err}"
                );
            }
        }
    }

    #[test]
    fn a_hardware_node_refuses_roots_that_are_not_amds() {
        let sim = BASE.replace("[platform]", "[trust]\nsimulator_root = true\n[platform]");
        let err = SecuritySettings::resolve(&NodeConfig::from_toml_str(&sim).unwrap()).unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::Invalid {
                    field: "trust.simulator_root",
                    ..
                }
            ),
            "{err}"
        );
        let root = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../simulator/fixtures/ark-milan.pem"
        );
        let extra = BASE.replace(
            "[platform]",
            &format!("[trust]\nextra_roots = [\"{root}\"]\n[platform]"),
        );
        let err =
            SecuritySettings::resolve(&NodeConfig::from_toml_str(&extra).unwrap()).unwrap_err();
        assert!(err.to_string().contains("is not one of AMD's"), "{err}");
        // AMD's own is fine (and changes nothing the verifier would accept).
        let amd = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../verifier/roots/milan-ask-ark.pem"
        );
        let amd = BASE.replace(
            "[platform]",
            &format!("[trust]\nextra_roots = [\"{amd}\"]\n[platform]"),
        );
        assert!(SecuritySettings::resolve(&NodeConfig::from_toml_str(&amd).unwrap()).is_ok());
    }

    #[test]
    fn file_contents_not_paths_are_digested() {
        let dir = tempfile::tempdir().unwrap();
        let amd = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../verifier/roots/milan-ask-ark.pem"
        );
        let (a, b) = (dir.path().join("a.pem"), dir.path().join("b.pem"));
        std::fs::copy(amd, &a).unwrap();
        std::fs::copy(amd, &b).unwrap();
        let with = |p: &std::path::Path| {
            digest(&BASE.replace(
                "[platform]",
                &format!("[trust]\nextra_roots = [\"{}\"]\n[platform]", p.display()),
            ))
        };
        assert_eq!(with(&a), with(&b), "same root, another path");
        let genoa = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../verifier/roots/genoa-ask-ark.pem"
        );
        std::fs::copy(genoa, &b).unwrap();
        assert_ne!(with(&a), with(&b), "another root, same path");

        // A CA pinned for an endpoint, with the same URL: its contents are bound.
        let ca = |pem: &str| {
            std::fs::copy(pem, &a).unwrap();
            digest(&BASE.replace(
                "\"https://rpc-a.example\"",
                &format!(
                    "{{ url = \"https://rpc-a.example\", ca = \"{}\" }}",
                    a.display()
                ),
            ))
        };
        let milan = ca(amd);
        assert_ne!(milan, digest(BASE), "pinning a CA");
        assert_ne!(milan, ca(genoa), "pinning another CA at the same path");
    }

    #[test]
    fn the_canonical_form_holds_no_api_key() {
        let cfg = BASE.replace(
            "https://rpc-a.example",
            "https://rpc-a.example/v3/SECRETKEY",
        );
        let settings =
            SecuritySettings::resolve(&NodeConfig::from_toml_str(&cfg).unwrap()).unwrap();
        assert!(!settings.canonical_json().contains("SECRETKEY"));
        assert!(settings.canonical_json().contains("https://rpc-a.example"));
        assert_ne!(
            settings.digest(),
            digest(BASE),
            "the key is bound, by its hash"
        );
    }

    #[test]
    fn the_example_configuration_parses() {
        let text = include_str!("../../deploy/node.example.toml");
        let cfg = NodeConfig::from_toml_str(text).unwrap();
        assert_eq!(cfg.chain.rpc_urls.len(), 3);
        assert_eq!(cfg.chain.quorum, 2);
    }
}
