//! `snpkms get-key`: what a guest runs at boot to get its app's keys.

use super::compose_arg::ComposeArg;
use super::guest_source::{parse_hex, SourceArgs};
use anyhow::Context;
use snpkms_api::seal::EphemeralKeyPair;
use snpkms_chain_client::{ChainClient, ChainConfig, RpcEndpoint};
use snpkms_guest::threshold::{
    collect_signatures, combine_answers, NodeAnswer, ShareSet, SignatureAnswer,
};
use snpkms_guest::{AppKeyGrant, GuestClient, GuestClientError};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// KMS node URL, e.g. http://10.0.0.2:50051; repeat (or separate with commas) for several.
    /// In the replicated-root mode they are tried in order until one grants; in the threshold
    /// mode (the registry records a share set) every one is asked at once, and t good partials
    /// make the keys.
    #[arg(long, env = "SNPKMS_KMS_URL", value_delimiter = ',', required = true)]
    kms: Vec<String>,
    /// How long each node may take to answer in the threshold mode.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    kms_timeout_secs: u64,
    /// CA (or self-signed certificate) of the node's TLS listener, for https:// URLs.
    #[arg(long, value_name = "PEM")]
    kms_ca: Option<PathBuf>,
    /// The app id (its AppAuth contract address).
    #[arg(long)]
    app_id: String,
    /// The compose this guest runs.
    #[command(flatten)]
    compose: ComposeArg,
    /// Key epoch to ask for (default: the registry's current one).
    #[arg(long)]
    epoch: Option<u32>,
    /// The KMS root signing address the grant must be signed by. Without it, it is read from
    /// the registry (--rpc-url and --registry); one of the two is required, because a KMS's
    /// own claim about its root proves nothing.
    #[arg(long)]
    expected_root: Option<String>,
    /// RPC endpoint(s) to read the registry's KMS root from: https://, or http:// to a
    /// loopback address; repeat (or separate with commas) for a quorum.
    #[arg(long = "rpc-url", env = "SNPKMS_RPC_URL", value_delimiter = ',')]
    rpc_urls: Vec<String>,
    /// How many of the --rpc-url endpoints must agree.
    #[arg(long, default_value_t = 1)]
    rpc_quorum: usize,
    /// CA certificate(s) (PEM) to trust for the https RPC endpoints instead of the Mozilla roots.
    #[arg(long, value_name = "PEM")]
    rpc_ca: Option<PathBuf>,
    /// Block the registry is read at: `safe`, `finalized`, or a number of confirmations.
    #[arg(long, default_value = DEFAULT_READ_AT)]
    read_at: String,
    #[arg(long, env = "SNPKMS_REGISTRY")]
    registry: Option<String>,
    /// Write disk.key, env.key and signing.key here (mode 0600).
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Also print the secret keys to stdout. Off by default: terminals and logs keep things.
    #[arg(long)]
    print_secrets: bool,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    source: SourceArgs,
}

/// The depth `get-key` reads the registry at unless told otherwise (confirmations).
pub const DEFAULT_READ_AT: &str = "3";

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(get_key(args))
}

/// What the guest trusts, from the registry or its own arguments, never from a KMS.
enum Trust {
    /// The replicated-root mode: the KMS root the grant must be signed by.
    Root([u8; 20]),
    /// The threshold mode: the share set each node's partial is checked against.
    Shares(Box<ShareSet>),
}

/// The KMS root the grant must be signed by (given), or what the registry says, read with the
/// same rules as a node's reads (https or loopback, distinct hosts, quorum, a pinned block): the
/// share set if it records one, else its KMS root.
async fn trust(args: &Args) -> anyhow::Result<Option<Trust>> {
    if let Some(root) = &args.expected_root {
        return Ok(Some(Trust::Root(
            parse_hex::<20>(root).context("--expected-root")?,
        )));
    }
    let Some(registry) = &args.registry else {
        return Ok(None);
    };
    if args.rpc_urls.is_empty() {
        return Ok(None);
    }
    let ca = args.rpc_ca.as_deref().map(super::read_file).transpose()?;
    let mut endpoints = Vec::new();
    for url in &args.rpc_urls {
        let mut endpoint = RpcEndpoint::new(url)?;
        if let (Some(pem), "https") = (&ca, endpoint.url().scheme()) {
            endpoint = endpoint.with_ca_pem(pem)?;
        }
        endpoints.push(endpoint);
    }
    let mut cfg = ChainConfig::new(
        endpoints[0].clone(),
        registry.parse().context("--registry")?,
    );
    cfg.endpoints = endpoints;
    cfg.quorum = args.rpc_quorum;
    cfg.read_at = args
        .read_at
        .parse()
        .map_err(|e: String| anyhow::anyhow!("--read-at: {e}"))?;
    let chain = ChainClient::connect(cfg).await?;
    let group = chain.threshold_group().await?;
    if group.share_epoch != 0 {
        let nodes: Vec<(u16, Vec<u8>, [u8; 20])> = group
            .nodes
            .iter()
            .map(|n| (n.index, n.verifying_share.clone(), n.signer.0 .0))
            .collect();
        let set = ShareSet::new(group.share_epoch, group.threshold, &group.group_key, &nodes)
            .context("the registry's share set is refused")?;
        return Ok(Some(Trust::Shares(Box::new(set))));
    }
    let info = chain.kms_info().await?;
    Ok(Some(Trust::Root(info.root_signing_address.0 .0)))
}

