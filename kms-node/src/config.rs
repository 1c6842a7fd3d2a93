//! Node configuration: a TOML file, overridden by `SNPKMS_NODE__*` environment variables
//! (`SNPKMS_NODE__CHAIN__REGISTRY=0x..` sets `chain.registry`).

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use snpkms_chain_client::Address;
use snpkms_verifier::{Policy, Product};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// `node.toml`, as README.md ("Node configuration") documents it. Unknown keys are refused.
///
/// The settings that can change a release (`chain`, `trust`, `policy`, the platform's `kind`
/// and most of `limits`) form the security configuration ([`SecuritySettings`]) whose digest
/// the root is sealed under: a node whose host changes one cannot unseal its root. The rest
/// changes freely.
///
/// [`SecuritySettings`]: crate::SecuritySettings
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// gRPC listen address. Not sealed.
    pub listen: SocketAddr,
    /// Prometheus metrics listen address (plain HTTP, `/metrics`); none disables metrics. Not
    /// sealed.
    pub metrics_listen: Option<SocketAddr>,
    /// Where the node keeps its store (`store/`, the sealed root) and its key-release log
    /// (`audit.log`); back them up together. Nonces live in memory. Not sealed.
    pub data_dir: PathBuf,
    /// `[tls]`: serve gRPC over TLS with this identity; none serves plain gRPC (responses are
    /// HPKE-sealed either way). Not sealed, but the leaf's public key is bound into the
    /// bootstrap evidence and registered on-chain with the KMS info.
    pub tls: Option<TlsConfig>,
    /// `[chain]`: which chain and registry decide, and how it is read. Sealed.
    pub chain: ChainSection,
    /// `[trust]`: roots and CRLs beyond AMD's compiled-in roots (default: none). Sealed.
    #[serde(default)]
    pub trust: TrustSection,
    /// Guest policy applied to every report (see the verifier's Policy; secure defaults).
    /// Sealed.
    #[serde(default)]
    pub policy: Policy,
    /// `[platform]`: where the node's own evidence and sealing key come from. Only its `kind`
    /// is sealed.
    pub platform: PlatformConfig,
    /// `[limits]`: abuse limits (defaults in [`Limits::default`]). Sealed except
    /// `verified_chain_cache` and `audit_commit_delay_us`.
    #[serde(default)]
    pub limits: Limits,
    /// `[kds]`: where VCEKs come from when a host supplies none (default: AMD's KDS). Not
    /// sealed: whatever comes back is verified against the pinned AMD roots.
    #[serde(default)]
    pub kds: KdsSection,
}

/// `[kds]`: AMD's Key Distribution Service and its mirrors, for guests (and this node) whose
/// host leaves the certificate table empty. What is fetched is kept in `<data_dir>/kds/`,
/// which is also where `snpkms certs import` puts an offline store.
///
/// ```toml
/// [kds]
/// urls = ["https://kdsintf.amd.com", { url = "https://kds-mirror.internal", ca = "/etc/snpkms/mirror-ca.pem" }]
/// # urls = []   # offline: the store and the certificates guests bring, nothing else
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdsSection {
    /// Base URLs tried in order, in the form of `chain.rpc_urls` (https with the compiled-in
    /// roots or a pinned CA, plain http only to loopback). Default: AMD's KDS.
    #[serde(default = "default_kds_urls")]
    pub urls: Vec<RpcUrl>,
    /// Seconds one request may take (default 5). A whole fetch, over every URL, retry and
    /// wait, gives up after 20 s, below the 30 s a gRPC request may take.
    #[serde(default = "default_kds_timeout")]
    pub timeout_secs: u64,
    /// Requests per URL before trying the next (default 3).
    #[serde(default = "default_kds_attempts")]
    pub attempts: u32,
    /// The longest `Retry-After` (seconds) a rate-limited request waits for (default 10); a KDS
    /// asking for more is given up on until a later request.
    #[serde(default = "default_kds_retry_after")]
    pub max_retry_after_secs: u64,
}

impl Default for KdsSection {
    fn default() -> Self {
        KdsSection {
            urls: default_kds_urls(),
            timeout_secs: default_kds_timeout(),
            attempts: default_kds_attempts(),
            max_retry_after_secs: default_kds_retry_after(),
        }
    }
}

fn default_kds_urls() -> Vec<RpcUrl> {
    vec![RpcUrl::Plain(snpkms_kds::AMD_KDS_URL.into())]
}
fn default_kds_timeout() -> u64 {
    5
}
fn default_kds_attempts() -> u32 {
    3
}
fn default_kds_retry_after() -> u64 {
    10
}

/// The gRPC listener's TLS identity, read once at start.
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
///   { url = "https://rpc-c.example", spki_sha256 = "9f86d0…" },  # and this leaf key
///   "http://127.0.0.1:8545",                                   # plain http: loopback only
/// ]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RpcUrl {
    /// A URL alone: `https://` verified against the Mozilla roots compiled into the binary, or
    /// `http://` to a loopback address.
    Plain(String),
    /// A URL with a pinned CA and/or server key.
    Pinned(PinnedRpcUrl),
}

