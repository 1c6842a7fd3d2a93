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
use std::path::PathBuf;
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

fn step(n: u32, text: impl std::fmt::Display) {
    println!("[{n}/9] {text}");
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
            compose = stack.compose_path.display(),
            image = hex::encode(stack.guest_image),
        );
        tokio::signal::ctrl_c().await?;
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