async fn get_key(args: Args) -> anyhow::Result<ExitCode> {
    let app_id = parse_hex::<20>(&args.app_id).context("--app-id")?;
    let compose_hash = args.compose.hash()?;
    let Some(trust) = trust(&args).await? else {
        eprintln!(
            "error: get-key needs the KMS root it may trust: pass --expected-root 0x<address>, or \
             --rpc-url URL --registry 0x<registry> to read it from the chain \
             (what a KMS says about its own root proves nothing)"
        );
        return Ok(ExitCode::from(super::EXIT_USAGE));
    };
    let source = args
        .source
        .open(snpkms_verifier::app_host_data(&app_id, &compose_hash))?;
    let ca = args.kms_ca.as_deref().map(super::read_file).transpose()?;
    let expected = match trust {
        Trust::Root(root) => root,
        Trust::Shares(set) => {
            return threshold_keys(&args, source, ca, app_id, compose_hash, *set).await;
        }
    };
    let mut failures = Vec::new();
    for url in &args.kms {
        let granted = async {
            let mut client = connect(url, ca.as_deref()).await?;
            client
                .get_app_key(source.as_ref(), app_id, compose_hash, args.epoch, expected)
                .await
        }
        .await;
        match granted {
            Ok(grant) => {
                if let Some(dir) = &args.out_dir {
                    write_keys(dir, &keys_of(&grant))?;
                }
                print_grant(&grant, args.print_secrets, args.json)?;
                return Ok(ExitCode::SUCCESS);
            }
            Err(e) => {
                eprintln!("{url}: {e}");
                failures.push(e);
            }
        }
    }
    match failures.last() {
        Some(e) => eprintln!("error: no KMS node granted the keys; the last said: {e}"),
        None => eprintln!("error: no KMS node given"),
    }
    Ok(ExitCode::from(super::EXIT_REJECTED))
}

async fn connect(url: &str, ca: Option<&[u8]>) -> Result<GuestClient, GuestClientError> {
    match ca {
        Some(ca) => GuestClient::connect_tls(url, ca).await,
        None => GuestClient::connect(url).await,
    }
}

/// The threshold mode: every node asked at once (each within `--kms-timeout-secs`), each answer
/// checked against the share set, and the newest epoch's t good partials combined. Every node
/// that did not help is named.
async fn threshold_keys(
    args: &Args,
    source: Arc<dyn snpkms_platform::Attestor>,
    ca: Option<Vec<u8>>,
    app_id: [u8; 20],
    compose_hash: [u8; 32],
    set: ShareSet,
) -> anyhow::Result<ExitCode> {
    let ephemeral = Arc::new(EphemeralKeyPair::generate());
    let ca = Arc::new(ca);
    let timeout = Duration::from_secs(args.kms_timeout_secs.max(1));
    let epoch = args.epoch;
    let answers = ask_each(
        &args.kms,
        &ca,
        timeout,
        {
            let (source, ephemeral) = (source.clone(), ephemeral.clone());
            move |mut client: GuestClient| {
                let (source, ephemeral) = (source.clone(), ephemeral.clone());
                async move {
                    client
                        .get_app_key_share(source.as_ref(), app_id, compose_hash, epoch, &ephemeral)
                        .await
                }
            }
        },
        |node, why| NodeAnswer {
            node,
            nonce: Vec::new(),
            result: Err(why),
        },
    )
    .await?;
    let grant = match combine_answers(&set, &ephemeral, app_id, compose_hash, args.epoch, answers) {
        Ok(grant) => grant,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(super::EXIT_REJECTED));
        }
    };
    for skipped in &grant.skipped {
        eprintln!("skipped {skipped}");
    }
    // The KMS signature: the nodes that gave a good partial vouch for the derived address.
    let (key_epoch, address) = (grant.key_epoch, grant.app_signing_address);
    let answers = ask_each(
        &grant.answered,
        &ca,
        timeout,
        {
            let source = source.clone();
            move |mut client: GuestClient| {
                let source = source.clone();
                async move {
                    client
                        .sign_app_key(source.as_ref(), app_id, compose_hash, key_epoch, address)
                        .await
                }
            }
        },
        |node, why| SignatureAnswer {
            node,
            result: Err(why),
        },
    )
    .await?;
    let signed = match collect_signatures(&set, app_id, address, key_epoch, answers) {
        Ok(signed) => signed,
        Err(e) => {
            eprintln!("error: the keys were derived but the KMS signature was not: {e}");
            return Ok(ExitCode::from(super::EXIT_REJECTED));
        }
    };
    for skipped in &signed.skipped {
        eprintln!("signature skipped {skipped}");
    }
    if let Some(dir) = &args.out_dir {
        write_keys(
            dir,
            &[
                &*grant.disk_key,
                &*grant.env_secret_key,
                &*grant.signing_key,
            ],
        )?;
    }
    let mut out = serde_json::json!({
        "mode": "threshold",
        "key_epoch": grant.key_epoch,
        "share_epoch": grant.share_epoch,
        "app_signing_address": format!("0x{}", hex::encode(grant.app_signing_address)),
        "env_public_key": hex::encode(x25519_public(&grant.env_secret_key)),
        "nodes_used": grant.used,
        "kms_signatures": signed.signatures.iter().map(|s| serde_json::json!({
            "node_index": s.node_index,
            "signature": format!("0x{}", hex::encode(s.signature)),
        })).collect::<Vec<_>>(),
        "nodes_skipped": grant.skipped.iter().map(|s| serde_json::json!({"node": s.node, "why": s.why})).collect::<Vec<_>>(),
    });
    if args.print_secrets {
        out["disk_key"] = hex::encode(grant.disk_key.as_slice()).into();
        out["env_secret_key"] = hex::encode(grant.env_secret_key.as_slice()).into();
        out["signing_key"] = hex::encode(grant.signing_key.as_slice()).into();
    }
    print_json_or_lines(&out, args.json)?;
    Ok(ExitCode::SUCCESS)
}

