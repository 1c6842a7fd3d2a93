//! `snpkms measure`: the SNP launch digest a guest image will have, computed before launch so that
//! it can be registered on-chain. Identical to sev-snp-measure 0.0.13 (`--mode snp`).

use super::read_file;
use anyhow::{bail, Context};
use serde::Serialize;
use sha2::{Digest, Sha256};
use snpkms_measure::{KernelHashes, MeasureInput, VcpuType, Vmm};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// What a launch measurement depends on. Other commands flatten this and call
/// [`MeasureArgs::measure`]; to make it an alternative to a given digest (`gov add-os-image`),
/// flatten it as `Option<MeasureArgs>` and declare the digest argument with
/// `conflicts_with = "MeasureArgs"` (see the test below).
#[derive(clap::Args, Clone, Debug)]
pub struct MeasureArgs {
    /// OVMF image exactly as launched (QEMU -bios / pflash code file), e.g.
    /// /usr/share/OVMF/OVMF_CODE.fd.
    #[arg(long, value_name = "FILE")]
    pub ovmf: PathBuf,
    /// Kernel booted directly (QEMU -kernel); the OVMF must have an SNP_KERNEL_HASHES section
    /// (an AmdSev build).
    #[arg(long, value_name = "FILE")]
    pub kernel: Option<PathBuf>,
    /// Initrd (QEMU -initrd), with --kernel.
    #[arg(long, value_name = "FILE", requires = "kernel")]
    pub initrd: Option<PathBuf>,
    /// Kernel command line (QEMU -append), with --kernel; hashed exactly as given, untrimmed.
    #[arg(
        long,
        value_name = "CMDLINE",
        requires = "kernel",
        allow_hyphen_values = true
    )]
    pub append: Option<String>,
    /// Number of vCPUs.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub vcpus: u32,
    /// QEMU vCPU model: EPYC, EPYC-v1..v4, EPYC-IBPB, EPYC-Rome[-v1..v3], EPYC-Milan[-v1, -v2],
    /// EPYC-Genoa[-v1], EPYC-Turin. Required with --vmm qemu; ignored by ec2 and gce.
    #[arg(long, value_name = "TYPE")]
    pub vcpu_type: Option<VcpuType>,
    // No clap defaults below: they would make an `Option<MeasureArgs>` group always present.
    /// VMSA SEV_FEATURES in 0x-prefixed hex [default: 0x1, SNPActive alone; 0x21 adds DebugSwap].
    #[arg(long, value_name = "HEX", value_parser = parse_guest_features)]
    pub guest_features: Option<u64>,
    /// Hypervisor that builds the initial vCPU state: qemu, ec2 or gce [default: qemu].
    #[arg(long, value_name = "VMM")]
    pub vmm: Option<Vmm>,
}

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub measure: MeasureArgs,
    /// Print `{"measurement": hex, "inputs": {...}}` instead of the bare hex digest.
    #[arg(long)]
    pub json: bool,
}

/// A computed launch digest and what it was computed from.
#[derive(Clone, Debug, Serialize)]
pub struct Measured {
    #[serde(with = "hex_digest", rename = "measurement")]
    pub digest: [u8; snpkms_measure::DIGEST_LEN],
    pub inputs: Inputs,
}