/// An RPC endpoint whose TLS server is authenticated by more than the compiled-in roots. Both
/// pins need an `https://` URL. The URL (by its SHA-256, so an API key in it stays out of the
/// canonical form), the CA certificates (by their contents) and the key are all sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinnedRpcUrl {
    /// The endpoint's `https://` URL.
    pub url: String,
    /// PEM file of the CA(s) trusted for this endpoint, instead of the Mozilla roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// Hex SHA-256 (32 bytes, `0x` optional) of the SubjectPublicKeyInfo the server's own
    /// (leaf) certificate must carry. An extra condition: the chain is still verified (against
    /// `ca`, or the Mozilla roots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spki_sha256: Option<String>,
}

impl RpcUrl {
    /// The URL, whichever the form.
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

/// `[chain]`: the on-chain registry and how the node reads it. Every field is sealed into the
/// security configuration digest (timeouts and retries too: they bound how long a hung poll
/// keeps cached decisions in use).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainSection {
    /// `https://` endpoints (or `http://` to loopback), on distinct hosts. At least one.
    pub rpc_urls: Vec<RpcUrl>,
    /// k: how many endpoints must give the same answer at the same block hash for it to
    /// decide (default 1). With k > n/2 a lying minority is out-voted.
    #[serde(default = "one")]
    pub quorum: usize,
    /// The KmsRegistry proxy address.
    pub registry: Address,
    /// Expected chain id; when set every endpoint must serve it.
    pub chain_id: Option<u64>,
    /// `safe`, `finalized`, or a number of confirmations below the head (default `"3"`). A
    /// shallower pin lets a short reorg decide.
    #[serde(default = "default_read_at")]
    pub read_at: String,
    /// Seconds: when the pinned block's timestamp is older than this, nothing is decided
    /// ("chain stale", UNAVAILABLE), since an old view hides revocations (default 300).
    #[serde(default = "default_staleness")]
    pub max_staleness_secs: u64,
    /// Timeout of one JSON-RPC request, in milliseconds (default 5000).
    #[serde(default = "default_timeout")]
    pub request_timeout_ms: u64,
    /// Extra attempts after a failed request, for transport errors and timeouts only
    /// (default 2).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Seconds a cached registry decision may be served at most, even when no event drops it
    /// (default 600).
    #[serde(default = "default_cache_ttl")]
    pub cache_ttl_secs: u64,
    /// How often the head and the registry's events are polled, in milliseconds (default
    /// 2000); keep it at or below the block time. The node's standing is also re-checked at
    /// least every `4 × max(poll_interval_ms, 200 ms)`.
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
/// Every field is sealed (files by their contents); a hardware node refuses any root that is not
/// AMD's.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustSection {
    /// Trust the simulator's test root (development only; the node warns loudly). Refused on
    /// the hardware platform and in builds without the `simulator` feature.
    #[serde(default)]
    pub simulator_root: bool,
    /// Extra root PEM files (ARK, or ASK then ARK), each trusted for the product its ARK names. On hardware only
    /// AMD's own ARKs are accepted here; the digest covers each file's ARK public key.
    #[serde(default)]
    pub extra_roots: Vec<PathBuf>,
    /// AMD CRLs (DER) to check revocations against; the digest covers each file's bytes.
    #[serde(default)]
    pub crls: Vec<PathBuf>,
}

/// The node's own TEE: where its sealing key and its evidence come from. Only the kind
/// (`hardware` or `simulator`) is sealed; which chip and image the node runs on is stated by
/// its evidence and checked by the registry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum PlatformConfig {
    /// Real SEV-SNP hardware (configfs-tsm, or /dev/sev-guest).
    Hardware,
    /// The simulator: a chip seed and the launch facts of the simulated KMS image.
    Simulator {
        /// The simulated chip's product (`milan`, `genoa`, `turin`).
        product: Product,
        /// Any string; the same seed is the same simulated chip.
        chip_seed: String,
        /// Hex launch digest (48 bytes) of the simulated KMS image.
        measurement: String,
    },
}

