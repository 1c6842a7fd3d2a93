//! `snpkms certs`: AMD certificates for nodes with no route to AMD. `fetch` gets what a
//! report needs from AMD's KDS (or a mirror) on a connected machine and checks it; `import`
//! puts such a directory into a node's store (`<data_dir>/kds/`), where the node finds it as
//! if it had fetched it (and checks it again when it uses it).

use super::chain_args::run_async_value;
use super::read_file;
use anyhow::{bail, Context};
use snpkms_chain_client::RpcEndpoint;
use snpkms_kds::{CertStore, Document, KdsClient, KdsSettings, NoObserver, Rejection, AMD_KDS_URL};
use snpkms_verifier::{
    CertificateBundle, Crl, Endorser, Policy, Product, TrustRoots, UnixTime, VcekId, VerifiedVcek,
    Verifier, VerifyError,
};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Fetch the VCEK a report needs, its product's ASK/ARK chain and CRL, check them against
    /// the pinned AMD roots, and write them in the store layout.
    Fetch(FetchArgs),
    /// Copy a directory written by `certs fetch` into a node's store.
    Import(ImportArgs),
}

/// Where certificates come from, for `certs fetch` and `verify --kds`.
#[derive(clap::Args, Clone)]
pub struct KdsArgs {
    /// KDS base URL; repeat for mirrors tried in order (default: AMD's KDS).
    #[arg(long = "kds", value_name = "URL")]
    pub urls: Vec<String>,
    /// PEM CA certificate(s) trusted for the KDS URLs instead of the compiled-in roots (a
    /// mirror with a private CA).
    #[arg(long = "kds-ca", value_name = "PEM")]
    pub ca: Option<PathBuf>,
}

