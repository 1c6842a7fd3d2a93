//! Evidence from real SEV-SNP hardware.
//!
//! Reports come from Linux configfs-tsm (`/sys/kernel/config/tsm/report`), whose `auxblob` is the
//! host's certificate table, parsed by the verifier's bounds-checked parser (the host is not
//! trusted, so neither are its offsets). The sealing key comes from `/dev/sev-guest`
//! (SNP_GET_DERIVED_KEY), the only interface that offers it.

use crate::{Attestor, PlatformError, SnpEvidence};
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Where configfs-tsm makes report entries.
pub const CONFIGFS_TSM_REPORT: &str = "/sys/kernel/config/tsm/report";
/// The SEV guest driver's device.
pub const SEV_GUEST_DEVICE: &str = "/dev/sev-guest";
/// The provider name the kernel's SEV guest driver registers with configfs-tsm.
const SEV_PROVIDER: &str = "sev_guest";

fn device_err(source_name: &'static str, message: String) -> PlatformError {
    PlatformError::Device {
        source_name,
        message,
    }
}

/// configfs-tsm: one report entry per request, removed afterwards.
pub struct ConfigFsTsm {
    base: PathBuf,
}

impl ConfigFsTsm {
    /// Reports under `base` (normally [`CONFIGFS_TSM_REPORT`]).
    pub fn new(base: impl Into<PathBuf>) -> ConfigFsTsm {
        ConfigFsTsm { base: base.into() }
    }

    fn read(&self, entry: &Path, name: &str) -> Result<Vec<u8>, PlatformError> {
        fs::read(entry.join(name)).map_err(|e| {
            device_err(
                "configfs-tsm",
                format!("reading {}: {e}", entry.join(name).display()),
            )
        })
    }

    fn write(&self, entry: &Path, name: &str, data: &[u8]) -> Result<(), PlatformError> {
        fs::write(entry.join(name), data).map_err(|e| {
            device_err(
                "configfs-tsm",
                format!("writing {}: {e}", entry.join(name).display()),
            )
        })
    }

    fn generation(&self, entry: &Path) -> Result<u64, PlatformError> {
        let text = self.read(entry, "generation")?;
        String::from_utf8_lossy(&text)
            .trim()
            .parse()
            .map_err(|_| device_err("configfs-tsm", "generation is not a number".into()))
    }

    fn attest_in(
        &self,
        entry: &Path,
        report_data: &[u8; 64],
    ) -> Result<SnpEvidence, PlatformError> {
        let provider = self.read(entry, "provider")?;
        let provider = String::from_utf8_lossy(&provider).trim().to_string();
        if provider != SEV_PROVIDER {
            return Err(device_err(
                "configfs-tsm",
                format!("provider is {provider:?}, not the SEV-SNP guest driver ({SEV_PROVIDER})"),
            ));
        }
        self.write(entry, "privlevel", b"0")?;
        self.write(entry, "inblob", report_data)?;
        let before = self.generation(entry)?;
        let report = self.read(entry, "outblob")?;
        let cert_table = match fs::read(entry.join("auxblob")) {
            Ok(t) => t,
            // Hosts that supply no certificates: the VCEK must then come from elsewhere.
            Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(device_err("configfs-tsm", format!("reading auxblob: {e}"))),
        };
        // Another writer between our inblob and our reads would give us someone else's report.
        if self.generation(entry)? != before {
            return Err(device_err(
                "configfs-tsm",
                "the report entry changed while being read (concurrent writer); retry".into(),
            ));
        }
        Ok(SnpEvidence { report, cert_table })
    }
}

impl Attestor for ConfigFsTsm {
    fn name(&self) -> &'static str {
        "configfs-tsm"
    }

    fn attest(&self, report_data: [u8; 64]) -> Result<SnpEvidence, PlatformError> {
        let name = format!("snpkms-{}-{}", std::process::id(), rand_suffix());
        let entry = self.base.join(name);
        fs::create_dir(&entry).map_err(|e| {
            device_err("configfs-tsm", format!("creating {}: {e}", entry.display()))
        })?;
        // configfs creates the attribute files with the directory; the bounded wait only
        // matters for emulations of it (the tests' fake kernel).
        let provider = entry.join("provider");
        for _ in 0..200 {
            if provider.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let result = self.attest_in(&entry, &report_data);
        // configfs entries are removed with rmdir, whatever the outcome.
        if let Err(e) = fs::remove_dir(&entry) {
            tracing::warn!("could not remove {}: {e}", entry.display());
        }
        result
    }

    fn sealing_key(&self, tcb_version: [u8; 8]) -> Result<Zeroizing<[u8; 32]>, PlatformError> {
        SevGuestDevice::new(SEV_GUEST_DEVICE).sealing_key(tcb_version)
    }
}

