//! A whole snpkms deployment on loopback for tests: a real anvil with the registry deployed
//! from the committed artifacts, KMS nodes started in-process on ephemeral ports with the
//! simulator root trusted explicitly, and simulated guests. Panics on set-up failure: tests only.

use snpkms_api::pb::kms_client::KmsClient;
use snpkms_chain_client::{Address, B256};
use snpkms_guest::GuestClient;
use snpkms_kms_node::config::{NodeConfig, PlatformConfig};
use snpkms_kms_node::RunningNode;
use snpkms_platform::SimulatedAttestor;
use snpkms_simulator::{GuestLaunch, SimulatedPlatform};
use snpkms_testkit::{deploy_fixture, Fixture, RpcProxy, KMS_MEASUREMENT};
use snpkms_verifier::Product;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The OS image the stack registers; simulated guests launch with it.
pub const GUEST_IMAGE: [u8; 48] = [0x6a; 48];
pub const GUEST_CHIP: &str = "e2e-guest-chip";

pub use snpkms_local::authority;

/// A simulated guest of `app` running `compose_hash` on `GUEST_IMAGE`, as a VMM would launch
/// it (host_data bound to the app and compose).
pub fn guest(app: Address, compose_hash: [u8; 32]) -> SimulatedAttestor {
    guest_with(
        app,
        compose_hash,
        GUEST_IMAGE,
        GuestLaunch::default().policy,
    )
}

/// [`guest`] with another image and guest policy.
pub fn guest_with(
    app: Address,
    compose_hash: [u8; 32],
    measurement: [u8; 48],
    policy: u64,
) -> SimulatedAttestor {
    let platform = SimulatedPlatform::new(authority(), Product::Milan, GUEST_CHIP.as_bytes());
    snpkms_local::simulated_guest(
        Arc::new(platform),
        app.0 .0,
        compose_hash,
        measurement,
        policy,
    )
}

/// A guest of the stack's app and compose on `platform` (any simulated machine: another chip,
/// a host that supplies no certificates, a cloud provider's VLEK), launched with `GUEST_IMAGE`.
pub fn guest_on(platform: SimulatedPlatform, stack: &Stack) -> SimulatedAttestor {
    SimulatedAttestor::new(snpkms_simulator::SimulatedGuest::new(
        Arc::new(platform),
        GuestLaunch {
            measurement: GUEST_IMAGE,
            host_data: snpkms_verifier::app_host_data(&stack.app().0 .0, &stack.compose_hash),
            ..GuestLaunch::default()
        },
    ))
}

/// The chip id of the simulated guest machine (to allow it as a device).
pub fn guest_chip_id() -> [u8; 64] {
    SimulatedPlatform::new(authority(), Product::Milan, GUEST_CHIP.as_bytes()).chip_id()
}

/// A node configuration for this stack: the harness's simulated node, with the fixture's KMS
/// image.
pub fn node_config(
    rpc_url: &str,
    registry: Address,
    data_dir: &Path,
    chip_seed: &str,
) -> NodeConfig {
    snpkms_local::simulated_node(rpc_url, registry, data_dir, chip_seed, KMS_MEASUREMENT)
}

/// Allows the simulated guests of [`guest`] on `fixture`: their OS image, and their machine as
/// a device of the fixture's app.
pub async fn allow_simulated_guests(fixture: &Fixture) {
    fixture
        .governor
        .add_os_image(&GUEST_IMAGE)
        .await
        .expect("addOsImage");
    fixture
        .app_owner
        .add_device(fixture.app, snpkms_governance::device_id(&guest_chip_id()))
        .await
        .expect("addDevice");
}

/// The chain, the registry configured for simulated guests, and one bootstrapped node.
pub struct Stack {
    pub fixture: Fixture,
    /// The node talks to the chain through this proxy, so tests can cut it off.
    pub proxy: RpcProxy,
    pub node: Option<RunningNode>,
    pub config: NodeConfig,
    pub data_dir: tempfile::TempDir,
    pub compose_hash: [u8; 32],
    /// The KMS root signing address registered on-chain: what guests trust.
    pub root: [u8; 20],
    /// The node's security-configuration digest, allowed on-chain.
    pub config_digest: B256,
}

impl Stack {
    pub async fn start() -> Stack {
        let fixture = deploy_fixture().await;
        let compose_hash = snpkms_testkit::COMPOSE_HASH;
        allow_simulated_guests(&fixture).await;
        let proxy = RpcProxy::start(&fixture.chain.url).await;
        let data_dir = tempfile::tempdir().expect("tempdir");
        let config = node_config(
            &proxy.url,
            fixture.deployment.registry,
            data_dir.path(),
            "e2e-kms-chip-1",
        );
        let registered = snpkms_local::register_node(&fixture.governor, &config)
            .await
            .expect("bootstrap and register");
        let (root, config_digest) = (registered.root, registered.config_digest);
        let mut stack = Stack {
            fixture,
            proxy,
            node: None,
            config,
            data_dir,
            compose_hash,
            root: root.0 .0,
            config_digest,
        };
        stack.start_node().await;
        stack
    }

