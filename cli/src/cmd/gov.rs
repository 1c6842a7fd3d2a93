//! `snpkms gov`: deploy a registry and govern it (registry owner).

use super::chain_args::{
    hex_bytes, print_outcome, progress_line, run_async, Output, Registry, Rpc, Signer,
};
use anyhow::Context;
use snpkms_chain_client::{Address, B256};
use snpkms_governance::{deploy_registry_with_progress, Inspector, Owner, TxOutcome};
use snpkms_verifier::{Product, TcbVersion};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Deploy a registry (implementation + proxy) and write its addresses as JSON.
    Deploy {
        #[command(flatten)]
        rpc: Rpc,
        #[command(flatten)]
        signer: Signer,
        /// Registry owner (default: the signer).
        #[arg(long, value_name = "ADDRESS")]
        owner: Option<Address>,
        /// Also write the deployment JSON to this file.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Allow an app OS image (48-byte launch measurement, hex).
    AddOsImage(OsImageArgs),
    /// Remove an allowed app OS image.
    RemoveOsImage(MeasurementArgs),
    /// Allow a KMS node image (48-byte launch measurement, hex).
    AddKmsMeasurement(MeasurementArgs),
    /// Remove an allowed KMS node image.
    RemoveKmsMeasurement(MeasurementArgs),
    /// Allow KMS nodes whose security configuration has this digest
    /// (`snpkms node config-digest`, or the bootstrap output's `config_digest`).
    AddKmsConfig(ConfigArgs),
    /// Remove an allowed KMS configuration digest: nodes running with it stop serving.
    RemoveKmsConfig(ConfigArgs),
    /// List a chip allowed to run KMS nodes (only listed chips may, unless allow-any-kms-chip).
    AddKmsChip(ChipArgs),
    /// Remove a listed KMS chip (removing the last one leaves no chip allowed).
    RemoveKmsChip(ChipArgs),
    /// Allow (or, with --allowed false, stop allowing) any chip to run KMS nodes.
    AllowAnyKmsChip {
        #[command(flatten)]
        tx: TxArgs,
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
        allowed: bool,
    },
    /// Set the minimum TCB of a product (every component must be at least this). A product
    /// without one is refused; all zeros accepts any TCB of it.
    SetMinTcb {
        #[command(flatten)]
        tx: TxArgs,
        /// milan, genoa or turin.
        #[arg(long)]
        product: Product,
        #[arg(long)]
        bootloader: u8,
        #[arg(long)]
        tee: u8,
        #[arg(long)]
        snp: u8,
        #[arg(long)]
        microcode: u8,
        /// Turin only.
        #[arg(long, default_value_t = 0)]
        fmc: u8,
    },
    /// Publish the KMS root signing address and TLS public key.
    SetKmsInfo {
        #[command(flatten)]
        tx: TxArgs,
        #[arg(long, value_name = "ADDRESS")]
        root_signing_address: Address,
        /// TLS public key, hex.
        #[arg(
            long,
            value_name = "HEX",
            conflicts_with = "tls_public_key_file",
            required_unless_present = "tls_public_key_file"
        )]
        tls_public_key: Option<String>,
        /// TLS public key from a file (raw bytes).
        #[arg(long, value_name = "FILE")]
        tls_public_key_file: Option<PathBuf>,
    },
    /// Record the threshold share set a key generation made (and with it the threshold mode),
    /// after checking every participant's output: genuine evidence binding it, all one group,
    /// one chip per share. Prints each member's measurement and chip for the record.
    SetThresholdGroup {
        #[command(flatten)]
        tx: TxArgs,
        /// A participant's `snpkms node keygen` output (JSON); one per participant.
        #[arg(long = "keygen", value_name = "FILE", required = true)]
        outputs: Vec<PathBuf>,
        /// Extra trust root (PEM), for the product its ARK names, e.g. the simulator's for
        /// development nodes.
        #[arg(long = "extra-root", value_name = "PEM")]
        extra_roots: Vec<PathBuf>,
    },
    /// Add 1 to the key epoch (rotates every app key derived for the epoch).
    BumpEpoch {
        #[command(flatten)]
        tx: TxArgs,
    },
    /// Show the registry: owner, implementation, KMS info, minimum TCBs, allowed images.
    Show {
        #[command(flatten)]
        rpc: Rpc,
        #[command(flatten)]
        registry: Registry,
        /// First block of the registry's history (its deployment block) for the lists.
        #[arg(long, default_value_t = 0, value_name = "BLOCK")]
        from_block: u64,
        #[command(flatten)]
        out: Output,
    },
}

/// What every transaction needs.
#[derive(clap::Args)]
pub struct TxArgs {
    #[command(flatten)]
    pub rpc: Rpc,
    #[command(flatten)]
    pub registry: Registry,
    #[command(flatten)]
    pub signer: Signer,
    #[command(flatten)]
    pub out: Output,
}

