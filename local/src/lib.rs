//! One local snpkms deployment on one machine: a real anvil ([`LocalChain`]), the registry
//! deployed from the committed artifacts with its governor and an app owner
//! ([`LocalRegistry`]), and KMS nodes on the SNP simulator: configured ([`simulated_node`]),
//! bootstrapped and registered ([`LocalRegistry::register_node`]). `snpkms dev`, `snpkms bench`
//! and every test build their deployments from these, so there is one way to do it.
//!
//! The simulator's root is trusted by the nodes made here, explicitly: this is for development
//! and tests only (the crate needs the `simulator` features of the node and the platform).

#![warn(missing_docs)]

use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::providers::ext::AnvilApi;
use alloy::providers::{DynProvider, Provider};
use alloy::signers::local::PrivateKeySigner;
use snpkms_chain_client::{Address, ChainError, RpcEndpoint, B256};
use snpkms_governance::{deploy_registry_with_progress, Deployment, Owner, Progress};
use snpkms_kms_node::config::{ChainSection, NodeConfig, PlatformConfig};
use snpkms_kms_node::BootstrapOutput;
use snpkms_simulator::{GuestLaunch, SimAuthority, SimulatedGuest, SimulatedPlatform};
use snpkms_verifier::{app_host_data, Product};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What can go wrong setting a deployment up.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// No anvil binary.
    #[error("anvil not found at {}: run scripts/setup (it installs forge/anvil/cast from npm), or set SNPKMS_ANVIL", .0.display())]
    NoAnvil(PathBuf),
    /// anvil did not start.
    #[error("cannot start anvil ({}): {message}", path.display())]
    Anvil {
        /// The binary.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A chain read or transaction failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The node could not be bootstrapped.
    #[error("bootstrapping the node: {0}")]
    Node(#[from] snpkms_kms_node::NodeError),
    /// The bootstrap output does not parse.
    #[error("bootstrap output: {0}")]
    Bootstrap(String),
}

/// The workspace root: where `node_modules/` and the committed artifacts are.
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// The anvil binary: `$SNPKMS_ANVIL`, else the one `scripts/setup` installs under
/// `node_modules/` (of the workspace, or of the current directory).
pub fn anvil_path() -> Result<PathBuf, LocalError> {
    if let Some(p) = std::env::var_os("SNPKMS_ANVIL") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(LocalError::NoAnvil(p))
        };
    }
    let rel = "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil";
    let candidates = [workspace_root().join(rel), PathBuf::from(rel)];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| LocalError::NoAnvil(candidates[0].clone()))
}

/// A running anvil on a loopback port; killed on drop.
pub struct LocalChain {
    /// The process.
    pub anvil: AnvilInstance,
    /// Its JSON-RPC URL.
    pub url: String,
    provider: DynProvider,
}

impl LocalChain {
    /// Starts `anvil` on `host` (a loopback address) with extra arguments (e.g.
    /// `["--block-time", "1"]`; without one, anvil mines a block per transaction).
    pub fn spawn(anvil: &Path, host: IpAddr, args: &[&str]) -> Result<LocalChain, LocalError> {
        let instance = Anvil::at(anvil)
            .host(host.to_string())
            .args(args.iter().copied())
            .try_spawn()
            .map_err(|e| LocalError::Anvil {
                path: anvil.to_path_buf(),
                message: e.to_string(),
            })?;
        let url = instance.endpoint();
        let provider = RpcEndpoint::new(&url)?.provider()?;
        Ok(LocalChain {
            anvil: instance,
            url,
            provider,
        })
    }

    /// The i-th funded account (0: governor, 1: app owner, 2: a stranger).
    pub fn signer(&self, i: usize) -> PrivateKeySigner {
        PrivateKeySigner::from_signing_key(self.anvil.keys()[i].clone().into())
    }

    /// The i-th account's private key, hex (anvil's public development keys).
    pub fn key_hex(&self, i: usize) -> String {
        hex::encode(self.anvil.keys()[i].to_bytes())
    }

