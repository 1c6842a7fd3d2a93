//! `snpkms app`: register an app and manage what may get its keys (app owner).

use super::chain_args::{print_outcome, run_async, Output, Registry, Rpc};
use super::compose_arg::ComposeArg;
use super::gov::TxArgs;
use snpkms_chain_client::{Address, B256};
use snpkms_governance::{device_id, Inspector};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct AppArg {
    /// The app id (its AppAuth contract address, as `snpkms app register` prints it).
    #[arg(long, env = "SNPKMS_APP", value_name = "ADDRESS")]
    app: Address,
}

#[derive(clap::Args)]
struct ComposeArgs {
    #[command(flatten)]
    tx: TxArgs,
    #[command(flatten)]
    app: AppArg,
    #[command(flatten)]
    compose: ComposeArg,
}

#[derive(clap::Args)]
struct DeviceArgs {
    #[command(flatten)]
    tx: TxArgs,
    #[command(flatten)]
    app: AppArg,
    /// The chip id (64 bytes, hex); its keccak256 is the device id.
    #[arg(
        long,
        value_name = "HEX",
        conflicts_with = "device_id",
        required_unless_present = "device_id"
    )]
    chip_id: Option<String>,
    /// The device id (32 bytes, hex).
    #[arg(long, value_name = "HEX")]
    device_id: Option<String>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Register a new app owned by the signer; prints its id.
    Register {
        #[command(flatten)]
        tx: TxArgs,
        /// Distinguishes the signer's apps: 32 bytes of hex, or any text (hashed with keccak256).
        #[arg(long)]
        salt: String,
    },
    /// Allow a compose (the app's docker compose) to get the app's keys.
    AddCompose(ComposeArgs),
    /// Stop allowing a compose.
    RemoveCompose(ComposeArgs),
    /// Allow a device (chip) to run the app.
    AddDevice(DeviceArgs),
    /// Stop allowing a device.
    RemoveDevice(DeviceArgs),
    /// Allow (or, with --allowed false, stop allowing) any device.
    AllowAnyDevice {
        #[command(flatten)]
        tx: TxArgs,
        #[command(flatten)]
        app: AppArg,
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
        allowed: bool,
    },
    /// Enable the app (apps start enabled).
    Enable {
        #[command(flatten)]
        tx: TxArgs,
        #[command(flatten)]
        app: AppArg,
    },
    /// Disable the app: no guest gets its keys until it is enabled again.
    Disable {
        #[command(flatten)]
        tx: TxArgs,
        #[command(flatten)]
        app: AppArg,
    },
    /// Print the host_data a VMM must set when launching a guest of this app with this
    /// compose: SHA-256("snpkms/app/v1" || app_id || compose_hash). Offline.
    HostData {
        #[command(flatten)]
        app: AppArg,
        #[command(flatten)]
        compose: ComposeArg,
        #[arg(long)]
        json: bool,
    },
    /// Show an app: owner, enabled, allowed compose hashes and devices.
    Show {
        #[command(flatten)]
        rpc: Rpc,
        #[command(flatten)]
        registry: Registry,
        #[command(flatten)]
        app: AppArg,
        /// First block of the registry's history (its deployment block) for the lists.
        #[arg(long, default_value_t = 0, value_name = "BLOCK")]
        from_block: u64,
        #[command(flatten)]
        out: Output,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    run_async(exec(args.command))
}

fn salt_of(s: &str) -> B256 {
    let hex = s.strip_prefix("0x").unwrap_or(s);
    match (hex.len(), hex::decode(hex)) {
        (64, Ok(b)) => B256::from_slice(&b),
        _ => snpkms_chain_client::keccak256(s.as_bytes()),
    }
}

fn device_of(a: &DeviceArgs) -> anyhow::Result<B256> {
    match (&a.chip_id, &a.device_id) {
        (Some(chip), None) => Ok(device_id(&super::chain_args::hex_bytes(
            chip,
            64,
            "--chip-id",
        )?)),
        (None, Some(d)) => Ok(B256::from_slice(&super::chain_args::hex_bytes(
            d,
            32,
            "--device-id",
        )?)),
        _ => anyhow::bail!("give exactly one of --chip-id and --device-id"),
    }
}