impl TxArgs {
    pub fn owner(&self) -> anyhow::Result<Owner> {
        Ok(Owner::new(
            &self.rpc.rpc_url,
            self.signer.load()?,
            self.registry.registry,
        )?
        .with_progress(progress_line()))
    }
}

#[derive(clap::Args)]
struct MeasurementArgs {
    #[command(flatten)]
    tx: TxArgs,
    /// 48-byte launch measurement, hex (as `snpkms measure` prints it).
    #[arg(long, value_name = "HEX")]
    measurement: String,
}

/// An OS image given as its digest, or as the launch inputs to measure (`snpkms measure`'s
/// options), so governance registers exactly what it computed.
#[derive(clap::Args)]
struct OsImageArgs {
    #[command(flatten)]
    tx: TxArgs,
    /// 48-byte launch measurement, hex (as `snpkms measure` prints it).
    #[arg(
        long,
        value_name = "HEX",
        conflicts_with = "MeasureArgs",
        required_unless_present = "ovmf"
    )]
    measurement: Option<String>,
    #[command(flatten)]
    measure: Option<super::measure::MeasureArgs>,
}

#[derive(clap::Args)]
struct ConfigArgs {
    #[command(flatten)]
    tx: TxArgs,
    /// 32-byte configuration digest, hex.
    #[arg(long, value_name = "HEX")]
    digest: String,
}

#[derive(clap::Args)]
struct ChipArgs {
    #[command(flatten)]
    tx: TxArgs,
    /// 64-byte chip id, hex (as `snpkms verify` prints it).
    #[arg(long, value_name = "HEX")]
    chip_id: String,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    run_async(exec(args.command))
}