    /// (Re)starts the node on its store and waits until it serves.
    pub async fn start_node(&mut self) {
        let node = snpkms_kms_node::start(self.config.clone())
            .await
            .expect("start node");
        for _ in 0..200 {
            if node.node.state().serving.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(
            node.node.state().serving.is_ok(),
            "node not serving: {:?}",
            node.node.state().serving
        );
        self.node = Some(node);
    }

    /// Gives the node another security configuration: its root cannot follow (it is sealed
    /// under the old digest), so the node starts from an empty data dir with a new root that
    /// governance registers, its new digest allowed. (A deployment keeps its root by onboarding
    /// a node with the new configuration from a peer; `replication.rs` tests that.)
    pub async fn reconfigure(&mut self, change: impl FnOnce(&mut NodeConfig)) {
        self.stop_node().await;
        change(&mut self.config);
        self.data_dir = tempfile::tempdir().expect("tempdir");
        self.config.data_dir = self.data_dir.path().to_path_buf();
        let registered = snpkms_local::register_node(&self.fixture.governor, &self.config)
            .await
            .expect("bootstrap and register");
        self.config_digest = registered.config_digest;
        self.root = registered.root.0 .0;
        self.start_node().await;
    }

    /// Waits until the node's chain view is pinned at `block` or later (the events up to it
    /// processed).
    pub async fn wait_pinned(&self, block: u64) {
        let node = self.node.as_ref().expect("node running");
        for _ in 0..500 {
            if node
                .chain()
                .pinned_block()
                .is_some_and(|b| b.number >= block)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the node's view never reached block {block}");
    }

    pub async fn stop_node(&mut self) {
        if let Some(node) = self.node.take() {
            node.stop().await.expect("stop node");
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.node.as_ref().expect("node running").addr)
    }

    pub fn app(&self) -> Address {
        self.fixture.app
    }

    pub async fn client(&self) -> GuestClient {
        GuestClient::connect(&self.url()).await.expect("connect")
    }

    pub async fn raw_client(&self) -> KmsClient<tonic::transport::Channel> {
        KmsClient::connect(self.url()).await.expect("connect")
    }

    /// Mines enough blocks for changes to be read and waits for the node's follower.
    pub async fn settle(&self) {
        self.fixture.chain.mine(1).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    /// Starts an extra node: onboards it from `peers` with its own chip and `measurement`,
    /// then serves. Returns the onboarding error if the peers refused it.
    pub async fn join(
        &self,
        chip_seed: &str,
        measurement: [u8; 48],
        peers: &[String],
    ) -> Result<(RunningNode, NodeConfig, tempfile::TempDir), String> {
        self.join_with(chip_seed, measurement, peers, |_| {}).await
    }

    /// [`Stack::join`] with the joiner's configuration changed by `change` first.
    pub async fn join_with(
        &self,
        chip_seed: &str,
        measurement: [u8; 48],
        peers: &[String],
        change: impl FnOnce(&mut NodeConfig),
    ) -> Result<(RunningNode, NodeConfig, tempfile::TempDir), String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = node_config(
            &self.proxy.url,
            self.fixture.deployment.registry,
            dir.path(),
            chip_seed,
        );
        change(&mut cfg);
        cfg.platform = PlatformConfig::Simulator {
            product: Product::Milan,
            chip_seed: chip_seed.to_string(),
            measurement: hex::encode(measurement),
        };
        snpkms_kms_node::join(&cfg, peers)
            .await
            .map_err(|e| e.to_string())?;
        let node = snpkms_kms_node::start(cfg.clone())
            .await
            .map_err(|e| e.to_string())?;
        for _ in 0..200 {
            if node.node.state().serving.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Ok((node, cfg, dir))
    }

    /// Lets the stack's app run on any device (and guests with no device identity).
    pub async fn allow_any_device(&self) {
        self.fixture
            .app_owner
            .set_allow_any_device(self.app(), true)
            .await
            .expect("setAllowAnyDevice");
    }

    pub fn compose(&self) -> B256 {
        B256::from(self.compose_hash)
    }
}

/// The metrics a node serves at `addr` (`host:port`), fetched with a real HTTP client.
pub async fn metrics_text(addr: &str) -> String {
    snpkms_local::scrape(addr).await.expect("GET /metrics")
}

pub mod threshold;
