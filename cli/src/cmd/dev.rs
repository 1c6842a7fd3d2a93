//! `snpkms dev`: the whole product on one machine. A local chain (anvil), the registry deployed
//! from the committed artifacts, governance and a demo app configured, one KMS node bootstrapped
//! on the SNP simulator, and a simulated guest fetching its keys, checked on-chain.
//!
//! The simulator root is trusted here, explicitly and loudly: this is a development stack.

use anyhow::{bail, Context};
use sha2::{Digest, Sha256, Sha384};
use snpkms_chain_client::{
    deploy_registry_with_progress, device_id, signer_from_file, Address, AuditReader, Owner, B256,
};
use snpkms_guest::{GuestClient, SimulatedSource};
use snpkms_kms_node::config::{ChainSection, Limits, NodeConfig, PlatformConfig, TrustSection};
use snpkms_simulator::{default_tcb, GuestLaunch, SimAuthority, SimulatedGuest, SimulatedPlatform};
use snpkms_verifier::{app_host_data, Policy, Product};
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// anvil's first two well-known development accounts (public test keys, never use elsewhere).
const GOVERNOR_KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const APP_OWNER_KEY: &str = "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const PRODUCT: Product = Product::Milan;

const DEMO_COMPOSE: &str = "services:\n  web:\n    image: nginx:1.27\n    ports: [\"8080:80\"]\n";

#[derive(clap::Args)]
pub struct Args {
    /// Where the stack keeps its state (wiped at start).
    #[arg(long, default_value = ".dev")]
    dir: PathBuf,
    /// The anvil binary (default: the one `scripts/setup` installs under node_modules).
    #[arg(long, env = "SNPKMS_ANVIL")]
    anvil: Option<PathBuf>,
    /// Seconds between blocks on the local chain.
    #[arg(long, default_value_t = 1)]
    block_time: u64,
    /// Leave the stack running after the demo and print how to talk to it.
    #[arg(long)]
    keep_running: bool,
}

fn step(n: u32, text: impl std::fmt::Display) {
    println!("[{n}/9] {text}");
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn default_anvil() -> PathBuf {
    // The binary lives next to the workspace in development; fall back to the current directory.
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

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        tokio::select! {
            r = dev(args) => r,
            _ = tokio::signal::ctrl_c() => {
                // Dropping the stack kills anvil and stops the node.
                eprintln!("\ninterrupted: stopping everything the dev stack started");
                Ok(ExitCode::from(130))
            }
        }
    })
}

struct Anvil {
    child: tokio::process::Child,
    url: String,
}

async fn start_anvil(path: &Path, block_time: u64) -> anyhow::Result<Anvil> {
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
    Ok(Anvil { child, url })
}