    /// A raw provider (no signer), e.g. for `anvil_*` calls.
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// The head block's number.
    pub async fn head(&self) -> Result<u64, LocalError> {
        self.provider
            .get_block_number()
            .await
            .map_err(|e| ChainError::Rpc {
                url: self.url.clone(),
                method: "eth_blockNumber",
                message: e.to_string(),
            })
            .map_err(Into::into)
    }

    /// Mines `n` empty blocks.
    pub async fn mine(&self, n: u64) -> Result<(), LocalError> {
        self.provider
            .anvil_mine(Some(n), None)
            .await
            .map_err(|e| anvil_call("anvil_mine", &self.url, e))
    }

    /// Turns automine on or off.
    pub async fn set_automine(&self, on: bool) -> Result<(), LocalError> {
        self.provider
            .anvil_set_auto_mine(on)
            .await
            .map_err(|e| anvil_call("evm_setAutomine", &self.url, e))
    }

    /// Mines a block every `secs` seconds (again, after automine).
    pub async fn set_interval_mining(&self, secs: u64) -> Result<(), LocalError> {
        self.provider
            .anvil_set_interval_mining(secs)
            .await
            .map_err(|e| anvil_call("evm_setIntervalMining", &self.url, e))
    }

    /// Mines one block with this timestamp.
    pub async fn mine_at(&self, timestamp: u64) -> Result<(), LocalError> {
        self.provider
            .anvil_set_next_block_timestamp(timestamp)
            .await
            .map_err(|e| anvil_call("evm_setNextBlockTimestamp", &self.url, e))?;
        self.mine(1).await
    }
}

fn anvil_call(method: &'static str, url: &str, e: impl std::fmt::Display) -> LocalError {
    LocalError::Chain(ChainError::Rpc {
        url: url.to_string(),
        method,
        message: e.to_string(),
    })
}

/// A registry deployed on a local chain, with its governor (account 0), an app owner
/// (account 1) and a stranger (account 2).
pub struct LocalRegistry {
    /// Addresses and block of the deployment.
    pub deployment: Deployment,
    /// The registry owner.
    pub governor: Owner,
    /// Owns the apps the deployment registers.
    pub app_owner: Owner,
    /// Owns nothing.
    pub stranger: Owner,
}

/// What [`LocalRegistry::register_node`] registered.
pub struct RegisteredNode {
    /// What `snpkms node bootstrap` printed.
    pub bootstrap: BootstrapOutput,
    /// The KMS root signing address.
    pub root: Address,
    /// The node's security-configuration digest, now allowed.
    pub config_digest: B256,
}

impl LocalRegistry {
    /// Deploys the registry from the committed artifacts, `progress` seeing each transaction.
    pub async fn deploy(
        chain: &LocalChain,
        progress: impl Fn(&Progress) + Send + Sync + 'static,
    ) -> Result<LocalRegistry, LocalError> {
        let governor_key = chain.signer(0);
        let deployment = deploy_registry_with_progress(
            &chain.url,
            governor_key.clone(),
            governor_key.address(),
            progress,
        )
        .await?;
        let registry = deployment.registry;
        Ok(LocalRegistry {
            governor: Owner::new(&chain.url, governor_key, registry)?,
            app_owner: Owner::new(&chain.url, chain.signer(1), registry)?,
            stranger: Owner::new(&chain.url, chain.signer(2), registry)?,
            deployment,
        })
    }

    /// [`register_node`] with this registry's governor.
    pub async fn register_node(&self, config: &NodeConfig) -> Result<RegisteredNode, LocalError> {
        register_node(&self.governor, config).await
    }
}