/// `[limits]`: the replay window and what a flood can cost. Every field has a default
/// ([`Limits::default`]). Sealed, except the cache sizes (`verified_chain_cache`,
/// `decision_cache`, `grant_cache`), `audit_commit_delay_us` and the connection limits, which
/// cannot change a release.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Seconds a challenge nonce stays valid (default 60): the replay window of a report.
    pub nonce_ttl_secs: u64,
    /// Used challenges remembered at once, so each is accepted once (default 100 000). Issued
    /// challenges cost nothing (MAC'd, not stored): no number of GetChallenge calls fills
    /// anything. Past half of it, challenge generations turn over early.
    pub max_outstanding_nonces: usize,
    /// Largest request accepted, in bytes (a report and its certificates fit in 16 KiB;
    /// default 64 KiB).
    pub max_request_bytes: usize,
    /// Requests processed at once on one connection; more wait (default 256). Applied per
    /// connection, not across the node.
    pub max_concurrent_requests: usize,
    /// Verified VCEK chains kept (one per machine and TCB; default 4096). Not sealed.
    pub verified_chain_cache: usize,
    /// Registry decisions cached (one per BootInfo in use: app, image, chip, TCB; default
    /// 10 000, about 0.5 KiB each). At the bound, expired ones go first, else all: every
    /// BootInfo's next request reads the chain again. Not sealed.
    pub decision_cache: usize,
    /// Derived and signed app keys cached (one per app and epoch in use; default 10 000, about
    /// 0.5 KiB each, wiped when dropped). At the bound the cache starts over: each app's next
    /// request derives and signs again (about 80 µs). Not sealed.
    pub grant_cache: usize,
    /// Requests per second per client IP address (token bucket; GetChallenge, GetAppKey and
    /// Onboard); 0 disables (default 200). Behind a proxy every client is the proxy.
    pub per_client_rate: f64,
    /// Bucket size of the per-client limit: requests a client may make at once (default 400;
    /// 0 counts as 1).
    pub per_client_burst: u32,
    /// GetAppKey requests per second per app id; 0 disables (default 500). Counted only once
    /// the registry allows the request (verified evidence bound to the app, on an allowed
    /// image, TCB and device), so requests naming a victim app do not spend its budget.
    pub per_app_rate: f64,
    /// Bucket size of the per-app limit (default 1000; 0 counts as 1).
    pub per_app_burst: u32,
    /// Longest a key-release record waits for those of other requests in progress, to share
    /// one disk sync with them (microseconds; 0 syncs every record at once). A lone request
    /// never waits. Default 2000. Not sealed.
    pub audit_commit_delay_us: u64,
    /// TCP connections one client address may hold on the gRPC listener; more are closed at
    /// once (default 64). Not sealed.
    pub max_connections_per_peer: usize,
    /// TCP connections in all (default 4096; each takes two descriptors, so keep it below half
    /// the open-file limit: the systemd unit sets 65536). Past it, a new connection closes the
    /// oldest one of the address (IPv6: /64) holding the most, so addresses holding
    /// connections never shut a fresh one out. Not sealed.
    pub max_connections: usize,
    /// Seconds a new connection has to send the first 24 bytes of a handshake (the HTTP/2
    /// preface, or a TLS ClientHello) before it is closed; also the TLS handshake timeout
    /// (default 10). Not sealed.
    pub connection_first_bytes_secs: u64,
    /// Seconds after which, 30 s later still, a connection is closed (requests then in flight
    /// fail and clients reconnect; default 600). Not sealed.
    pub max_connection_age_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            nonce_ttl_secs: 60,
            max_outstanding_nonces: 100_000,
            max_request_bytes: 64 * 1024,
            max_concurrent_requests: 256,
            verified_chain_cache: 4096,
            decision_cache: 10_000,
            grant_cache: 10_000,
            per_client_rate: 200.0,
            per_client_burst: 400,
            per_app_rate: 500.0,
            per_app_burst: 1000,
            audit_commit_delay_us: 2000,
            max_connections_per_peer: 64,
            max_connections: 4096,
            connection_first_bytes_secs: 10,
            max_connection_age_secs: 600,
        }
    }
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file given does not exist.
    #[error("configuration: {} does not exist", .0.display())]
    NotFound(PathBuf),
    /// The TOML, or an `SNPKMS_NODE__*` override, does not parse or does not fit the schema
    /// (a missing or unknown key, a wrong type); the message names the key.
    #[error("configuration: {0}")]
    Parse(#[from] Box<figment::Error>),
    /// A setting parses but is not acceptable (a bad `read_at`, an invalid policy, a root a
    /// hardware node may not trust, a malformed pin or CRL, …).
    #[error("configuration: {field}: {message}")]
    Invalid {
        /// The setting, as a TOML path (`chain.read_at`, `trust.extra_roots`, …).
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A file the configuration names (a pinned CA, an extra root, a CRL) cannot be read.
    #[error("configuration: {what}: cannot read {}: {source}", path.display())]
    File {
        /// The setting that names the file.
        what: String,
        /// The file.
        path: PathBuf,
        /// The I/O error.
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
            kds: KdsSection::default(),
        }
    }

    /// Loads `path` and applies `SNPKMS_NODE__*` overrides.
    pub fn load(path: &Path) -> Result<NodeConfig, ConfigError> {
        if !path.exists() {
            return Err(ConfigError::NotFound(path.to_path_buf()));
        }
        Self::from_figment(Figment::new().merge(Toml::file(path)))
    }

    /// Parses `text` as a `node.toml` and, like [`NodeConfig::load`], applies the
    /// `SNPKMS_NODE__*` environment overrides.
    pub fn from_toml_str(text: &str) -> Result<NodeConfig, ConfigError> {
        Self::from_figment(Figment::new().merge(Toml::string(text)))
    }

    fn from_figment(figment: Figment) -> Result<NodeConfig, ConfigError> {
        let cfg: NodeConfig = figment
            .merge(Env::prefixed("SNPKMS_NODE__").split("__"))
            .extract()
            .map_err(|e| ConfigError::Parse(Box::new(e)))?;
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
