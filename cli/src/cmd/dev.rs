//! `snpkms dev`: the whole product on one machine. A local chain (anvil), the registry deployed
//! from the committed artifacts, governance and a demo app configured, one KMS node bootstrapped
//! on the SNP simulator, and a simulated guest fetching its keys, checked on-chain.
//!
//! The simulator root is trusted here, explicitly and loudly: this is a development stack.

use crate::stack::{LocalStack, StackOptions};
use anyhow::{bail, Context};
use snpkms_chain_client::Address;
use snpkms_governance::AuditReader;
use snpkms_guest::GuestClient;
use snpkms_kms_node::config::Limits;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

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

/// A program on `PATH`, as an absolute path.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// An absolute path as a shell word.
fn shell_path(path: &Path) -> anyhow::Result<String> {
    let path = std::fs::canonicalize(path).with_context(|| format!("{}", path.display()))?;
    Ok(shell_word(&path.display().to_string()))
}

/// A word the shell reads back unchanged.
fn shell_word(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-:=,@+".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// What the banner prints: commands with absolute paths, using only tools this machine has
/// (grpcurl and curl when they are on PATH; cast from node_modules; snpkms itself).
fn banner_commands(
    stack: &LocalStack,
    url: &str,
    metrics: Option<std::net::SocketAddr>,
) -> anyhow::Result<Vec<(String, String)>> {
    let exe = shell_path(&std::env::current_exe().context("locating this binary")?)?;
    let registry = stack.deployment.registry;
    let rpc = &stack.chain.url;
    let app = stack.app;
    let addr = url.trim_start_matches("http://");
    let mut commands = Vec::new();
    match on_path("grpcurl") {
        Some(grpcurl) => {
            let grpcurl = shell_path(&grpcurl)?;
            commands.push((
                "gRPC with grpcurl (reflection is on)".to_string(),
                format!("{grpcurl} -plaintext {addr} list"),
            ));
            commands.push((
                "the KMS's info over gRPC".to_string(),
                format!("{grpcurl} -plaintext -d '{{}}' {addr} snpkms.v1.Kms/GetKmsInfo"),
            ));
        }
        None => commands.push((
            "gRPC (reflection is on, for grpcurl and other clients): the node's signed key-release log head".to_string(),
            format!("{exe} node audit-head --kms {url}"),
        )),
    }
    if let (Some(curl), Some(metrics)) = (on_path("curl"), metrics) {
        commands.push((
            "Prometheus metrics".to_string(),
            format!("{} -s http://{metrics}/metrics", shell_path(&curl)?),
        ));
    }
    let cast = snpkms_local::workspace_root().join("node_modules/.bin/cast");
    if cast.is_file() {
        commands.push((
            "the registry's KMS info, with cast".to_string(),
            format!(
                "{} call {registry} 'kmsInfo()(address,bytes,uint32)' --rpc-url {rpc}",
                shell_path(&cast)?
            ),
        ));
    }
    commands.push((
        "a guest fetching its keys (the KMS root is read from the registry)".to_string(),
        format!(
            "{exe} get-key --kms {url} --app-id {app} --compose {compose} --source simulator --sim-measurement {image} --rpc-url {rpc} --registry {registry}",
            compose = shell_path(&stack.compose_path)?,
            image = hex::encode(stack.guest_image),
        ),
    ));
    commands.push((
        "the authorization trail, as auditors read it".to_string(),
        format!("{exe} audit --rpc-url {rpc} --registry {registry}"),
    ));
    Ok(commands)
}

/// `get-key` reads the registry [`DEFAULT_READ_AT`](super::get_key::DEFAULT_READ_AT) blocks
/// deep: the banner waits until the KMS info is that deep, so its get-key line works at once.
async fn wait_for_guest_depth(
    rpc: &str,
    registry: Address,
    root: Address,
    block_time: u64,
) -> anyhow::Result<()> {
    let depth = super::get_key::DEFAULT_READ_AT;
    let mut cfg = snpkms_chain_client::ChainConfig::new(
        snpkms_chain_client::RpcEndpoint::new(rpc)?,
        registry,
    );
    cfg.read_at = depth
        .parse()
        .map_err(|e: String| anyhow::anyhow!("read depth: {e}"))?;
    let blocks = match cfg.read_at {
        snpkms_chain_client::ReadAt::Confirmations(n) => n,
        _ => 0,
    };
    let chain = snpkms_chain_client::ChainClient::connect(cfg).await?;
    // The blocks to wait for, and as long again.
    let patience = Duration::from_secs(30 + 2 * (blocks + 1) * block_time.max(1));
    let deadline = Instant::now() + patience;
    println!("waiting until the registry's KMS info is {depth} blocks deep (what get-key reads by default)");
    loop {
        chain.refresh().await.ok();
        if let Ok(info) = chain.kms_info().await {
            if info.root_signing_address == root {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!(
                "the registry at {depth} confirmations does not name the KMS root {root} after {} s",
                patience.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn step(n: u32, text: impl std::fmt::Display) {
    println!("[{n}/9] {text}");
}

/// Set while `--keep-running` waits for Ctrl-C: then Ctrl-C is the expected way to stop, and
/// the stack stops in order (the node, then its log is checked) instead of being dropped.
static WAITING_FOR_CTRL_C: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Resolves on a Ctrl-C that comes while the stack is being built or the demo runs.
async fn interrupted_while_building() {
    loop {
        if tokio::signal::ctrl_c().await.is_err() {
            return std::future::pending().await;
        }
        if !WAITING_FOR_CTRL_C.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        tokio::select! {
            r = dev(args) => r,
            () = interrupted_while_building() => {
                // Dropping the stack kills anvil and stops the node.
                eprintln!("\ninterrupted: stopping everything the dev stack started");
                Ok(ExitCode::from(130))
            }
        }
    })
}

async fn dev(args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let stack = LocalStack::build(
        StackOptions {
            dir: args.dir.clone(),
            anvil: args.anvil.clone(),
            block_time: args.block_time,
            read_at: "1".into(),
            limits: Limits::default(),
        },
        step,
    )
    .await?;
    let cfg = stack.node_config.clone();
    let registry = stack.deployment.registry;
    let app = stack.app;
    let rpc = stack.chain.url.clone();

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
    let guest = stack.guest();
    let chain = node.chain().clone();
    let on_chain_root = chain.kms_info().await?.root_signing_address;
    let mut client = GuestClient::connect(&url).await?;
    let grant = client
        .get_app_key(
            &guest,
            app.0 .0,
            stack.compose_hash,
            None,
            on_chain_root.0 .0,
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
    let events = AuditReader::new(&rpc, registry)?
        .events(None, stack.deployment.block, None)
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
        let commands = banner_commands(&stack, &url, node.metrics_addr)?;
        wait_for_guest_depth(&rpc, registry, on_chain_root, args.block_time).await?;
        println!(
            "\nThe stack is running. Each command below works as printed, from any directory."
        );
        for (comment, command) in &commands {
            println!("\n  # {comment}\n  {command}");
        }
        // Registered before the line that invites it, so no Ctrl-C is missed.
        let mut interrupt =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
        WAITING_FOR_CTRL_C.store(true, std::sync::atomic::Ordering::SeqCst);
        println!("\nPress Ctrl-C to stop the stack.");
        interrupt.recv().await;
        // A second Ctrl-C while stopping ends the process at once.
        tokio::spawn(async move {
            interrupt.recv().await;
            eprintln!("interrupted again: exiting without stopping in order");
            std::process::exit(130);
        });
        println!("stopping");
    }
    node.stop().await?;
    let records =
        snpkms_kms_node::read_audit_log(&cfg).context("checking the node's key-release log")?;
    println!(
        "key-release log of the node: {} record(s), hash chain intact ({})",
        records.records.len(),
        stack.config_path.display()
    );
    Ok(ExitCode::SUCCESS)
}
