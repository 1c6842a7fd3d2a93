//! `snpkms verify`: check evidence offline, as a KMS node would, and show what it says.

use super::{read_file, EXIT_REJECTED};
use anyhow::{bail, Context};
use snpkms_verifier::{
    CertificateBundle, Crl, Policy, TrustRoots, UnixTime, VerifiedReport, Verifier, VerifyError,
};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The 1184-byte attestation report (binary).
    #[arg(long)]
    report: PathBuf,
    /// The VCEK or VLEK certificate: DER, or PEM with the leaf first, optionally followed by
    /// its ASK (or ASVK) and ARK (Azure's bundle).
    #[arg(
        long,
        conflicts_with = "cert_table",
        required_unless_present_any = ["cert_table", "kds"]
    )]
    vcek: Option<PathBuf>,
    /// A certificate table (extended report / configfs-tsm auxblob) instead of --vcek.
    #[arg(long)]
    cert_table: Option<PathBuf>,
    /// Get the VCEK from AMD's KDS (or from URL, a mirror) when neither --vcek nor the
    /// certificate table has it. What comes back is checked against the pinned AMD roots.
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = snpkms_kds::AMD_KDS_URL)]
    kds: Option<String>,
    /// PEM CA certificate(s) trusted for --kds instead of the compiled-in roots.
    #[arg(long = "kds-ca", value_name = "PEM", requires = "kds")]
    kds_ca: Option<PathBuf>,
    /// ASK then ARK (or ASVK then ARK) in PEM, as AMD's KDS serves `cert_chain`. The pinned
    /// copies are used when absent.
    #[arg(long)]
    chain: Option<PathBuf>,
    /// Guest policy (TOML). Secure defaults when absent.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// AMD CRL (DER) to check revocations against.
    #[arg(long)]
    crl: Option<PathBuf>,
    /// Trust an extra root (PEM: ARK, or ASK then ARK) for the product its ARK names, e.g. the
    /// simulator's `simulator/fixtures/ark-milan.pem`. Never needed for genuine AMD evidence.
    #[arg(long = "extra-root", value_name = "PEM")]
    extra_roots: Vec<PathBuf>,
    /// Verification time as unix seconds (default: now).
    #[arg(long)]
    at: Option<u64>,
    /// Machine-readable output on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let report = read_file(&args.report)?;
    let mut certs = match (&args.vcek, &args.cert_table) {
        (Some(vcek), None) => CertificateBundle::from_endorsement(&read_file(vcek)?)
            .with_context(|| format!("{}", vcek.display()))?,
        (None, Some(table)) => CertificateBundle::from_cert_table(&read_file(table)?)
            .with_context(|| format!("{}", table.display()))?,
        (None, None) if args.kds.is_some() => CertificateBundle::default(),
        _ => bail!("give exactly one of --vcek and --cert-table (or --kds)"),
    };
    if let Some(chain) = &args.chain {
        certs = certs
            .with_chain_pem(&read_file(chain)?)
            .with_context(|| format!("{}", chain.display()))?;
    }
    let policy = match &args.policy {
        Some(path) => {
            let text = String::from_utf8(read_file(path)?)
                .with_context(|| format!("{} is not UTF-8", path.display()))?;
            Policy::from_toml(&text).with_context(|| format!("{}", path.display()))?
        }
        None => Policy::default(),
    };
    let mut roots = TrustRoots::amd();
    for path in &args.extra_roots {
        let label = format!("extra root {}", path.display());
        roots
            .add_pem_for_named_product(&label, &read_file(path)?)
            .with_context(|| format!("{}", path.display()))?;
    }
    let mut verifier = Verifier::new(roots, policy);
    if let Some(path) = &args.crl {
        let crl =
            Crl::from_der(&read_file(path)?).with_context(|| format!("{}", path.display()))?;
        verifier = verifier
            .with_crl(crl)
            .with_context(|| format!("{}", path.display()))?;
    }
    let at = match args.at {
        Some(t) => UnixTime(t),
        None => UnixTime(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .context("system clock is before 1970")?
                .as_secs(),
        ),
    };

    let verdict = match &args.kds {
        Some(url) => {
            let kds = super::certs::KdsArgs {
                urls: vec![url.clone()],
                ca: args.kds_ca.clone(),
            };
            verify_fetching(&verifier, &report, &certs, at, &kds)?
        }
        None => verifier.verify(&report, &certs, at),
    };
    match verdict {
        Ok(verified) => {
            if args.json {
                let out = serde_json::json!({ "valid": true, "report": verified });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                print_human(&verified);
                println!("verdict: VALID");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            if args.json {
                let out = serde_json::json!({
                    "valid": false,
                    "error": { "kind": err.kind(), "message": err.to_string() },
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!("verdict: REJECTED");
            }
            eprintln!("rejected: {err}");
            Ok(ExitCode::from(EXIT_REJECTED))
        }
    }
}

/// Verification that fetches the VCEK when `certs` lacks it for a VCEK-signed report. A KDS
/// that cannot be reached is an error (no verdict); one that serves a certificate that does
/// not verify gives a rejection.
fn verify_fetching(
    verifier: &Verifier,
    report: &[u8],
    certs: &CertificateBundle,
    at: UnixTime,
    kds: &super::certs::KdsArgs,
) -> anyhow::Result<Result<VerifiedReport, VerifyError>> {
    let parsed = match verifier.parse(report) {
        Ok(p) => p,
        Err(e) => return Ok(Err(e)),
    };
    let endorser = match verifier.endorser(&parsed) {
        Ok(e) => e,
        Err(e) => return Ok(Err(e)),
    };
    if certs.has_leaf(endorser) {
        return Ok(verifier.verify(report, certs, at));
    }
    let id = match verifier.vcek_id(&parsed) {
        Ok(id) => id,
        Err(e) => return Ok(Err(e)),
    };
    let client = kds.client(None)?;
    let fetched = super::chain_args::run_async_value(async {
        Ok(super::certs::fetch_vcek(&client, verifier, &id, certs, at).await)
    })?;
    match fetched {
        Ok((chain, _)) => Ok(verifier.verify_parsed(&parsed, &chain, at)),
        Err(snpkms_kds::FetchError::Refused { error, .. }) => Ok(Err(error)),
        Err(e) => Err(e.into()),
    }
}

fn print_human(r: &VerifiedReport) {
    let rows: Vec<(&str, String)> = vec![
        ("product", r.product.to_string()),
        ("version", r.version.to_string()),
        ("root", r.root.to_string()),
        ("signed_by", r.endorser.to_string()),
        ("measurement", hex::encode(r.measurement)),
        ("host_data", hex::encode(r.host_data)),
        ("report_data", hex::encode(r.report_data)),
        ("chip_id", hex::encode(r.chip_id)),
        (
            "device_identity",
            match r.device_chip_id() {
                Some(_) => "chip_id (bound by the VCEK)".to_string(),
                None => "none (VLEK-signed or masked chip id)".to_string(),
            },
        ),
        ("guest_svn", r.guest_svn.to_string()),
        ("policy", format!("{:#x}", r.policy.0)),
        ("vmpl", r.vmpl.to_string()),
        ("plat_info", format!("{:#x}", r.plat_info.0)),
        ("reported_tcb", r.reported_tcb.to_string()),
        ("committed_tcb", r.committed_tcb.to_string()),
        ("launch_tcb", r.launch_tcb.to_string()),
        ("current_tcb", r.current_tcb.to_string()),
        ("firmware", r.current_version.to_string()),
        ("family_id", hex::encode(r.family_id)),
        ("image_id", hex::encode(r.image_id)),
        ("id_key_digest", hex::encode(r.id_key_digest)),
        ("author_key_digest", hex::encode(r.author_key_digest)),
    ];
    let mut rows = rows;
    if let Some(csp) = &r.csp_id {
        rows.insert(4, ("csp_id", csp.clone()));
    }
    for (k, v) in rows {
        println!("{k:<18} {v}");
    }
}
