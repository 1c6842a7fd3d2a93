//! A local deployment on one machine, shared by `snpkms dev` and `snpkms bench`: anvil, the
//! registry deployed from the committed artifacts, governance and a demo app configured, and one
//! KMS node bootstrapped on the SNP simulator (the simulator root trusted, explicitly).

use anyhow::{bail, Context};
use sha2::{Digest, Sha256, Sha384};
use snpkms_chain_client::{Address, B256};
use snpkms_governance::{
    deploy_registry_with_progress, device_id, signer_from_file, Deployment, Owner,
};
use snpkms_kms_node::config::{ChainSection, Limits, NodeConfig, PlatformConfig, TrustSection};
use snpkms_simulator::{default_tcb, GuestLaunch, SimAuthority, SimulatedGuest, SimulatedPlatform};
use snpkms_verifier::{app_host_data, Policy, Product};
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// anvil's first two well-known development accounts (public test keys, never use elsewhere).
const GOVERNOR_KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const APP_OWNER_KEY: &str = "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
pub const PRODUCT: Product = Product::Milan;
pub const DEMO_COMPOSE: &str =
    "services:\n  web:\n    image: nginx:1.27\n    ports: [\"8080:80\"]\n";

pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The anvil `scripts/setup` installs under node_modules.
pub fn default_anvil() -> PathBuf {
    let candidates = [
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"),
        PathBuf::from("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"),
    ];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| candidates[1].clone())
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

/// A running anvil, killed when dropped.
pub struct Anvil {
    /// Held for its `kill_on_drop`: the chain lives as long as the stack.
    _process: tokio::process::Child,
    pub url: String,
}

pub async fn start_anvil(path: &Path, block_time: u64) -> anyhow::Result<Anvil> {
    if !path.is_file() {
        bail!(
            "anvil not found at {}: run scripts/setup first (it installs forge/anvil/cast from npm), or pass --anvil",
            path.display()
        );
    }
    let port = free_port()?;
    let child = tokio::process::Command::new(path)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--block-time", &block_time.to_string()])
        .arg("--silent")
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", path.display()))?;
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if Instant::now() > deadline {
            bail!("anvil did not start listening on port {port} within 20 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(Anvil {
        _process: child,
        url,
    })
}

/// Options of a local stack.
pub struct StackOptions {
    pub dir: PathBuf,
    pub anvil: PathBuf,
    pub block_time: u64,
    /// The node's `chain.read_at`.
    pub read_at: String,
    pub limits: Limits,
}

/// Everything set up, the node bootstrapped and registered but not yet started.
pub struct LocalStack {
    pub anvil: Anvil,
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

        let anvil = start_anvil(&opts.anvil, opts.block_time).await?;
        step(
            1,
            format!(
                "local chain (anvil, {} s blocks) at {}",
                opts.block_time, anvil.url
            ),
        );

        let governor_key_file = dir.join("governor.key");
        let app_owner_key_file = dir.join("app-owner.key");
        write_secret(&governor_key_file, GOVERNOR_KEY)?;
        write_secret(&app_owner_key_file, APP_OWNER_KEY)?;
        let governor_signer = signer_from_file(&governor_key_file)?;
        let governor_address = governor_signer.address();
        let deployment = deploy_registry_with_progress(
            &anvil.url,
            governor_signer.clone(),
            governor_address,
            |_| {},
        )
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
        let governor = Owner::new(&anvil.url, governor_signer, registry)?;
        let guest_image: [u8; 48] = Sha384::digest(b"snpkms dev guest image v1").into();
        let kms_image: [u8; 48] = Sha384::digest(b"snpkms dev kms image v1").into();
        governor.add_os_image(&guest_image).await?;
        governor.add_kms_measurement(&kms_image).await?;
        governor.set_min_tcb(PRODUCT, default_tcb(PRODUCT)).await?;
        step(
            3,
            format!(
                "governance: OS image {}, KMS image {}, minimum {PRODUCT} TCB {}",
                short(&guest_image),
                short(&kms_image),
                default_tcb(PRODUCT)
            ),
        );

        let app_owner = Owner::new(&anvil.url, signer_from_file(&app_owner_key_file)?, registry)?;
        let (app, _) = app_owner.register_app(B256::from([0x01; 32])).await?;
        let compose_path = dir.join("compose.yaml");
        std::fs::write(&compose_path, DEMO_COMPOSE)?;
        let compose_hash: [u8; 32] = Sha256::digest(DEMO_COMPOSE.as_bytes()).into();
        app_owner
            .add_compose_hash(app, B256::from(compose_hash))
            .await?;
        let guest_platform = Arc::new(SimulatedPlatform::new(
            Arc::new(SimAuthority::load()),
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

        let node_config = NodeConfig {
            listen: format!("127.0.0.1:{}", free_port()?).parse()?,
            metrics_listen: Some(format!("127.0.0.1:{}", free_port()?).parse()?),
            data_dir: dir.join("node1"),
            tls: None,
            chain: ChainSection {
                rpc_urls: vec![anvil.url.clone().into()],
                quorum: 1,
                registry,
                chain_id: Some(deployment.chain_id),
                read_at: opts.read_at.clone(),
                max_staleness_secs: 60,
                request_timeout_ms: 2000,
                retries: 1,
                cache_ttl_secs: 300,
                poll_interval_ms: 250,
            },
            trust: TrustSection {
                simulator_root: true,
                extra_roots: vec![],
                crls: vec![],
            },
            policy: Policy::default(),
            platform: PlatformConfig::Simulator {
                product: PRODUCT,
                chip_seed: "snpkms-dev-kms-1".into(),
                measurement: hex::encode(kms_image),
            },
            limits: opts.limits,
        };
        let config_path = dir.join("node1.toml");
        std::fs::write(&config_path, node_config.to_toml()?)?;
        let boot = snpkms_kms_node::bootstrap::bootstrap(&node_config)?;
        step(
            5,
            format!(
                "KMS node bootstrapped on the SNP simulator: root signing address {} (config {})",
                boot.root_signing_address,
                config_path.display()
            ),
        );

        let root_signing_address: Address = boot.root_signing_address.parse()?;
        let config_digest: B256 = boot.config_digest.parse()?;
        governor.add_kms_config(config_digest).await?;
        governor.set_kms_info(root_signing_address, &[]).await?;
        step(
            6,
            format!(
                "KMS info and the node's configuration digest {config_digest} registered on-chain"
            ),
        );

        Ok(LocalStack {
            anvil,
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
        snpkms_platform::SimulatedAttestor::new(SimulatedGuest::new(
            self.guest_platform.clone(),
            GuestLaunch {
                measurement: self.guest_image,
                host_data: app_host_data(&self.app.0 .0, &self.compose_hash),
                ..GuestLaunch::default()
            },
        ))
    }
}

pub fn short(bytes: &[u8]) -> String {
    format!("{}…", hex::encode(&bytes[..6]))
}
