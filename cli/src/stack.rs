//! The dev stack `snpkms dev` and `snpkms bench` run: the local harness's deployment
//! (`snpkms-local`) with the demo app and one KMS node on the SNP simulator (the simulator root
//! trusted, explicitly), all state in one directory.

use anyhow::Context;
use sha2::{Digest, Sha256, Sha384};
use snpkms_chain_client::{Address, B256};
use snpkms_governance::{device_id, Deployment, Owner};
use snpkms_kms_node::config::{Limits, NodeConfig};
use snpkms_local::{LocalChain, LocalRegistry};
use snpkms_simulator::{default_tcb, SimulatedPlatform};
use snpkms_verifier::Product;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const PRODUCT: Product = Product::Milan;
pub const DEMO_COMPOSE: &str =
    "services:\n  web:\n    image: nginx:1.27\n    ports: [\"8080:80\"]\n";

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn write_secret(path: &Path, contents: &str) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(contents.as_bytes())?;
    Ok(())
}

/// Options of a local stack.
pub struct StackOptions {
    pub dir: PathBuf,
    pub anvil: Option<PathBuf>,
    pub block_time: u64,
    /// The node's `chain.read_at`.
    pub read_at: String,
    pub limits: Limits,
}

/// Everything set up, the node bootstrapped and registered but not yet started.
pub struct LocalStack {
    pub chain: LocalChain,
    pub deployment: Deployment,
    pub app_owner: Owner,
    pub app: Address,
    pub compose_path: PathBuf,
    pub compose_hash: [u8; 32],
    pub guest_image: [u8; 48],
    pub guest_platform: Arc<SimulatedPlatform>,
    pub node_config: NodeConfig,
    pub config_path: PathBuf,
}