fn rand_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{nanos:08x}")
}

/// `/dev/sev-guest`: derived keys (and plain reports when configfs-tsm is absent: the
/// extended-report path of the `sev` crate parses the host's table without bounds checks, so
/// it is not used; verifiers then get the VCEK from AMD's KDS, unless a table is configured).
pub struct SevGuestDevice {
    path: PathBuf,
    cert_table: Option<Vec<u8>>,
}

impl SevGuestDevice {
    /// The device at `path` (only [`SEV_GUEST_DEVICE`] is supported).
    pub fn new(path: impl Into<PathBuf>) -> SevGuestDevice {
        SevGuestDevice {
            path: path.into(),
            cert_table: None,
        }
    }

    /// Certificates to send with reports (a certificate table, e.g. from `snpkms` tooling).
    pub fn with_cert_table(mut self, table: Vec<u8>) -> SevGuestDevice {
        self.cert_table = Some(table);
        self
    }

    fn firmware(&self) -> Result<sev::firmware::guest::Firmware, PlatformError> {
        if self.path != Path::new(SEV_GUEST_DEVICE) {
            return Err(device_err(
                "sev-guest",
                format!(
                    "only {SEV_GUEST_DEVICE} is supported, not {}",
                    self.path.display()
                ),
            ));
        }
        sev::firmware::guest::Firmware::open()
            .map_err(|e| device_err("sev-guest", format!("opening {SEV_GUEST_DEVICE}: {e}")))
    }
}

impl Attestor for SevGuestDevice {
    fn name(&self) -> &'static str {
        "sev-guest"
    }

    fn attest(&self, report_data: [u8; 64]) -> Result<SnpEvidence, PlatformError> {
        // SNP_GET_REPORT carries no certificates: without a configured table the verifier
        // gets the VCEK from AMD's KDS (or its store).
        let cert_table = self.cert_table.clone().unwrap_or_default();
        let report = self
            .firmware()?
            .get_report(None, Some(report_data), Some(0))
            .map_err(|e| device_err("sev-guest", format!("SNP_GET_REPORT: {e}")))?;
        Ok(SnpEvidence { report, cert_table })
    }

    fn sealing_key(&self, tcb_version: [u8; 8]) -> Result<Zeroizing<[u8; 32]>, PlatformError> {
        use sev::firmware::guest::{DerivedKey, GuestFieldSelect};
        // Bound to the VCEK (this chip), the guest policy, the launch measurement and a TCB
        // version the firmware must be at or above.
        let mut fields = GuestFieldSelect(0);
        fields.set_guest_policy(true);
        fields.set_measurement(true);
        fields.set_tcb_version(true);
        let request = DerivedKey::new(false, fields, 0, 0, u64::from_le_bytes(tcb_version), None);
        self.firmware()?
            .get_derived_key(Some(1), request)
            .map(Zeroizing::new)
            .map_err(|e| device_err("sev-guest", format!("SNP_GET_DERIVED_KEY: {e}")))
    }
}

/// Finds the hardware evidence source of this machine, saying what was looked for.
pub fn detect() -> Result<std::sync::Arc<dyn Attestor>, PlatformError> {
    let configfs = Path::new(CONFIGFS_TSM_REPORT).is_dir();
    let device = Path::new(SEV_GUEST_DEVICE).exists();
    match (configfs, device) {
        (true, true) => {
            tracing::info!("SNP evidence from configfs-tsm, sealing key from {SEV_GUEST_DEVICE}");
            Ok(std::sync::Arc::new(ConfigFsTsm::new(CONFIGFS_TSM_REPORT)))
        }
        (false, true) => Err(PlatformError::NotFound(format!(
            "{SEV_GUEST_DEVICE} exists but {CONFIGFS_TSM_REPORT} does not: mount configfs (mount -t configfs none /sys/kernel/config) on a kernel with CONFIG_TSM_REPORTS"
        ))),
        (true, false) => Err(PlatformError::NotFound(format!(
            "{CONFIGFS_TSM_REPORT} exists but {SEV_GUEST_DEVICE} does not: load the sev-guest driver (modprobe sev-guest)"
        ))),
        (false, false) => Err(PlatformError::NotFound(format!(
            "neither {CONFIGFS_TSM_REPORT} nor {SEV_GUEST_DEVICE}: this is not an SEV-SNP guest (use the simulator for development)"
        ))),
    }
}