impl KdsArgs {
    /// The client, keeping what it fetches in `store` (if any).
    pub fn client(&self, store: Option<CertStore>) -> anyhow::Result<KdsClient> {
        let urls = if self.urls.is_empty() {
            vec![AMD_KDS_URL.to_string()]
        } else {
            self.urls.clone()
        };
        let ca = self.ca.as_deref().map(read_file).transpose()?;
        let endpoints = urls
            .iter()
            .map(|u| {
                let e = RpcEndpoint::new(u)?;
                match &ca {
                    Some(pem) => e.with_ca_pem(pem),
                    None => Ok(e),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(KdsClient::new(
            KdsSettings::new(endpoints),
            store,
            Arc::new(NoObserver),
        )?)
    }
}

#[derive(clap::Args)]
struct FetchArgs {
    /// The attestation report (binary) whose VCEK to fetch.
    #[arg(long)]
    report: PathBuf,
    /// Where to write (created if missing).
    #[arg(long, default_value = "snpkms-certs")]
    out: PathBuf,
    /// The product of a version 2 report (which carries no CPUID): milan, genoa or turin.
    #[arg(long)]
    product: Option<Product>,
    #[command(flatten)]
    kds: KdsArgs,
}

#[derive(clap::Args)]
struct ImportArgs {
    /// A directory written by `snpkms certs fetch`.
    dir: PathBuf,
    /// The node's configuration (its data_dir says where the store is).
    #[arg(long)]
    config: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Fetch(a) => run_async_value(fetch(a)),
        Command::Import(a) => import(a),
    }?;
    Ok(ExitCode::SUCCESS)
}

fn now() -> anyhow::Result<UnixTime> {
    Ok(UnixTime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .context("system clock is before 1970")?
            .as_secs(),
    ))
}

/// The VCEK `id` names (verified, and its DER), fetched (or found in `client`'s store) and
/// checked: its chain verifies to a pinned AMD root (with `chain` as the ASK and ARK, if
/// given) at `at`, and its hwID and TCB are `id`'s.
pub async fn fetch_vcek(
    client: &KdsClient,
    verifier: &Verifier,
    id: &VcekId,
    chain: &CertificateBundle,
    at: UnixTime,
) -> Result<(VerifiedVcek, Vec<u8>), snpkms_kds::FetchError<VerifyError>> {
    let check = |der: &[u8]| -> Result<(VerifiedVcek, Vec<u8>), VerifyError> {
        let mut certs = chain.clone();
        certs.vcek = CertificateBundle::from_endorsement(der)?.vcek;
        let verified = verifier.verify_chain(&certs, Endorser::Vcek, Some(id.product), at)?;
        verified.check_is(id)?;
        Ok((verified, certs.vcek.unwrap_or_default()))
    };
    client
        .fetch(&Document::vcek(id), |der: &[u8]| {
            check(der).map_err(Rejection::Document)
        })
        .await
}

async fn fetch(a: FetchArgs) -> anyhow::Result<()> {
    let policy = Policy {
        product_for_v2: a.product,
        ..Policy::default()
    };
    let verifier = Verifier::new(TrustRoots::amd(), policy);
    let parsed = verifier
        .parse(&read_file(&a.report)?)
        .with_context(|| format!("{}", a.report.display()))?;
    let id = verifier.vcek_id(&parsed)?;
    let store = CertStore::new(&a.out);
    let client = a.kds.client(Some(store.clone()))?;
    let at = now()?;

    // The chain first: the VCEK is then checked against it, which checks it too.
    let chain_doc = Document::cert_chain(id.product, Endorser::Vcek);
    let chain = client
        .fetch(&chain_doc, |pem: &[u8]| {
            let check = || -> Result<CertificateBundle, VerifyError> {
                let chain = CertificateBundle::default().with_chain_pem(pem)?;
                verifier.check_issuer_chain(&chain, Endorser::Vcek, id.product)?;
                Ok(chain)
            };
            check().map_err(Rejection::Document)
        })
        .await?;
    let (vcek, _) = fetch_vcek(&client, &verifier, &id, &chain, at).await?;
    // The CRL is for the operator's `trust.crls` (it is part of a node's sealed
    // configuration); a mirror may not carry it, but one that serves a forged one is an error.
    let mut crl_notes = Vec::new();
    for endorser in [Endorser::Vcek, Endorser::Vlek] {
        let crl_doc = Document::crl(id.product, endorser);
        let crl = client
            .fetch(&crl_doc, |der: &[u8]| {
                let check = || -> Result<(), VerifyError> {
                    let crl = Crl::from_der(der)?;
                    // Signed by the pinned ARK and current: an old CRL (replayed by a
                    // mirror) would hide the revocations made since.
                    crl.check_fresh(at.0)?;
                    // Signed by this product's ARK: another product's would leave this
                    // product's revocations unchecked once configured. (A product's VCEK and
                    // VLEK CRLs have the same signer; the path tells them apart.)
                    Verifier::new(TrustRoots::amd(), Policy::default())
                        .check_crl_for(&crl, id.product)?;
                    Ok(())
                };
                check().map_err(Rejection::Document)
            })
            .await;
        match crl {
            Ok(()) => crl_notes.push(format!(
                "{} in {}",
                crl_doc.what,
                store.path_of(&crl_doc).display()
            )),
            Err(e @ snpkms_kds::FetchError::Refused { .. }) => return Err(e.into()),
            Err(e) => {
                eprintln!("warning: {} not fetched: {e}", crl_doc.what);
                crl_notes.push(format!("without {}", crl_doc.what));
            }
        }
    }
    println!(
        "{} (valid until {}), the {} ASK/ARK chain; {}: in {}",
        Document::vcek(&id).what,
        vcek.valid_until(),
        id.product,
        crl_notes.join(", "),
        store.dir().display()
    );
    Ok(())
}

/// Every file of `dir` copied to the node's store. Only files of the store layout are taken,
/// and each must decode as what its name says (a certificate or a CRL); the node checks each
/// against the pinned roots again when it uses it.
fn import(a: ImportArgs) -> anyhow::Result<()> {
    let cfg = snpkms_kms_node::config::NodeConfig::load(&a.config)?;
    let from = CertStore::new(&a.dir);
    let to = CertStore::new(snpkms_kms_node::kds::store_dir(&cfg.data_dir));
    let files = from
        .files()
        .with_context(|| format!("reading {}", a.dir.display()))?;
    if files.is_empty() {
        bail!("{} holds no certificates", a.dir.display());
    }
    // Every file checked before any is written: a directory with one bad file imports nothing.
    let mut checked = Vec::with_capacity(files.len());
    for rel in &files {
        let bytes = read_file(&a.dir.join(rel))?;
        check_file(rel, &bytes).with_context(|| format!("{}", a.dir.join(rel).display()))?;
        checked.push((rel, bytes));
    }
    for (rel, bytes) in checked {
        let target = to.dir().join(rel);
        to.write_file(rel, &bytes)
            .with_context(|| format!("writing {}", target.display()))?;
        println!("imported {}", target.display());
    }
    Ok(())
}

fn check_file(rel: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    match name {
        "crl.der" => {
            Crl::from_der(bytes)?;
        }
        "cert_chain.pem" => {
            CertificateBundle::default().with_chain_pem(bytes)?;
        }
        n if n.ends_with(".der") && rel.starts_with("vcek") => {
            CertificateBundle::from_endorsement(bytes)?;
        }
        _ => bail!("not a file of the store layout (vcek/<product>/<hwid>/<tcb>.der, {{vcek,vlek}}/<product>/cert_chain.pem, {{vcek,vlek}}/<product>/crl.der)"),
    }
    Ok(())
}