impl LocalStack {
    /// Builds the stack, calling `step(n, text)` after each of the first six steps.
    pub async fn build(
        opts: StackOptions,
        mut step: impl FnMut(u32, String),
    ) -> anyhow::Result<LocalStack> {
        let dir = &opts.dir;
        if dir.exists() {
            std::fs::remove_dir_all(dir).with_context(|| format!("wiping {}", dir.display()))?;
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;

        let anvil = match opts.anvil {
            Some(path) => path,
            None => snpkms_local::anvil_path()?,
        };
        let block_time = opts.block_time.to_string();
        let chain = LocalChain::spawn(
            &anvil,
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            &["--block-time", &block_time],
        )?;
        step(
            1,
            format!(
                "local chain (anvil, {} s blocks) at {}",
                opts.block_time, chain.url
            ),
        );

        // anvil's first two development accounts (public test keys, never use elsewhere).
        write_secret(&dir.join("governor.key"), &chain.key_hex(0))?;
        write_secret(&dir.join("app-owner.key"), &chain.key_hex(1))?;
        let LocalRegistry {
            deployment,
            governor,
            app_owner,
            ..
        } = LocalRegistry::deploy(&chain, |_| {})
            .await
            .context("deploying the registry")?;
        std::fs::write(dir.join("deployment.json"), deployment.to_json())?;
        let registry = deployment.registry;
        step(
            2,
            format!(
                "KmsRegistry deployed: proxy {registry}, implementation {}",
                deployment.implementation
            ),
        );

        // Governance: which guest image and TCB may get keys, which KMS image may hold the root.
        let guest_image: [u8; 48] = Sha384::digest(b"snpkms dev guest image v1").into();
        let kms_image: [u8; 48] = Sha384::digest(b"snpkms dev kms image v1").into();
        governor.add_os_image(&guest_image).await?;
        governor.add_kms_measurement(&kms_image).await?;
        governor.set_min_tcb(PRODUCT, default_tcb(PRODUCT)).await?;
        // A development stack runs its KMS on whatever simulated chip; production lists chips.
        governor.set_any_kms_chip_allowed(true).await?;
        step(
            3,
            format!(
                "governance: OS image {}, KMS image {}, minimum {PRODUCT} TCB {}, any KMS chip",
                short(&guest_image),
                short(&kms_image),
                default_tcb(PRODUCT)
            ),
        );

        let (app, _) = app_owner.register_app(B256::from([0x01; 32])).await?;
        let compose_path = dir.join("compose.yaml");
        std::fs::write(&compose_path, DEMO_COMPOSE)?;
        let compose_hash: [u8; 32] = Sha256::digest(DEMO_COMPOSE.as_bytes()).into();
        app_owner
            .add_compose_hash(app, B256::from(compose_hash))
            .await?;
        let guest_platform = Arc::new(SimulatedPlatform::new(
            snpkms_local::authority(),
            PRODUCT,
            b"snpkms-dev-guest",
        ));
        app_owner
            .add_device(app, device_id(&guest_platform.chip_id()))
            .await?;
        step(
            4,
            format!(
                "demo app {app} registered by {}: compose hash 0x{}, guest machine allowed",
                app_owner.address(),
                hex::encode(compose_hash)
            ),
        );

        let mut node_config = snpkms_local::simulated_node(
            &chain.url,
            registry,
            &dir.join("node1"),
            "snpkms-dev-kms-1",
            kms_image,
        );
        node_config.listen = format!("127.0.0.1:{}", free_port()?).parse()?;
        node_config.metrics_listen = Some(format!("127.0.0.1:{}", free_port()?).parse()?);
        node_config.chain.chain_id = Some(deployment.chain_id);
        node_config.chain.read_at = opts.read_at.clone();
        node_config.chain.max_staleness_secs = 60;
        node_config.chain.request_timeout_ms = 2000;
        node_config.chain.retries = 1;
        node_config.chain.cache_ttl_secs = 300;
        node_config.chain.poll_interval_ms = 250;
        node_config.limits = opts.limits;
        let config_path = dir.join("node1.toml");
        std::fs::write(&config_path, node_config.to_toml()?)?;
        let registered = snpkms_local::register_node(&governor, &node_config).await?;
        step(
            5,
            format!(
                "KMS node bootstrapped on the SNP simulator: root signing address {} (config {})",
                registered.bootstrap.root_signing_address,
                config_path.display()
            ),
        );
        step(
            6,
            format!(
                "KMS info and the node's configuration digest {} registered on-chain",
                registered.config_digest
            ),
        );

        Ok(LocalStack {
            chain,
            deployment,
            app_owner,
            app,
            compose_path,
            compose_hash,
            guest_image,
            guest_platform,
            node_config,
            config_path,
        })
    }

    /// The demo app's guest, on the simulated guest machine.
    pub fn guest(&self) -> snpkms_platform::SimulatedAttestor {
        self.guest_of(self.app)
    }

    /// A guest of `app` (running the demo compose file), on the simulated guest machine.
    pub fn guest_of(&self, app: Address) -> snpkms_platform::SimulatedAttestor {
        snpkms_local::simulated_guest(
            self.guest_platform.clone(),
            app.0 .0,
            self.compose_hash,
            self.guest_image,
            snpkms_simulator::GuestLaunch::default().policy,
        )
    }

    /// Registers `n` more apps like the demo app (its compose hash, the guest machine allowed),
    /// with every transaction mined at once (automine), then mines every `block_time` seconds
    /// again.
    pub async fn register_apps(&self, n: usize, block_time: u64) -> anyhow::Result<Vec<Address>> {
        self.chain.set_automine(true).await?;
        let device = device_id(&self.guest_platform.chip_id());
        let mut apps = Vec::with_capacity(n);
        let registered = async {
            for i in 0..n {
                let mut salt = [0x02u8; 32];
                salt[24..].copy_from_slice(&(i as u64).to_be_bytes());
                let (app, _) = self.app_owner.register_app(B256::from(salt)).await?;
                self.app_owner
                    .add_compose_hash(app, B256::from(self.compose_hash))
                    .await?;
                self.app_owner.add_device(app, device).await?;
                apps.push(app);
            }
            anyhow::Ok(())
        }
        .await;
        self.chain.set_interval_mining(block_time).await?;
        registered?;
        Ok(apps)
    }
}

pub fn short(bytes: &[u8]) -> String {
    format!("{}…", hex::encode(&bytes[..6]))
}
