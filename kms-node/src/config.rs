//! Node configuration: a TOML file, overridden by `SNPKMS_NODE__*` environment variables
//! (`SNPKMS_NODE__CHAIN__REGISTRY=0x..` sets `chain.registry`).

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use snpkms_chain_client::Address;
use snpkms_verifier::{Policy, Product};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// gRPC listen address.
    pub listen: SocketAddr,
    /// Prometheus metrics listen address (plain HTTP, `/metrics`); none disables metrics.
    pub metrics_listen: Option<SocketAddr>,
    /// Where the node keeps its store (sealed root, nonces, key-release log).
    pub data_dir: PathBuf,
    pub tls: Option<TlsConfig>,
    pub chain: ChainSection,
    #[serde(default)]
    pub trust: TrustSection,
    /// Guest policy applied to every report (see the verifier's Policy).
    #[serde(default)]
    pub policy: Policy,
    pub platform: PlatformConfig,
    #[serde(default)]
    pub limits: Limits,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// One RPC endpoint: a URL, or a table that pins how its TLS server is authenticated.
///
/// ```toml
/// rpc_urls = [
///   "https://rpc-a.example",                                   # Mozilla roots (compiled in)
///   { url = "https://rpc-b.internal", ca = "/etc/snpkms/rpc-b-ca.pem" },   # only this CA
///   { url = "https://rpc-c.example", spki_sha256 = "9f86d0…" },  # and this key in the chain
///   "http://127.0.0.1:8545",                                   # plain http: loopback only
/// ]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RpcUrl {
    Plain(String),
    Pinned(PinnedRpcUrl),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinnedRpcUrl {
    pub url: String,
    /// PEM file of the CA(s) trusted for this endpoint, instead of the Mozilla roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// Hex SHA-256 of a SubjectPublicKeyInfo that must appear in the server's chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spki_sha256: Option<String>,
}

impl RpcUrl {
    pub fn url(&self) -> &str {
        match self {
            RpcUrl::Plain(u) => u,
            RpcUrl::Pinned(p) => &p.url,
        }
    }
}