/// Asks every node in `urls` at once, each within `timeout`; a node that cannot be reached or
/// does not answer in time is `failed(node, why)`. The answers in the order they came.
async fn ask_each<T, F, Fut>(
    urls: &[String],
    ca: &Arc<Option<Vec<u8>>>,
    timeout: Duration,
    ask: F,
    failed: fn(String, String) -> T,
) -> anyhow::Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(GuestClient) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = T> + Send,
{
    let mut asked = tokio::task::JoinSet::new();
    for url in urls {
        let (url, ca, ask) = (url.clone(), ca.clone(), ask.clone());
        asked.spawn(async move {
            let answer = async {
                match connect(&url, ca.as_deref()).await {
                    Ok(client) => ask(client).await,
                    Err(e) => failed(url.clone(), e.to_string()),
                }
            };
            tokio::time::timeout(timeout, answer)
                .await
                .unwrap_or_else(|_| {
                    failed(
                        url.clone(),
                        format!("no answer within {} s", timeout.as_secs()),
                    )
                })
        });
    }
    let mut answers = Vec::new();
    while let Some(answer) = asked.join_next().await {
        answers.push(answer.context("a node's request task")?);
    }
    Ok(answers)
}

fn keys_of(grant: &AppKeyGrant) -> [&[u8; 32]; 3] {
    [
        &*grant.disk_key,
        &*grant.env_secret_key,
        &*grant.signing_key,
    ]
}

/// Writes the disk, env and signing keys (in that order) to `dir`, mode 0600.
fn write_keys(dir: &Path, keys: &[&[u8; 32]; 3]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, key) in ["disk.key", "env.key", "signing.key"].into_iter().zip(keys) {
        let path = dir.join(name);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        file.write_all(key.as_slice())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    eprintln!("keys written to {} (mode 0600)", dir.display());
    Ok(())
}

fn print_grant(grant: &AppKeyGrant, secrets: bool, json: bool) -> anyhow::Result<()> {
    let env_public = x25519_public(&grant.env_secret_key);
    let mut out = serde_json::json!({
        "key_epoch": grant.key_epoch,
        "app_signing_address": format!("0x{}", hex::encode(grant.app_signing_address)),
        "env_public_key": hex::encode(env_public),
        "kms_signature": format!("0x{}", hex::encode(grant.kms_signature)),
        "kms_root_signing_address": format!("0x{}", hex::encode(grant.kms_root_signing_address)),
        "block_number": grant.block_number,
        "block_hash": format!("0x{}", hex::encode(&grant.block_hash)),
    });
    if secrets {
        out["disk_key"] = hex::encode(grant.disk_key.as_slice()).into();
        out["env_secret_key"] = hex::encode(grant.env_secret_key.as_slice()).into();
        out["signing_key"] = hex::encode(grant.signing_key.as_slice()).into();
    }
    print_json_or_lines(&out, json)
}

fn print_json_or_lines(out: &serde_json::Value, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(out)?);
    } else if let Some(map) = out.as_object() {
        for (k, v) in map {
            println!(
                "{k:<26} {}",
                v.as_str().map_or_else(|| v.to_string(), str::to_owned)
            );
        }
    }
    Ok(())
}

fn x25519_public(secret: &[u8; 32]) -> [u8; 32] {
    x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(*secret)).to_bytes()
}