async fn exec(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::HostData { app, compose, json } => {
            let compose_hash = compose.hash()?;
            let host_data = snpkms_verifier::app_host_data(&app.app.0 .0, &compose_hash);
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "app": app.app,
                        "compose_hash": format!("0x{}", hex::encode(compose_hash)),
                        "host_data": hex::encode(host_data),
                    })
                );
            } else {
                println!("{}", hex::encode(host_data));
            }
            Ok(())
        }
        Command::Register { tx, salt } => {
            let salt = salt_of(&salt);
            let (app, out) = tx.owner()?.register_app(salt).await?;
            if !tx.out.json {
                println!("app {app}");
            }
            print_outcome(
                &tx.out,
                "registerApp",
                &out,
                serde_json::json!({ "app": app, "salt": salt }),
            )
        }
        Command::AddCompose(a) => {
            let h = B256::from(a.compose.hash()?);
            let out = a.tx.owner()?.add_compose_hash(a.app.app, h).await?;
            print_outcome(
                &a.tx.out,
                "addComposeHash",
                &out,
                serde_json::json!({ "compose_hash": h }),
            )
        }
        Command::RemoveCompose(a) => {
            let h = B256::from(a.compose.hash()?);
            let out = a.tx.owner()?.remove_compose_hash(a.app.app, h).await?;
            print_outcome(
                &a.tx.out,
                "removeComposeHash",
                &out,
                serde_json::json!({ "compose_hash": h }),
            )
        }
        Command::AddDevice(a) => {
            let d = device_of(&a)?;
            let out = a.tx.owner()?.add_device(a.app.app, d).await?;
            print_outcome(
                &a.tx.out,
                "addDevice",
                &out,
                serde_json::json!({ "device_id": d }),
            )
        }
        Command::RemoveDevice(a) => {
            let d = device_of(&a)?;
            let out = a.tx.owner()?.remove_device(a.app.app, d).await?;
            print_outcome(
                &a.tx.out,
                "removeDevice",
                &out,
                serde_json::json!({ "device_id": d }),
            )
        }
        Command::AllowAnyDevice { tx, app, allowed } => {
            let out = tx.owner()?.set_allow_any_device(app.app, allowed).await?;
            print_outcome(&tx.out, "setAllowAnyDevice", &out, serde_json::json!({}))
        }
        Command::Enable { tx, app } => {
            let out = tx.owner()?.enable_app(app.app).await?;
            print_outcome(&tx.out, "enable", &out, serde_json::json!({}))
        }
        Command::Disable { tx, app } => {
            let out = tx.owner()?.disable_app(app.app).await?;
            print_outcome(&tx.out, "disable", &out, serde_json::json!({}))
        }
        Command::Show {
            rpc,
            registry,
            app,
            from_block,
            out,
        } => {
            let s = Inspector::new(&rpc.rpc_url, registry.registry, from_block)?
                .app(app.app)
                .await?;
            if out.json {
                println!("{}", serde_json::to_string_pretty(&s)?);
                return Ok(());
            }
            println!("app               {} (block {})", s.app, s.block.number);
            if !s.registered {
                println!(
                    "registered        no (not an app of registry {})",
                    registry.registry
                );
                return Ok(());
            }
            println!("owner             {}", s.owner);
            if s.pending_owner != Address::ZERO {
                println!("pending owner     {}", s.pending_owner);
            }
            println!("enabled           {}", s.enabled);
            println!("allow any device  {}", s.allow_any_device);
            println!("compose hashes    {}", s.compose_hashes.len());
            for h in &s.compose_hashes {
                println!("  {h}");
            }
            println!("devices           {}", s.devices.len());
            for d in &s.devices {
                println!("  {d}");
            }
            Ok(())
        }
    }
}