/// The inputs, with file digests so that a registration can be audited against the files.
#[derive(Clone, Debug, Serialize)]
pub struct Inputs {
    pub ovmf: FileInput,
    pub kernel: Option<FileInput>,
    pub initrd: Option<FileInput>,
    pub append: Option<String>,
    pub vcpus: u32,
    pub vcpu_type: Option<String>,
    pub guest_features: String,
    pub vmm: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct FileInput {
    pub path: PathBuf,
    pub sha256: String,
}

impl MeasureArgs {
    /// Reads the files and computes the launch digest.
    pub fn measure(&self) -> anyhow::Result<Measured> {
        let vmm = self.vmm.unwrap_or_default();
        let guest_features = self
            .guest_features
            .unwrap_or(snpkms_measure::DEFAULT_GUEST_FEATURES);
        if vmm == Vmm::Qemu && self.vcpu_type.is_none() {
            bail!("--vcpu-type is required with --vmm qemu (e.g. EPYC-v4, EPYC-Milan, EPYC-Genoa)");
        }
        let ovmf = read_file(&self.ovmf)?;
        let kernel = self.kernel.as_deref().map(read_file).transpose()?;
        let initrd = self.initrd.as_deref().map(read_file).transpose()?;
        let hashes = kernel
            .as_deref()
            .map(|k| KernelHashes::new(k, initrd.as_deref(), self.append.as_deref()));

        let digest = snpkms_measure::compute(&MeasureInput {
            ovmf: &ovmf,
            kernel: hashes,
            vcpus: self.vcpus,
            vcpu_type: self.vcpu_type,
            guest_features,
            vmm,
        })
        .with_context(|| format!("cannot measure {}", self.ovmf.display()))?;

        let file = |path: &Path, sha256: &[u8]| FileInput {
            path: path.to_owned(),
            sha256: hex::encode(sha256),
        };
        let inputs = Inputs {
            ovmf: file(&self.ovmf, &Sha256::digest(&ovmf)),
            kernel: self
                .kernel
                .as_deref()
                .zip(hashes)
                .map(|(p, h)| file(p, h.kernel())),
            initrd: self
                .initrd
                .as_deref()
                .zip(hashes)
                .map(|(p, h)| file(p, h.initrd())),
            append: self.append.clone(),
            vcpus: self.vcpus,
            // Recorded only where it is measured, so the JSON does not suggest it mattered.
            vcpu_type: self
                .vcpu_type
                .filter(|_| vmm == Vmm::Qemu)
                .map(|t| t.name().to_owned()),
            guest_features: format!("{guest_features:#x}"),
            vmm: vmm.to_string(),
        };
        Ok(Measured { digest, inputs })
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let measured = args.measure.measure()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&measured)?);
    } else {
        println!("{}", hex::encode(measured.digest));
    }
    Ok(ExitCode::SUCCESS)
}

/// Hex only, with the 0x prefix required: sev-snp-measure reads `21` as decimal, which is a
/// different feature set from 0x21.
fn parse_guest_features(s: &str) -> Result<u64, String> {
    let digits = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .ok_or_else(|| format!("{s:?}: write it in hex with a 0x prefix, e.g. 0x1 or 0x21"))?;
    u64::from_str_radix(digits, 16).map_err(|e| format!("{s:?} is not a 64-bit hex value: {e}"))
}

mod hex_digest {
    pub fn serialize<S: serde::Serializer>(digest: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(digest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// How `gov add-os-image` can take either a digest or the measurement inputs. Clap excuses
    /// the group's required arguments only when the group conflicts with something present.
    #[derive(Parser)]
    struct Embedding {
        #[arg(
            long,
            conflicts_with = "MeasureArgs",
            required_unless_present = "MeasureArgs"
        )]
        measurement: Option<String>,
        #[command(flatten)]
        measure: Option<MeasureArgs>,
    }

    #[test]
    fn flattens_as_an_optional_group() {
        let none = Embedding::try_parse_from(["x", "--measurement", "ab"]).expect("parse");
        assert!(none.measure.is_none());

        let some = Embedding::try_parse_from([
            "x",
            "--ovmf",
            "OVMF_CODE.fd",
            "--vcpus",
            "4",
            "--vcpu-type",
            "epyc-milan",
            "--guest-features",
            "0x21",
        ])
        .expect("parse");
        let m = some.measure.expect("group present");
        assert_eq!(m.vcpus, 4);
        assert_eq!(m.vcpu_type.map(|t| t.name()), Some("EPYC-Milan"));
        assert_eq!(m.guest_features, Some(0x21));
        assert_eq!(m.vmm, None);

        // Part of the group without its required --ovmf; neither; both.
        assert!(Embedding::try_parse_from(["x", "--vcpus", "4"]).is_err());
        assert!(Embedding::try_parse_from(["x"]).is_err());
        let both = ["x", "--measurement", "ab", "--ovmf", "f", "--vcpus", "1"];
        assert!(Embedding::try_parse_from(both).is_err());
    }

    #[test]
    fn rejects_ambiguous_or_impossible_values() {
        assert!(parse_guest_features("21").is_err());
        assert_eq!(parse_guest_features("0x21"), Ok(0x21));
        assert!(parse_guest_features("0x1_0000_0000_0000_0000").is_err());
        let parse =
            |args: &[&str]| Embedding::try_parse_from([&["x", "--ovmf", "f"], args].concat());
        assert!(parse(&["--vcpus", "1", "--vcpu-type", "EPYC"]).is_ok());
        assert!(parse(&["--vcpus", "0", "--vcpu-type", "EPYC"]).is_err());
        assert!(parse(&["--vcpus", "1", "--vcpu-type", "EPYC-Zen9"]).is_err());
        assert!(parse(&["--vcpus", "1", "--vmm", "hyperv"]).is_err());
        assert!(parse(&["--vcpus", "1", "--initrd", "i"]).is_err());
        assert!(parse(&["--vcpus", "1", "--append", "quiet"]).is_err());
    }
}