impl From<String> for RpcUrl {
    fn from(url: String) -> Self {
        RpcUrl::Plain(url)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainSection {
    /// `https://` endpoints (or `http://` to loopback), on distinct hosts.
    pub rpc_urls: Vec<RpcUrl>,
    #[serde(default = "one")]
    pub quorum: usize,
    /// The KmsRegistry proxy address.
    pub registry: Address,
    /// Expected chain id; when set every endpoint must serve it.
    pub chain_id: Option<u64>,
    /// `safe`, `finalized`, or a number of confirmations below the head.
    #[serde(default = "default_read_at")]
    pub read_at: String,
    #[serde(default = "default_staleness")]
    pub max_staleness_secs: u64,
    #[serde(default = "default_timeout")]
    pub request_timeout_ms: u64,
    #[serde(default = "default_retries")]
    pub retries: u32,
    #[serde(default = "default_cache_ttl")]
    pub cache_ttl_secs: u64,
    #[serde(default = "default_poll")]
    pub poll_interval_ms: u64,
}

impl ChainSection {
    /// `rpc_urls` and `registry`, everything else at its default (quorum 1, 3 confirmations,
    /// 5 min staleness, 5 s timeout, 2 retries, 10 min cache TTL, 2 s polling).
    pub fn new(rpc_urls: Vec<RpcUrl>, registry: Address) -> ChainSection {
        ChainSection {
            rpc_urls,
            quorum: one(),
            registry,
            chain_id: None,
            read_at: default_read_at(),
            max_staleness_secs: default_staleness(),
            request_timeout_ms: default_timeout(),
            retries: default_retries(),
            cache_ttl_secs: default_cache_ttl(),
            poll_interval_ms: default_poll(),
        }
    }
}

fn one() -> usize {
    1
}
fn default_read_at() -> String {
    "3".into()
}
fn default_staleness() -> u64 {
    300
}
fn default_timeout() -> u64 {
    5000
}
fn default_retries() -> u32 {
    2
}
fn default_cache_ttl() -> u64 {
    600
}
fn default_poll() -> u64 {
    2000
}

/// Which roots evidence must chain to. AMD's are always trusted; anything else only when named.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustSection {
    /// Trust the simulator's test root (development only; the node warns loudly).
    #[serde(default)]
    pub simulator_root: bool,
    /// Extra root PEM files (ARK, or ASK then ARK), trusted for every product.
    #[serde(default)]
    pub extra_roots: Vec<PathBuf>,
    /// AMD CRLs (DER) to check revocations against.
    #[serde(default)]
    pub crls: Vec<PathBuf>,
}

/// The node's own TEE: where its sealing key and its evidence come from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum PlatformConfig {
    /// Real SEV-SNP hardware (configfs-tsm, or /dev/sev-guest).
    Hardware,
    /// The simulator: a chip seed and the launch facts of the simulated KMS image.
    Simulator {
        product: Product,
        /// Any string; the same seed is the same simulated chip.
        chip_seed: String,
        /// Hex launch digest (48 bytes) of the simulated KMS image.
        measurement: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub nonce_ttl_secs: u64,
    pub max_outstanding_nonces: usize,
    /// Largest request accepted, in bytes (a report and its certificates fit in 16 KiB).
    pub max_request_bytes: usize,
    /// Requests processed at once; more wait.
    pub max_concurrent_requests: usize,
    /// Verified VCEK chains kept (one per machine and TCB).
    pub verified_chain_cache: usize,
    /// Requests per second per client IP address (token bucket); 0 disables.
    pub per_client_rate: f64,
    pub per_client_burst: u32,
    /// GetAppKey requests per second per app id; 0 disables.
    pub per_app_rate: f64,
    pub per_app_burst: u32,
    /// Longest a key-release record waits for those of other requests in progress, to share
    /// one disk sync with them (microseconds; 0 syncs every record at once). A lone request
    /// never waits.
    pub audit_commit_delay_us: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            nonce_ttl_secs: 60,
            max_outstanding_nonces: 100_000,
            max_request_bytes: 64 * 1024,
            max_concurrent_requests: 256,
            verified_chain_cache: 4096,
            per_client_rate: 200.0,
            per_client_burst: 400,
            per_app_rate: 500.0,
            per_app_burst: 1000,
            audit_commit_delay_us: 2000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(String),
    #[error("configuration: {field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("configuration: {what}: cannot read {}: {source}", path.display())]
    File {
        what: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl NodeConfig {
    /// A configuration with the secure defaults for everything but what has none: where it
    /// listens and keeps its data, its chain, its platform. (The one way to build one in code;
    /// files go through [`NodeConfig::load`].)
    pub fn new(
        listen: SocketAddr,
        data_dir: PathBuf,
        chain: ChainSection,
        platform: PlatformConfig,
    ) -> NodeConfig {
        NodeConfig {
            listen,
            metrics_listen: None,
            data_dir,
            tls: None,
            chain,
            trust: TrustSection::default(),
            policy: Policy::default(),
            platform,
            limits: Limits::default(),
        }
    }

    /// Loads `path` and applies `SNPKMS_NODE__*` overrides.
    pub fn load(path: &Path) -> Result<NodeConfig, ConfigError> {
        if !path.exists() {
            return Err(ConfigError::Load(format!(
                "{} does not exist",
                path.display()
            )));
        }
        Self::from_figment(Figment::new().merge(Toml::file(path)))
    }

    pub fn from_toml_str(text: &str) -> Result<NodeConfig, ConfigError> {
        Self::from_figment(Figment::new().merge(Toml::string(text)))
    }

    fn from_figment(figment: Figment) -> Result<NodeConfig, ConfigError> {
        let cfg: NodeConfig = figment
            .merge(Env::prefixed("SNPKMS_NODE__").split("__"))
            .extract()
            .map_err(|e| ConfigError::Load(e.to_string()))?;
        if let Err(e) = cfg.chain.read_at.parse::<snpkms_chain_client::ReadAt>() {
            return Err(ConfigError::Invalid {
                field: "chain.read_at",
                message: e,
            });
        }
        cfg.policy.validate().map_err(|e| ConfigError::Invalid {
            field: "policy",
            message: e.to_string(),
        })?;
        Ok(cfg)
    }

    /// The configuration as TOML, for `snpkms dev` and documentation.
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        toml::to_string(self).map_err(|e| ConfigError::Invalid {
            field: "(configuration)",
            message: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_is_validated_like_a_policy_file() {
        let base = r#"
            listen = "127.0.0.1:1"
            data_dir = "/tmp/x"
            [chain]
            rpc_urls = ["http://127.0.0.1:8545"]
            registry = "0x0101010101010101010101010101010101010101"
            [platform]
            kind = "hardware"
        "#;
        assert!(NodeConfig::from_toml_str(base).is_ok());
        for bad in [
            "[policy]\nmin_report_version = 0",
            "[policy]\nmin_report_version = 5\nmax_report_version = 3",
            "[policy.min_tcb.milan]\nfmc = 1",
        ] {
            let text = format!("{base}\n{bad}");
            match NodeConfig::from_toml_str(&text) {
                Err(ConfigError::Invalid {
                    field: "policy", ..
                }) => {}
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
