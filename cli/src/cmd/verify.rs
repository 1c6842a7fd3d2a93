//! `snpkms verify`: check evidence offline, as a KMS node would, and show what it says.

use super::{read_file, EXIT_REJECTED};
use anyhow::{bail, Context};
use snpkms_verifier::{
    CertificateBundle, Crl, Policy, TrustRoots, UnixTime, VerifiedReport, Verifier,
};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The 1184-byte attestation report (binary).
    #[arg(long)]
    report: PathBuf,
    /// The VCEK certificate (DER or PEM).
    #[arg(
        long,
        conflicts_with = "cert_table",
        required_unless_present = "cert_table"
    )]
    vcek: Option<PathBuf>,
    /// A certificate table (extended report / configfs-tsm auxblob) instead of --vcek.
    #[arg(long)]
    cert_table: Option<PathBuf>,
    /// ASK then ARK in PEM (AMD KDS cert_chain). The pinned copies are used when absent.
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
        (Some(vcek), None) => CertificateBundle::from_vcek(&read_file(vcek)?)
            .with_context(|| format!("{}", vcek.display()))?,
        (None, Some(table)) => CertificateBundle::from_cert_table(&read_file(table)?)
            .with_context(|| format!("{}", table.display()))?,
        _ => bail!("give exactly one of --vcek and --cert-table"),
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

    match verifier.verify(&report, &certs, at) {
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

fn print_human(r: &VerifiedReport) {
    let rows: Vec<(&str, String)> = vec![
        ("product", r.product.to_string()),
        ("version", r.version.to_string()),
        ("root", r.root.to_string()),
        ("measurement", hex::encode(r.measurement)),
        ("host_data", hex::encode(r.host_data)),
        ("report_data", hex::encode(r.report_data)),
        ("chip_id", hex::encode(r.chip_id)),
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
    for (k, v) in rows {
        println!("{k:<18} {v}");
    }
}