async fn exec(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Deploy {
            rpc,
            signer,
            owner,
            out,
        } => {
            let signer = signer.load()?;
            let owner = owner.unwrap_or(signer.address());
            let d =
                deploy_registry_with_progress(&rpc.rpc_url, signer, owner, progress_line()).await?;
            super::chain_args::end_progress_line();
            let json = d.to_json();
            if let Some(path) = out {
                std::fs::write(&path, format!("{json}\n"))
                    .with_context(|| format!("cannot write {}", path.display()))?;
                eprintln!("deployment written to {}", path.display());
            }
            println!("{json}");
            Ok(())
        }
        Command::AddOsImage(a) => {
            let m = match (&a.measurement, &a.measure) {
                (Some(hex), None) => hex_bytes(hex, 48, "--measurement")?,
                (None, Some(inputs)) => {
                    let measured = inputs.measure()?;
                    eprintln!("measured launch digest {}", hex::encode(measured.digest));
                    measured.digest.to_vec()
                }
                _ => {
                    anyhow::bail!("give --measurement or the launch inputs (--ovmf ...), not both")
                }
            };
            let tx = a.tx.owner()?.add_os_image(&m).await?;
            done(&a.tx, "addOsImage", tx)
        }
        Command::RemoveOsImage(a) => {
            let m = hex_bytes(&a.measurement, 48, "--measurement")?;
            let tx = a.tx.owner()?.remove_os_image(&m).await?;
            done(&a.tx, "removeOsImage", tx)
        }
        Command::AddKmsMeasurement(a) => {
            let m = hex_bytes(&a.measurement, 48, "--measurement")?;
            let tx = a.tx.owner()?.add_kms_measurement(&m).await?;
            done(&a.tx, "addKmsMeasurement", tx)
        }
        Command::RemoveKmsMeasurement(a) => {
            let m = hex_bytes(&a.measurement, 48, "--measurement")?;
            let tx = a.tx.owner()?.remove_kms_measurement(&m).await?;
            done(&a.tx, "removeKmsMeasurement", tx)
        }
        Command::AddKmsConfig(a) => {
            let d = hex_bytes(&a.digest, 32, "--digest")?;
            let tx = a.tx.owner()?.add_kms_config(B256::from_slice(&d)).await?;
            done(&a.tx, "addKmsConfig", tx)
        }
        Command::RemoveKmsConfig(a) => {
            let d = hex_bytes(&a.digest, 32, "--digest")?;
            let tx =
                a.tx.owner()?
                    .remove_kms_config(B256::from_slice(&d))
                    .await?;
            done(&a.tx, "removeKmsConfig", tx)
        }
        Command::AddKmsChip(a) => {
            let c = hex_bytes(&a.chip_id, 64, "--chip-id")?;
            let tx = a.tx.owner()?.add_kms_chip(&c).await?;
            done(&a.tx, "addKmsChip", tx)
        }
        Command::RemoveKmsChip(a) => {
            let c = hex_bytes(&a.chip_id, 64, "--chip-id")?;
            let tx = a.tx.owner()?.remove_kms_chip(&c).await?;
            done(&a.tx, "removeKmsChip", tx)
        }
        Command::AllowAnyKmsChip { tx, allowed } => {
            let out = tx.owner()?.set_any_kms_chip_allowed(allowed).await?;
            done(&tx, "setAnyKmsChipAllowed", out)
        }
        Command::SetMinTcb {
            tx,
            product,
            bootloader,
            tee,
            snp,
            microcode,
            fmc,
        } => {
            let tcb = TcbVersion {
                bootloader,
                tee,
                snp,
                microcode,
                fmc,
            };
            let out = tx.owner()?.set_min_tcb(product, tcb).await?;
            done(&tx, "setMinTcb", out)
        }
        Command::SetThresholdGroup {
            tx,
            outputs,
            extra_roots,
        } => {
            let outputs = outputs
                .iter()
                .map(|path| {
                    serde_json::from_slice::<snpkms_kms_node::KeyGenOutput>(&super::read_file(
                        path,
                    )?)
                    .with_context(|| format!("{} is not key-generation output", path.display()))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let verifier = super::node::verifier_with(&extra_roots)?;
            let group =
                snpkms_kms_node::check_keygen(&outputs, &verifier, super::node::unix_now()?)
                    .context("the key-generation outputs are refused")?;
            for m in &group.members {
                eprintln!(
                    "node {}: signer 0x{}, measurement {}, chip {}…, config 0x{}",
                    m.index,
                    hex::encode(m.signer),
                    hex::encode(m.report.measurement),
                    hex::encode(&m.report.chip_id[..8]),
                    hex::encode(m.config_digest)
                );
            }
            let nodes: Vec<(u16, Vec<u8>, Address)> = group
                .members
                .iter()
                .map(|m| (m.index, m.verifying_share.to_vec(), Address::from(m.signer)))
                .collect();
            let out = tx
                .owner()?
                .set_threshold_group(group.threshold, &group.group_key, &nodes)
                .await?;
            done(&tx, "setThresholdGroup", out)
        }
        Command::SetKmsInfo {
            tx,
            root_signing_address,
            tls_public_key,
            tls_public_key_file,
        } => {
            let key = match (tls_public_key, tls_public_key_file) {
                (Some(h), None) => hex::decode(h.trim().trim_start_matches("0x"))
                    .context("--tls-public-key is not hex")?,
                (None, Some(path)) => super::read_file(&path)?,
                _ => {
                    anyhow::bail!("give exactly one of --tls-public-key and --tls-public-key-file")
                }
            };
            let out = tx.owner()?.set_kms_info(root_signing_address, &key).await?;
            done(&tx, "setKmsInfo", out)
        }
        Command::BumpEpoch { tx } => {
            let out = tx.owner()?.bump_key_epoch().await?;
            done(&tx, "bumpKeyEpoch", out)
        }
        Command::Show {
            rpc,
            registry,
            from_block,
            out,
        } => {
            let s = Inspector::new(&rpc.rpc_url, registry.registry, from_block)?
                .registry()
                .await?;
            if out.json {
                println!("{}", serde_json::to_string_pretty(&s)?);
                return Ok(());
            }
            println!(
                "registry              {} (chain {}, block {})",
                s.registry, s.chain_id, s.block.number
            );
            println!("owner                 {}", s.owner);
            if s.pending_owner != Address::ZERO {
                println!("pending owner         {}", s.pending_owner);
            }
            println!("implementation        {}", s.implementation);
            println!("appAuth impl.         {}", s.app_auth_implementation);
            println!("upgrades disabled     {}", s.upgrades_disabled);
            println!("kms root signing addr {}", s.kms_root_signing_address);
            println!("kms tls public key    {}", s.kms_tls_public_key);
            println!("key epoch             {}", s.key_epoch);
            println!("apps                  {}", s.app_count);
            for p in Product::ALL {
                match s.min_tcb.get(&p) {
                    Some(t) => println!("min tcb {:<13} {t}", p.to_string()),
                    None => println!("min tcb {:<13} none set: refused", p.to_string()),
                }
            }
            list("os images", &s.os_images);
            list("kms measurements", &s.kms_measurements);
            list("kms configs", &s.kms_configs);
            list("kms chips", &s.kms_chips);
            println!("any kms chip          {}", s.any_kms_chip_allowed);
            Ok(())
        }
    }
}

fn list(title: &str, items: &[impl std::fmt::Display]) {
    println!("{title:<21} {}", items.len());
    for i in items {
        println!("  {i}");
    }
}

fn done(tx: &TxArgs, what: &str, out: TxOutcome) -> anyhow::Result<()> {
    print_outcome(&tx.out, what, &out, serde_json::json!({}))
}