async fn dev(args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let dir = &args.dir;
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("wiping {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;

    // 1. Chain.
    let anvil_path = args.anvil.clone().unwrap_or_else(default_anvil);
    let mut anvil = start_anvil(&anvil_path, args.block_time).await?;
    step(
        1,
        format!(
            "local chain (anvil, {} s blocks) at {}",
            args.block_time, anvil.url
        ),
    );

    // 2. Registry.
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

    // 3. Governance: which guest image and TCB may get keys, which KMS image may hold the root.
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

    // 4. A demo app with its compose file and the guest machine allowed.
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

    // 5. KMS node: root secret born inside the (simulated) TEE.
    let node_dir = dir.join("node1");
    let cfg = NodeConfig {
        listen: format!("127.0.0.1:{}", free_port()?).parse()?,
        metrics_listen: Some(format!("127.0.0.1:{}", free_port()?).parse()?),
        data_dir: node_dir.clone(),
        tls: None,
        chain: ChainSection {
            rpc_urls: vec![anvil.url.clone()],
            quorum: 1,
            registry,
            chain_id: Some(deployment.chain_id),
            read_at: "1".into(),
            max_staleness_secs: 60,
            request_timeout_ms: 2000,
            retries: 1,
            cache_ttl_secs: 300,
            poll_interval_ms: 500,
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
        limits: Limits::default(),
    };
    let config_path = dir.join("node1.toml");
    std::fs::write(&config_path, cfg.to_toml()?)?;
    let boot = snpkms_kms_node::bootstrap::bootstrap(&cfg)?;
    step(
        5,
        format!(
            "KMS node bootstrapped on the SNP simulator: root signing address {} (config {})",
            boot.root_signing_address,
            config_path.display()
        ),
    );

    // 6. Governance registers the node's KMS info.
    let root: Address = boot.root_signing_address.parse()?;
    governor.set_kms_info(root, &[]).await?;
    step(6, "KMS info registered on-chain");

    // 7. The node serves once the chain (at its confirmation depth) names its root.
    let node = snpkms_kms_node::start(cfg.clone()).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while node.node.state().serving.is_err() {
        if Instant::now() > deadline {
            bail!("the node is not serving: {:?}", node.node.state().serving);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let url = format!("http://{}", node.addr);
    step(
        7,
        format!(
            "KMS node serving gRPC at {url}, metrics at http://{}/metrics (simulator root trusted)",
            node.metrics_addr.map(|a| a.to_string()).unwrap_or_default()
        ),
    );

    // 8. A simulated guest of the demo app asks for its keys.
    let guest = SimulatedSource::new(SimulatedGuest::new(
        guest_platform,
        GuestLaunch {
            measurement: guest_image,
            host_data: app_host_data(&app.0 .0, &compose_hash),
            ..GuestLaunch::default()
        },
    ));
    let chain = node.node.chain().clone();
    let on_chain_root = chain.kms_info().await?.root_signing_address;
    let mut client = GuestClient::connect(&url).await?;
    let grant = client
        .get_app_key(
            &guest,
            app.0 .0,
            compose_hash,
            None,
            Some(on_chain_root.0 .0),
        )
        .await
        .context("the simulated guest's GetAppKey")?;
    step(
        8,
        format!(
            "guest got its keys (epoch {}): app signing address 0x{}, KMS signature by the on-chain root {on_chain_root}",
            grant.key_epoch,
            hex::encode(grant.app_signing_address)
        ),
    );

    // 9. Anyone can check the grant against the registry; auditors read the trail.
    let valid = chain
        .verify_app_key(
            app,
            Address::from(grant.app_signing_address),
            grant.key_epoch,
            &grant.kms_signature,
        )
        .await?;
    if !valid {
        bail!("the registry's verifyAppKey rejected the KMS signature");
    }
    step(
        9,
        "registry.verifyAppKey(app, signing address, epoch, signature) = true",
    );
    let events = AuditReader::new(&anvil.url, registry)?
        .events(None, deployment.block, None)
        .await?;
    println!("\naudit trail (on-chain events):");
    for e in events.iter().filter(|e| e.kind.name() != "Initialized") {
        println!(
            "  block {:>4}  {:<22} {}",
            e.block_number,
            e.kind.name(),
            e.kind.details()
        );
    }
    println!(
        "\ndev stack completed in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    if args.keep_running {
        let exe = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "snpkms".into());
        let addr = node.addr;
        println!(
            "\nThe stack is running. Press Ctrl-C to stop it.\n\
             \n  # gRPC (grpcurl, reflection is on)\n  grpcurl -plaintext {addr} list\n  grpcurl -plaintext -d '{{}}' {addr} snpkms.v1.Kms/GetKmsInfo\n\
             \n  # the registry (cast from node_modules)\n  node_modules/.bin/cast call {registry} 'kmsInfo()(address,bytes,uint32)' --rpc-url {rpc}\n\
             \n  # a guest fetching keys\n  {exe} get-key --kms {url} --app-id {app} --compose {compose} --source simulator --sim-measurement {image} --rpc-url {rpc} --registry {registry}\n\
             \n  # auditors\n  {exe} audit --rpc-url {rpc} --registry {registry}\n",
            rpc = anvil.url,
            compose = compose_path.display(),
            image = hex::encode(guest_image),
        );
        tokio::signal::ctrl_c().await?;
        println!("stopping");
    }
    node.stop().await?;
    let records =
        snpkms_kms_node::read_audit_log(&cfg).context("checking the node's key-release log")?;
    println!(
        "key-release log of the node: {} record(s), hash chain intact ({})",
        records.len(),
        config_path.display()
    );
    anvil.child.kill().await.ok();
    Ok(ExitCode::SUCCESS)
}

fn short(bytes: &[u8]) -> String {
    format!("{}…", hex::encode(&bytes[..6]))
}
