//! `snpkms node run|bootstrap|onboard|keygen|audit-log|audit-archive|…`: for operators.

use anyhow::Context;
use snpkms_kms_node::config::NodeConfig;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: NodeCommand,
}

#[derive(clap::Subcommand)]
enum NodeCommand {
    /// Serve GetAppKey. Refuses to start without a bootstrapped or onboarded store.
    Run {
        /// Node configuration (TOML); `SNPKMS_NODE__*` environment variables override it.
        #[arg(long)]
        config: PathBuf,
    },
    /// Generate the deployment's root secret inside this node's TEE and seal it here. Prints
    /// the KMS info to register on-chain, with evidence that binds it.
    Bootstrap {
        #[arg(long)]
        config: PathBuf,
    },
    /// Join a deployment: get the root secret from a running node (tried in order) after it
    /// checks this node's SNP evidence against the registry, check it against the registry's
    /// KMS root signing address, and seal it here.
    Onboard {
        #[arg(long)]
        config: PathBuf,
        /// A serving node's URL; repeat to give fallbacks.
        #[arg(long = "peer", required = true)]
        peers: Vec<String>,
    },
    /// The threshold mode's key generation (no dealer): run on each of the n nodes at once,
    /// into an empty data dir, with the same session, threshold and participants. Each checks
    /// the others' SNP evidence against the registry, seals its share here, and prints its
    /// result with evidence binding it: give all n outputs to `snpkms gov set-threshold-group`.
    /// The exchange runs on the configuration's `listen` address (no TLS needed: what is not
    /// public is sealed to attested keys).
    Keygen {
        #[arg(long)]
        config: PathBuf,
        /// The key generation's id, the same for every participant: 32 random bytes, hex
        /// (e.g. `openssl rand -hex 32`).
        #[arg(long, value_name = "HEX")]
        session: String,
        /// This node's index, 1..=n.
        #[arg(long)]
        index: u16,
        /// The threshold t: any t nodes serve an app's keys, fewer learn nothing (2..=n).
        #[arg(long)]
        threshold: u16,
        /// Another participant's index and KeyGen URL (its `listen` address), e.g.
        /// `2=http://10.0.0.2:50051`; one for each other participant.
        #[arg(long = "peer", value_name = "INDEX=URL", required = true)]
        peers: Vec<String>,
        /// How long the whole exchange may take.
        #[arg(long, default_value_t = 300, value_name = "SECONDS")]
        timeout_secs: u64,
    },
    /// Check a bootstrap's output before registering its KMS info: the evidence verifies and
    /// binds exactly this root signing address and TLS key. Prints the KMS measurement to
    /// compare with the allowed ones.
    CheckBootstrap {
        /// The JSON `snpkms node bootstrap` printed.
        #[arg(long)]
        bootstrap: PathBuf,
        /// Extra trust root (PEM), for the product its ARK names, e.g. the simulator's for a development node.
        #[arg(long = "extra-root", value_name = "PEM")]
        extra_roots: Vec<PathBuf>,
        /// Get the node's VCEK from AMD's KDS (or from URL, a mirror) if its evidence came
        /// without one (a bare-metal node whose host supplies no certificates).
        #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = snpkms_kds::AMD_KDS_URL)]
        kds: Option<String>,
        /// The chain the registry is on: the evidence is checked against what the registry
        /// holds (the product's minimum TCB, the KMS image, the chip list).
        #[command(flatten)]
        rpc: super::chain_args::Rpc,
        #[command(flatten)]
        registry: super::chain_args::Registry,
    },
    /// Print the digest of the node's security configuration (chain view, trust roots, guest
    /// policy, limits; `SNPKMS_NODE__*` overrides applied): what its root is sealed under and
    /// what governance allows with `snpkms gov add-kms-config`.
    ConfigDigest {
        #[arg(long)]
        config: PathBuf,
        /// Also print the canonical configuration the digest is over (on stderr; it holds no
        /// secret: RPC URLs enter as their SHA-256).
        #[arg(long)]
        show: bool,
    },
    /// Print the key-release log and check its hash chain and signed head.
    AuditLog {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        json: bool,
        /// The KMS root signing address the log's head must be signed by (from the registry).
        #[arg(long, value_name = "ADDRESS")]
        root: Option<String>,
        /// A head kept from earlier (`snpkms node audit-head` output): the log must extend it,
        /// or it was cut back or rewritten.
        #[arg(long, value_name = "FILE")]
        check_head: Option<PathBuf>,
        /// A directory of segments `audit-archive` moved out of the log: checked with the live
        /// log as one chain, from record 0.
        #[arg(long, value_name = "DIR")]
        archive: Option<PathBuf>,
    },
    /// Move the key-release log's records into a segment file in DIR and start the live log at
    /// its last signed head (the node must be stopped). `audit-log --archive DIR` checks the
    /// segments and the live log as one chain.
    AuditArchive {
        #[arg(long)]
        config: PathBuf,
        /// Where the segment goes (e.g. storage the host keeps; the segment is only data, its
        /// chain ends in a head the root key signed).
        #[arg(long, value_name = "DIR")]
        into: PathBuf,
    },
    /// Fetch a node's signed key-release log head (GetAuditHead) and print it as JSON, to keep
    /// for a later `audit-log --check-head`.
    AuditHead {
        /// KMS node URL.
        #[arg(long, env = "SNPKMS_KMS_URL")]
        kms: String,
        /// CA (or self-signed certificate) of the node's TLS listener, for https:// URLs.
        #[arg(long, value_name = "PEM")]
        kms_ca: Option<PathBuf>,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        NodeCommand::Run { config } => {
            let cfg = NodeConfig::load(&config)?;
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(serve(cfg))
        }
        NodeCommand::Bootstrap { config } => {
            let cfg = NodeConfig::load(&config)?;
            let out = snpkms_kms_node::bootstrap(&cfg)?;
            println!("{}", serde_json::to_string_pretty(&out)?);
            eprintln!(
                "root secret generated and sealed in {}; register it with:\n  snpkms gov set-kms-info --root-signing-address {}",
                cfg.data_dir.display(),
                out.root_signing_address
            );
            Ok(ExitCode::SUCCESS)
        }
        NodeCommand::Keygen {
            config,
            session,
            index,
            threshold,
            peers,
            timeout_secs,
        } => {
            let cfg = NodeConfig::load(&config)?;
            let plan = snpkms_kms_node::KeyGenPlan {
                session: super::chain_args::hex_bytes(&session, 32, "--session")?
                    .try_into()
                    .map_err(|_| anyhow::anyhow!("--session is not 32 bytes"))?,
                index,
                threshold,
                peers: parse_peers(&peers)?,
                timeout: std::time::Duration::from_secs(timeout_secs),
            };
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            match runtime.block_on(snpkms_kms_node::keygen(&cfg, &plan)) {
                Ok(out) => {
                    println!("{}", serde_json::to_string_pretty(&out)?);
                    eprintln!(
                        "share {index} of a {threshold}-of-{} group sealed in {}; give every participant's output to `snpkms gov set-threshold-group`",
                        plan.peers.len() + 1,
                        cfg.data_dir.display()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    Ok(ExitCode::from(super::EXIT_REJECTED))
                }
            }
        }
        NodeCommand::Onboard { config, peers } => {
            let cfg = NodeConfig::load(&config)?;
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            match runtime.block_on(snpkms_kms_node::join(&cfg, &peers)) {
                Ok(outcome) => {
                    println!("{}", serde_json::to_string_pretty(&outcome)?);
                    eprintln!(
                        "onboarded from {}: root secret sealed in {}",
                        outcome.peer,
                        cfg.data_dir.display()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    Ok(ExitCode::from(super::EXIT_REJECTED))
                }
            }
        }
        NodeCommand::CheckBootstrap {
            bootstrap,
            extra_roots,
            kds,
            rpc,
            registry,
        } => {
            let mut out: snpkms_kms_node::BootstrapOutput =
                serde_json::from_slice(&super::read_file(&bootstrap)?)
                    .with_context(|| format!("{} is not bootstrap output", bootstrap.display()))?;
            let verifier = verifier_with(&extra_roots)?;
            let now = unix_now()?;
            if let Some(url) = kds {
                with_fetched_vcek(&mut out, &verifier, now, url)?;
            }
            let checked = match snpkms_kms_node::check_bootstrap(&out, &verifier, now) {
                Ok(checked) => checked,
                Err(e) => {
                    eprintln!("rejected: {e}");
                    return Ok(ExitCode::from(super::EXIT_REJECTED));
                }
            };
            let report = &checked.report;
            println!("root signing address {}", out.root_signing_address);
            println!("config digest        {}", checked.config_digest);
            println!("KMS measurement      {}", hex::encode(report.measurement));
            println!("chip id              {}", hex::encode(report.chip_id));
            println!("product              {}", report.product);
            println!("root of trust        {}", report.root);
            println!("the evidence binds this KMS info and configuration digest");
            // The evidence alone says nothing of what governance allows: check it against the
            // registry as isKmsAllowed will (the digest is what governance is about to add).
            let standing = super::chain_args::run_async_value(async {
                Ok(
                    snpkms_governance::Inspector::new(&rpc.rpc_url, registry.registry, 0)?
                        .kms_standing(report.product, &report.measurement, &report.chip_id)
                        .await?,
                )
            })?;
            let refusals = standing.refusals([
                ("reported", report.reported_tcb),
                ("committed", report.committed_tcb),
                ("launch", report.launch_tcb),
            ]);
            match &standing.min_tcb {
                Some(min) => println!("registry min TCB     {min}"),
                None => println!("registry min TCB     none set for {}", report.product),
            }
            println!("registry block       {}", standing.block.number);
            if refusals.is_empty() {
                println!("verdict: the registry allows this image, TCB and chip");
                Ok(ExitCode::SUCCESS)
            } else {
                for r in &refusals {
                    eprintln!("rejected by the registry: {r}");
                }
                Ok(ExitCode::from(super::EXIT_REJECTED))
            }
        }
        NodeCommand::ConfigDigest { config, show } => {
            let cfg = NodeConfig::load(&config)?;
            let settings = snpkms_kms_node::SecuritySettings::resolve(&cfg)?;
            println!("{}", settings.digest());
            if show {
                eprintln!("{}", settings.canonical_json());
            }
            Ok(ExitCode::SUCCESS)
        }
        NodeCommand::AuditHead { kms, kms_ca } => super::chain_args::run_async_value(async {
            let mut client = match &kms_ca {
                Some(ca) => {
                    snpkms_guest::GuestClient::connect_tls(&kms, &super::read_file(ca)?).await?
                }
                None => snpkms_guest::GuestClient::connect(&kms).await?,
            };
            let head = client.audit_head().await?;
            println!("{}", serde_json::to_string_pretty(&head)?);
            Ok(ExitCode::SUCCESS)
        }),
        NodeCommand::AuditArchive { config, into } => archive(&config, &into),
        NodeCommand::AuditLog {
            config,
            json,
            root,
            check_head,
            archive,
        } => {
            let cfg = NodeConfig::load(&config)?;
            let root: Option<[u8; 20]> = root
                .map(|r| {
                    hex::decode(r.trim_start_matches("0x"))
                        .ok()
                        .and_then(|v| v.try_into().ok())
                        .context("--root is not a 20-byte hex address")
                })
                .transpose()?;
            let kept: Option<snpkms_api::audit_head::SignedAuditHead> = check_head
                .map(|path| {
                    serde_json::from_slice(&super::read_file(&path)?)
                        .with_context(|| format!("{} is not a signed audit head", path.display()))
                })
                .transpose()?;
            let read = match &archive {
                Some(dir) => snpkms_kms_node::read_audit_log_with_archive(&cfg, dir),
                None => snpkms_kms_node::read_audit_log(&cfg),
            };
            match read {
                Ok(log) => {
                    let records = &log.records;
                    if log.first_seq > 0 {
                        if archive.is_some() {
                            eprintln!(
                                "audit log check FAILED: the segments and the live log start at record {}, not 0: a segment is missing",
                                log.first_seq
                            );
                            return Ok(ExitCode::from(super::EXIT_REJECTED));
                        }
                        eprintln!(
                            "audit log: starts at record {} (the records before it are archived; check them with --archive DIR)",
                            log.first_seq
                        );
                    }
                    if json {
                        println!("{}", serde_json::to_string_pretty(&records)?);
                    } else {
                        println!(
                            "{:>6}  {:<10}  {:<17}  {:<7}  {:<42}  {:>9}  {:<11}  reason",
                            "seq", "time", "kind", "result", "app", "block", "share"
                        );
                        for r in records {
                            // The threshold mode's share as "node index / share epoch".
                            let share = match (r.node_index, r.share_epoch) {
                                (Some(index), Some(epoch)) => format!("{index}/{epoch}"),
                                _ => "-".to_string(),
                            };
                            // Escaped: a host that edits the file must not drive the
                            // terminal (the chain check reports the edit after the table).
                            let vouched = r
                                .app_signing_address
                                .as_deref()
                                .map(|a| format!("address {}  ", a.escape_debug()))
                                .unwrap_or_default();
                            println!(
                                "{:>6}  {:<10}  {:<17}  {:<7}  {:<42}  {:>9}  {:<11}  {vouched}{}",
                                r.seq,
                                r.time,
                                r.kind.escape_debug().to_string(),
                                r.decision.escape_debug().to_string(),
                                r.app_id.escape_debug().to_string(),
                                r.block_number,
                                share,
                                r.reason.escape_debug()
                            );
                        }
                    }
                    eprintln!("audit log: {} record(s), hash chain intact", records.len());
                    let signer = log.signer.map(|a| format!("0x{}", hex::encode(a)));
                    if let Some(head) = &log.head {
                        eprintln!(
                            "audit log: head {} record(s), hash {}, signed by {}",
                            head.head.records,
                            hex::encode(head.head.hash),
                            signer.as_deref().unwrap_or("nobody (bad signature)")
                        );
                    }
                    if let Some(root) = root {
                        // Also a log that is only a checkpoint line: its head must be the root's.
                        if log.head.is_some() && log.signer != Some(root) {
                            eprintln!(
                                "audit log check FAILED: the head is not signed by the root 0x{}",
                                hex::encode(root)
                            );
                            return Ok(ExitCode::from(super::EXIT_REJECTED));
                        }
                    }
                    if let Some(kept) = &kept {
                        if let Err(e) = log.extends(kept) {
                            eprintln!("audit log check FAILED against the kept head: {e}");
                            return Ok(ExitCode::from(super::EXIT_REJECTED));
                        }
                        eprintln!(
                            "audit log: extends the kept head ({} record(s))",
                            kept.head.records
                        );
                    }
                    if log.torn_tail_bytes > 0 {
                        eprintln!(
                            "audit log: {} byte(s) after the last record: a record being written, \
                             or a crash's partial write (never acknowledged) that the node sets \
                             aside when it next starts",
                            log.torn_tail_bytes
                        );
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("audit log check FAILED: {e}");
                    Ok(ExitCode::from(super::EXIT_REJECTED))
                }
            }
        }
    }
}

/// `INDEX=URL` arguments, by index.
fn parse_peers(peers: &[String]) -> anyhow::Result<std::collections::BTreeMap<u16, String>> {
    let mut out = std::collections::BTreeMap::new();
    for peer in peers {
        let (index, url) = peer
            .split_once('=')
            .with_context(|| format!("--peer {peer}: expected INDEX=URL"))?;
        let index: u16 = index
            .parse()
            .with_context(|| format!("--peer {peer}: {index} is not an index"))?;
        if out.insert(index, url.to_string()).is_some() {
            anyhow::bail!("--peer: participant {index} given twice");
        }
    }
    Ok(out)
}

/// A verifier with AMD's roots, the `extra` ones (PEM files) and the default policy: what
/// checks evidence a node produced for governance.
pub fn verifier_with(extra: &[PathBuf]) -> anyhow::Result<snpkms_verifier::Verifier> {
    let mut roots = snpkms_verifier::TrustRoots::amd();
    for path in extra {
        roots
            .add_pem_for_named_product(&path.display().to_string(), &super::read_file(path)?)
            .with_context(|| format!("{}", path.display()))?;
    }
    Ok(snpkms_verifier::Verifier::new(
        roots,
        snpkms_verifier::Policy::default(),
    ))
}

/// The current time, for the verifier.
pub fn unix_now() -> anyhow::Result<snpkms_verifier::UnixTime> {
    Ok(snpkms_verifier::UnixTime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs(),
    ))
}

fn archive(config: &Path, into: &Path) -> anyhow::Result<ExitCode> {
    let cfg = NodeConfig::load(config)?;
    std::fs::create_dir_all(into).with_context(|| format!("creating {}", into.display()))?;
    let segment = snpkms_kms_node::archive_audit_log(&cfg, into)?;
    eprintln!(
        "audit log: records {}..{} moved to {}; the live log starts at its head of {} record(s)",
        segment.first_seq,
        segment.records,
        segment.path.display(),
        segment.records
    );
    Ok(ExitCode::SUCCESS)
}

async fn serve(cfg: NodeConfig) -> anyhow::Result<ExitCode> {
    let trusted = if cfg.trust.simulator_root {
        "AMD roots + SIMULATOR ROOT (development only)"
    } else if cfg.trust.extra_roots.is_empty() {
        "AMD roots only"
    } else {
        "AMD roots + extra roots"
    };
    let mut node = snpkms_kms_node::start(cfg.clone()).await?;
    let state = node.node.state();
    // The machine-readable hand-off, on stdout; the lines for people go to stderr.
    println!("{}", serde_json::to_string(&node.ready(cfg.tls.is_some()))?);
    std::io::Write::flush(&mut std::io::stdout())?;
    eprintln!(
        "snpkms node listening on {} (gRPC{})",
        node.addr,
        if cfg.tls.is_some() { ", TLS" } else { "" }
    );
    if let Some(m) = node.metrics_addr {
        eprintln!("  metrics:      http://{m}/metrics");
    }
    eprintln!("  trust roots:  {trusted}");
    let endpoints: Vec<String> = cfg
        .chain
        .rpc_urls
        .iter()
        .map(|u| {
            snpkms_chain_client::RpcEndpoint::new(u.url())
                .map(|e| e.label())
                .unwrap_or_else(|_| "(invalid URL)".into())
        })
        .collect();
    eprintln!(
        "  chain:        {} (chain id {}), registry {}, reads at {}",
        endpoints.join(", "),
        node.chain().chain_id(),
        node.chain().registry(),
        cfg.chain.read_at
    );
    eprintln!("  config:       digest {}", node.config_digest());
    eprintln!(
        "  root signer:  0x{}  epoch {}  {}",
        hex::encode(node.node.signing_address()),
        state.key_epoch,
        match &state.serving {
            Ok(()) => "serving".to_string(),
            Err(why) => format!("NOT SERVING: {why}"),
        }
    );
    tokio::select! {
        r = node.wait() => { r?; }
        _ = tokio::signal::ctrl_c() => {
            eprintln!("stopping");
            node.stop().await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Puts the VCEK the bootstrap evidence names into its certificate table, fetched from `url`
/// and checked against the pinned roots, if the table has none.
fn with_fetched_vcek(
    out: &mut snpkms_kms_node::BootstrapOutput,
    verifier: &snpkms_verifier::Verifier,
    now: snpkms_verifier::UnixTime,
    url: String,
) -> anyhow::Result<()> {
    let decode = |field: &str, v: &str| {
        hex::decode(v.trim_start_matches("0x")).with_context(|| format!("bootstrap {field}"))
    };
    let table = decode("cert_table", &out.cert_table)?;
    let mut certs = if table.is_empty() {
        snpkms_verifier::CertificateBundle::default()
    } else {
        snpkms_verifier::CertificateBundle::from_cert_table(&table)?
    };
    let parsed = verifier.parse(&decode("report", &out.report)?)?;
    if certs.has_leaf(verifier.endorser(&parsed)?) {
        return Ok(());
    }
    let id = verifier.vcek_id(&parsed)?;
    let kds = super::certs::KdsArgs {
        urls: vec![url],
        ca: None,
    };
    let client = kds.client(None)?;
    let (_, der) = super::chain_args::run_async_value(async {
        Ok(super::certs::fetch_vcek(
            &client,
            verifier,
            &id,
            &snpkms_verifier::CertificateBundle::default(),
            now,
        )
        .await?)
    })?;
    certs.vcek = Some(der);
    out.cert_table = hex::encode(certs.to_cert_table());
    Ok(())
}