/// Bootstraps a node with `config` (in its data dir), and registers what governance registers
/// after `snpkms node check-bootstrap`: its configuration digest and its KMS info.
pub async fn register_node(
    governor: &Owner,
    config: &NodeConfig,
) -> Result<RegisteredNode, LocalError> {
    {
        let bootstrap = snpkms_kms_node::bootstrap(config)?;
        let root: Address = bootstrap
            .root_signing_address
            .parse()
            .map_err(|e| LocalError::Bootstrap(format!("root_signing_address: {e}")))?;
        let config_digest: B256 = bootstrap
            .config_digest
            .parse()
            .map_err(|e| LocalError::Bootstrap(format!("config_digest: {e}")))?;
        governor.add_kms_config(config_digest).await?;
        governor.set_kms_info(root, &[]).await?;
        Ok(RegisteredNode {
            bootstrap,
            root,
            config_digest,
        })
    }
}

/// The configuration of a KMS node on the simulator, for a local chain: `chip_seed` names its
/// simulated machine, `measurement` its image; it trusts the simulator root and reads at
/// `latest` with fast polling (callers change what they need).
pub fn simulated_node(
    rpc_url: &str,
    registry: Address,
    data_dir: &Path,
    chip_seed: &str,
    measurement: [u8; 48],
) -> NodeConfig {
    let mut chain = ChainSection::new(vec![rpc_url.to_string().into()], registry);
    chain.read_at = "0".into();
    chain.max_staleness_secs = 3600;
    chain.request_timeout_ms = 1000;
    chain.retries = 0;
    chain.poll_interval_ms = 50;
    let mut cfg = NodeConfig::new(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir.to_path_buf(),
        chain,
        PlatformConfig::Simulator {
            product: Product::Milan,
            chip_seed: chip_seed.to_string(),
            measurement: hex::encode(measurement),
        },
    );
    cfg.metrics_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    cfg.trust.simulator_root = true;
    // Simulated hosts supply their certificates; a local stack never reaches out to AMD.
    cfg.kds.urls = Vec::new();
    cfg
}

/// The simulator's authority (its test ARK and ASKs), loaded once.
pub fn authority() -> Arc<SimAuthority> {
    static A: std::sync::OnceLock<Arc<SimAuthority>> = std::sync::OnceLock::new();
    A.get_or_init(|| Arc::new(SimAuthority::load())).clone()
}

/// A simulated guest of `app` running `compose_hash` on the image `measurement`, on the
/// simulated machine `platform`, as a VMM would launch it (host_data bound to the app and
/// compose).
pub fn simulated_guest(
    platform: Arc<SimulatedPlatform>,
    app: [u8; 20],
    compose_hash: [u8; 32],
    measurement: [u8; 48],
    policy: u64,
) -> snpkms_platform::SimulatedAttestor {
    snpkms_platform::SimulatedAttestor::new(SimulatedGuest::new(
        platform,
        GuestLaunch {
            measurement,
            host_data: app_host_data(&app, &compose_hash),
            policy,
            ..GuestLaunch::default()
        },
    ))
}

/// Reads a started `snpkms node run`'s stdout until its readiness line ([`snpkms_kms_node::Ready`]) and keeps
/// draining it in a thread (so the child never blocks on a full pipe). `None` if the process
/// ended first.
pub fn wait_ready(stdout: impl std::io::Read + Send + 'static) -> Option<snpkms_kms_node::Ready> {
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(stdout).lines();
    let ready = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| serde_json::from_str::<snpkms_kms_node::Ready>(&line).ok())?;
    std::thread::spawn(move || for _ in lines {});
    Some(ready)
}

/// GETs `/metrics` from a node's metrics listener at `addr` (`host:port`) with a real HTTP
/// client; the exposition text.
pub async fn scrape(addr: &str) -> Result<String, LocalError> {
    let http = |e: &dyn std::fmt::Display| {
        LocalError::Chain(ChainError::Unreachable {
            url: format!("http://{addr}/metrics"),
            reason: e.to_string(),
        })
    };
    let endpoint = RpcEndpoint::new(&format!("http://{addr}"))?;
    let client = snpkms_chain_client::http_client(&endpoint)?;
    let response = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .map_err(|e| http(&e))?;
    response.text().await.map_err(|e| http(&e))
}
