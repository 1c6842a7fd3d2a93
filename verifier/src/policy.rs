//! The relying party's policy: what a verified report must also satisfy to be accepted.

use crate::error::{PolicyError, PolicyLoadError, ProductError};
use crate::hex_serde::HexBytes;
use crate::product::Product;
use crate::report::VersionWindow;
use crate::tcb::TcbVersion;
use crate::verified::VerifiedReport;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Acceptance policy. `Policy::default()` is the secure baseline: no debug, no migration agent,
/// VMPL 0 only, chip id required; TOML files override individual fields.
///
/// ```toml
/// allow_smt = false
/// min_abi = { major = 1, minor = 55 }
/// [min_tcb.milan]
/// bootloader = 4
/// snp = 22
/// microcode = 213
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Accepted report versions (inclusive).
    pub min_report_version: u32,
    /// Highest accepted report version (inclusive); default 5.
    pub max_report_version: u32,
    /// Version 2 reports carry no CPUID; this names their product when the VCEK issuer does not.
    pub product_for_v2: Option<Product>,
    /// Products whose evidence is accepted; default all of [`Product::ALL`].
    pub allowed_products: Vec<Product>,
    /// Accept guests whose policy allows debugging (the host can then read their memory);
    /// default false.
    pub allow_debug: bool,
    /// Accept guests whose policy allows a migration agent (which can export them); default
    /// false.
    pub allow_migrate_agent: bool,
    /// Highest VMPL a report may be requested from; default 0 (only the most privileged).
    pub max_vmpl: u32,
    /// When false, the guest policy must forbid SMT and the platform must have it disabled.
    pub allow_smt: bool,
    /// Require guest policy SINGLE_SOCKET; default false.
    pub require_single_socket: bool,
    /// Minimum SNP firmware ABI, applied to the current and the committed firmware version.
    pub min_abi: Abi,
    /// Minimum guest SVN (from the ID block); default 0.
    pub min_guest_svn: u32,
    /// A masked chip id cannot be tied to a machine; refused unless explicitly allowed.
    pub allow_masked_chip_id: bool,
    /// Minimum TCB per product, applied to reported, committed and launch TCB.
    pub min_tcb: BTreeMap<Product, TcbVersion>,

    // The fields below were added after policies were first sealed into node configurations:
    // at their default they are left out of the serialized form, so the configuration digest
    // of a node that does not set them stays what it was.
    /// Accept provisional firmware: a committed TCB or firmware version that differs from the
    /// current one (firmware that was updated but not committed, and can still be rolled
    /// back). Default false.
    #[serde(skip_serializing_if = "is_false")]
    pub allow_provisional_firmware: bool,
    /// Minimum SNP firmware build per product, applied to the current and the committed
    /// firmware (report offsets 0x1E8 and 0x1EC).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub min_build: BTreeMap<Product, u8>,
    /// Minimum ABI the guest's own policy must require of the firmware (guest policy bits
    /// 15:0): a guest launched with a lower requirement could run on older firmware.
    #[serde(skip_serializing_if = "is_default")]
    pub min_guest_policy_abi: Abi,
    /// Accept guests whose policy allows CXL-attached memory (guest policy bit 21), which lies
    /// outside the memory SNP encrypts with the guest's key. Default false.
    #[serde(skip_serializing_if = "is_false")]
    pub allow_cxl: bool,
    /// Require guest policy MEM_AES_256_XTS (bit 22): memory encrypted with AES-256-XTS rather
    /// than AES-128.
    #[serde(skip_serializing_if = "is_false")]
    pub require_mem_aes_256_xts: bool,
    /// Require guest policy PAGE_SWAP_DISABLE (bit 25): the host cannot swap guest pages out.
    #[serde(skip_serializing_if = "is_false")]
    pub require_page_swap_disable: bool,
    /// Require guest policy RAPL_DIS (bit 23): no power-based side channel through RAPL.
    #[serde(skip_serializing_if = "is_false")]
    pub require_rapl_disabled: bool,
    /// Require guest policy CIPHERTEXT_HIDING_DRAM (bit 24): the host cannot read the
    /// ciphertext of guest memory (a side channel).
    #[serde(skip_serializing_if = "is_false")]
    pub require_ciphertext_hiding: bool,
    /// Require plat_info TSME_EN: all memory encrypted, not only SNP guests'.
    #[serde(skip_serializing_if = "is_false")]
    pub require_tsme: bool,
    /// Require plat_info ECC_EN: error-correcting memory.
    #[serde(skip_serializing_if = "is_false")]
    pub require_ecc: bool,
    /// Require plat_info ALIAS_CHECK_COMPLETE: the BadRAM mitigation (AMD-SB-3015) ran and
    /// found no aliased memory.
    #[serde(skip_serializing_if = "is_false")]
    pub require_alias_check_complete: bool,
    /// Accept platforms with SEV-TIO (trusted device I/O) enabled. Default true.
    #[serde(skip_serializing_if = "is_true")]
    pub allow_tio: bool,
    /// Bits that must be set in LAUNCH_MIT_VECTOR (mitigations active when the guest
    /// launched). Only version 5 reports carry it: a non-zero value refuses older reports.
    #[serde(skip_serializing_if = "is_zero")]
    pub required_launch_mit_vector: u64,
    /// Bits that must be set in CURRENT_MIT_VECTOR (mitigations active now); version 5 only,
    /// as above.
    #[serde(skip_serializing_if = "is_zero")]
    pub required_current_mit_vector: u64,
    /// If not empty, ID_KEY_DIGEST must be one of these (SHA-384 of the key that signed the
    /// guest's ID block): only images signed by these keys.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trusted_id_key_digests: Vec<HexBytes<48>>,
    /// If not empty, the ID key must be certified by an author key (KEY_INFO.AUTHOR_KEY_EN)
    /// whose digest is one of these.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trusted_author_key_digests: Vec<HexBytes<48>>,
    /// If set, FAMILY_ID (from the ID block) must equal it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family_id: Option<HexBytes<16>>,
    /// If set, IMAGE_ID (from the ID block) must equal it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_id: Option<HexBytes<16>>,
    /// If set, REPORT_ID_MA must equal it: the guest is bound to this migration agent (all
    /// `ff` bytes: to none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report_id_ma: Option<HexBytes<32>>,
    /// Accept reports signed by a VLEK: a key AMD issues to a cloud provider (AWS), shared by
    /// its chips, whose certificate names the provider and no chip. Such reports carry no
    /// device identity (the registry's device lists cannot match them), and one chip's leak
    /// of the VLEK would let its holder sign for the provider's whole fleet at that TCB.
    /// Default false.
    #[serde(skip_serializing_if = "is_false")]
    pub allow_vlek: bool,
    /// If not empty, a VLEK must have been issued to one of these cloud providers (its csp_id
    /// extension, compared exactly, e.g. `"CN=cc-us-east-2.amazonaws.com"`). Needs
    /// `allow_vlek`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_csp_ids: Vec<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_true(b: &bool) -> bool {
    *b
}
fn is_zero(v: &u64) -> bool {
    *v == 0
}
fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// An SNP firmware ABI version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Abi {
    /// Major version.
    pub major: u8,
    /// Minor version.
    pub minor: u8,
}

impl Default for Policy {
    fn default() -> Self {
        let versions = VersionWindow::default();
        Policy {
            min_report_version: versions.min,
            max_report_version: versions.max,
            product_for_v2: None,
            allowed_products: Product::ALL.to_vec(),
            allow_debug: false,
            allow_migrate_agent: false,
            max_vmpl: 0,
            allow_smt: true,
            require_single_socket: false,
            min_abi: Abi::default(),
            min_guest_svn: 0,
            allow_masked_chip_id: false,
            min_tcb: BTreeMap::new(),
            allow_provisional_firmware: false,
            min_build: BTreeMap::new(),
            min_guest_policy_abi: Abi::default(),
            allow_cxl: false,
            require_mem_aes_256_xts: false,
            require_page_swap_disable: false,
            require_rapl_disabled: false,
            require_ciphertext_hiding: false,
            require_tsme: false,
            require_ecc: false,
            require_alias_check_complete: false,
            allow_tio: true,
            required_launch_mit_vector: 0,
            required_current_mit_vector: 0,
            trusted_id_key_digests: Vec::new(),
            trusted_author_key_digests: Vec::new(),
            family_id: None,
            image_id: None,
            report_id_ma: None,
            allow_vlek: false,
            allowed_csp_ids: Vec::new(),
        }
    }
}

impl Policy {
    /// Parses a TOML policy (fields not given keep their [`Policy::default`] value; unknown
    /// keys are refused) and [validates](Policy::validate) it.
    pub fn from_toml(text: &str) -> Result<Policy, PolicyLoadError> {
        let policy: Policy = toml::from_str(text)?;
        policy.validate()?;
        Ok(policy)
    }

    /// Refuses policies that could never be meant: a version window that is empty, below 2 or
    /// above the newest layout this verifier knows (5), an fmc minimum for a product without
    /// fmc, a family or image id without a trusted ID or author key (the host writes and signs
    /// the ID block these come from, so alone they restrict nothing). Every policy a verifier
    /// is built from, from a
    /// file or a node's configuration, goes through it.
    pub fn validate(&self) -> Result<(), PolicyLoadError> {
        if self.min_report_version > self.max_report_version {
            return Err(PolicyLoadError::Invalid(format!(
                "min_report_version {} is above max_report_version {}",
                self.min_report_version, self.max_report_version
            )));
        }
        if self.min_report_version < 2 {
            return Err(PolicyLoadError::Invalid(
                "report versions below 2 do not exist".into(),
            ));
        }
        let newest = VersionWindow::default().max;
        if self.max_report_version > newest {
            return Err(PolicyLoadError::Invalid(format!(
                "max_report_version {} is above {newest}, the newest report layout this verifier knows: a newer report would be read with an older layout",
                self.max_report_version
            )));
        }
        let id_key_trusted =
            !self.trusted_id_key_digests.is_empty() || !self.trusted_author_key_digests.is_empty();
        for (field, set) in [
            ("family_id", self.family_id.is_some()),
            ("image_id", self.image_id.is_some()),
        ] {
            if set && !id_key_trusted {
                return Err(PolicyLoadError::Invalid(format!(
                    "{field} is set but neither trusted_id_key_digests nor \
                     trusted_author_key_digests is: whoever launches the guest writes and signs \
                     its ID block, so {field} alone restricts nothing"
                )));
            }
        }
        if !self.allowed_csp_ids.is_empty() && !self.allow_vlek {
            return Err(PolicyLoadError::Invalid(
                "allowed_csp_ids is set but allow_vlek is false: no VLEK-signed report is \
                 accepted, so the list restricts nothing"
                    .into(),
            ));
        }
        for (product, tcb) in &self.min_tcb {
            if tcb.fmc != 0 && !product.has_turin_tcb_layout() {
                return Err(PolicyLoadError::Invalid(format!(
                    "min_tcb.{} sets fmc, which only Turin has",
                    product.amd_name().to_lowercase()
                )));
            }
        }
        Ok(())
    }

    /// The accepted report versions as a [`VersionWindow`].
    pub fn version_window(&self) -> VersionWindow {
        VersionWindow {
            min: self.min_report_version,
            max: self.max_report_version,
        }
    }

    pub(crate) fn check_product(&self, product: Product) -> Result<(), ProductError> {
        if self.allowed_products.contains(&product) {
            Ok(())
        } else {
            Err(ProductError::NotAllowed(product))
        }
    }

    /// Step 6: everything that is a matter of the relying party's taste rather than of
    /// authenticity. Each check names the attack or weakness it keeps out.
    pub fn check(&self, r: &VerifiedReport) -> Result<(), PolicyError> {
        let p = r.policy;
        if r.endorser == crate::Endorser::Vlek {
            if !self.allow_vlek {
                return Err(PolicyError::VlekNotAllowed);
            }
            let csp_id = r.csp_id.clone().unwrap_or_default();
            if !self.allowed_csp_ids.is_empty() && !self.allowed_csp_ids.contains(&csp_id) {
                return Err(PolicyError::CspNotAllowed { csp_id });
            }
        }
        // Bit 17 is must-be-one in every ABI revision; firmware refuses to launch without it.
        if !p.reserved_mbo() {
            return Err(PolicyError::ReservedBitNotSet);
        }
        if p.debug_allowed() && !self.allow_debug {
            return Err(PolicyError::DebugAllowed);
        }
        if p.migrate_ma_allowed() && !self.allow_migrate_agent {
            return Err(PolicyError::MigrateAgentAllowed);
        }
        // Lower VMPLs (0 is most privileged) can tamper with higher ones; only VMPL 0 speaks
        // for the whole guest.
        if r.vmpl > self.max_vmpl {
            return Err(PolicyError::Vmpl {
                vmpl: r.vmpl,
                max: self.max_vmpl,
            });
        }
        if !self.allow_smt && (p.smt_allowed() || r.plat_info.smt_enabled()) {
            return Err(PolicyError::SmtNotAllowed);
        }
        if self.require_single_socket && !p.single_socket_required() {
            return Err(PolicyError::SingleSocketRequired);
        }
        // The firmware enforces the guest policy at launch; a report that disagrees with the
        // platform state came from firmware that did not, and is not to be trusted.
        if !p.smt_allowed() && r.plat_info.smt_enabled() {
            return Err(PolicyError::PlatInfoInconsistent(
                "policy forbids SMT but plat_info says SMT is enabled",
            ));
        }
        if p.rapl_disabled() && !r.plat_info.rapl_disabled() {
            return Err(PolicyError::PlatInfoInconsistent(
                "policy requires RAPL disabled but plat_info says RAPL is enabled",
            ));
        }
        if p.ciphertext_hiding_required() && !r.plat_info.ciphertext_hiding_enabled() {
            return Err(PolicyError::PlatInfoInconsistent(
                "policy requires ciphertext hiding but plat_info says it is off",
            ));
        }
        for (which, v) in [
            ("current", r.current_version),
            ("committed", r.committed_version),
        ] {
            if (v.major, v.minor) < (self.min_abi.major, self.min_abi.minor) {
                return Err(PolicyError::AbiTooOld {
                    which,
                    major: v.major,
                    minor: v.minor,
                    min_major: self.min_abi.major,
                    min_minor: self.min_abi.minor,
                });
            }
        }
        if r.guest_svn < self.min_guest_svn {
            return Err(PolicyError::GuestSvnTooLow {
                svn: r.guest_svn,
                min: self.min_guest_svn,
            });
        }
        self.check_firmware(r)?;
        self.check_guest_policy(r)?;
        self.check_platform(r)?;
        self.check_identity(r)?;
        if let Some(minimum) = self.min_tcb.get(&r.product) {
            for (which, tcb) in [
                ("reported_tcb", r.reported_tcb),
                ("committed_tcb", r.committed_tcb),
                ("launch_tcb", r.launch_tcb),
            ] {
                if let Some((component, value, min)) = tcb.first_below(minimum) {
                    return Err(PolicyError::TcbBelowMinimum {
                        which,
                        product: r.product,
                        component,
                        value,
                        min,
                        minimum: *minimum,
                    });
                }
            }
        }
        Ok(())
    }
}

impl Policy {
    /// Provisional firmware, the reported TCB against the current one, minimum builds.
    fn check_firmware(&self, r: &VerifiedReport) -> Result<(), PolicyError> {
        // Firmware reports a TCB for the VCEK (set by the host) no higher than it runs.
        for ((component, reported), (_, current)) in r
            .reported_tcb
            .components()
            .into_iter()
            .zip(r.current_tcb.components())
        {
            if reported > current {
                return Err(PolicyError::ReportedAboveCurrent {
                    component,
                    reported,
                    current,
                });
            }
        }
        // Updated but uncommitted firmware can be rolled back to the committed one, whose
        // vulnerabilities the current TCB no longer shows.
        if !self.allow_provisional_firmware {
            if r.committed_tcb != r.current_tcb {
                return Err(PolicyError::ProvisionalFirmware {
                    what: "TCB",
                    committed: r.committed_tcb.to_string(),
                    current: r.current_tcb.to_string(),
                });
            }
            if r.committed_version != r.current_version {
                return Err(PolicyError::ProvisionalFirmware {
                    what: "firmware version",
                    committed: r.committed_version.to_string(),
                    current: r.current_version.to_string(),
                });
            }
        }
        if let Some(&min) = self.min_build.get(&r.product) {
            for (which, v) in [
                ("current", r.current_version),
                ("committed", r.committed_version),
            ] {
                if v.build < min {
                    return Err(PolicyError::BuildTooOld {
                        which,
                        product: r.product,
                        build: v.build,
                        min,
                    });
                }
            }
        }
        Ok(())
    }

    /// What the guest's own policy requires.
    fn check_guest_policy(&self, r: &VerifiedReport) -> Result<(), PolicyError> {
        let p = r.policy;
        let required = Abi {
            major: p.abi_major(),
            minor: p.abi_minor(),
        };
        if required < self.min_guest_policy_abi {
            return Err(PolicyError::GuestPolicyAbiTooOld {
                major: required.major,
                minor: required.minor,
                min_major: self.min_guest_policy_abi.major,
                min_minor: self.min_guest_policy_abi.minor,
            });
        }
        let current = Abi {
            major: r.current_version.major,
            minor: r.current_version.minor,
        };
        if required > current {
            return Err(PolicyError::GuestPolicyAbiAboveFirmware {
                required: format!("{}.{}", required.major, required.minor),
                current: r.current_version.to_string(),
            });
        }
        if p.cxl_allowed() && !self.allow_cxl {
            return Err(PolicyError::CxlAllowed);
        }
        for (required, set, name) in [
            (
                self.require_mem_aes_256_xts,
                p.mem_aes_256_xts(),
                "MEM_AES_256_XTS",
            ),
            (
                self.require_page_swap_disable,
                p.page_swap_disabled(),
                "PAGE_SWAP_DISABLE",
            ),
            (self.require_rapl_disabled, p.rapl_disabled(), "RAPL_DIS"),
            (
                self.require_ciphertext_hiding,
                p.ciphertext_hiding_required(),
                "CIPHERTEXT_HIDING_DRAM",
            ),
        ] {
            if required && !set {
                return Err(PolicyError::GuestPolicyBitMissing(name));
            }
        }
        Ok(())
    }

    /// What the platform reports of itself.
    fn check_platform(&self, r: &VerifiedReport) -> Result<(), PolicyError> {
        let info = r.plat_info;
        for (required, set, name) in [
            (self.require_tsme, info.tsme_enabled(), "TSME_EN"),
            (self.require_ecc, info.ecc_enabled(), "ECC_EN"),
            (
                self.require_alias_check_complete,
                info.alias_check_complete(),
                "ALIAS_CHECK_COMPLETE",
            ),
        ] {
            if required && !set {
                return Err(PolicyError::PlatformFeatureMissing(name));
            }
        }
        if info.tio_enabled() && !self.allow_tio {
            return Err(PolicyError::TioEnabled);
        }
        let (launch, current) = r.mit_vectors.unwrap_or((0, 0));
        for (which, found, required) in [
            ("launch", launch, self.required_launch_mit_vector),
            ("current", current, self.required_current_mit_vector),
        ] {
            let missing = required & !found;
            if missing != 0 {
                return Err(PolicyError::MitigationMissing {
                    which,
                    found,
                    missing,
                });
            }
        }
        Ok(())
    }

    /// Who signed the image and which image, family and migration agent it is.
    fn check_identity(&self, r: &VerifiedReport) -> Result<(), PolicyError> {
        if !self.trusted_id_key_digests.is_empty()
            && !self
                .trusted_id_key_digests
                .iter()
                .any(|d| d.0 == r.id_key_digest)
        {
            return Err(PolicyError::IdKeyNotTrusted(hex::encode(r.id_key_digest)));
        }
        let author_key_trusted = r.author_key_enabled
            && self
                .trusted_author_key_digests
                .iter()
                .any(|d| d.0 == r.author_key_digest);
        if !self.trusted_author_key_digests.is_empty() && !author_key_trusted {
            return Err(PolicyError::AuthorKeyNotTrusted(if r.author_key_enabled {
                hex::encode(r.author_key_digest)
            } else {
                "(none: KEY_INFO.AUTHOR_KEY_EN is clear)".into()
            }));
        }
        let mismatch = |field, found: &[u8], expected: &[u8]| {
            (found != expected).then(|| PolicyError::IdentityMismatch {
                field,
                found: hex::encode(found),
                expected: hex::encode(expected),
            })
        };
        if let Some(e) = self
            .family_id
            .and_then(|x| mismatch("family_id", &r.family_id, &x.0))
            .or_else(|| {
                self.image_id
                    .and_then(|x| mismatch("image_id", &r.image_id, &x.0))
            })
            .or_else(|| {
                self.report_id_ma
                    .and_then(|x| mismatch("report_id_ma", &r.report_id_ma, &x.0))
            })
        {
            return Err(e);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_overrides_and_keeps_secure_defaults() {
        let policy = Policy::from_toml(
            r#"
            allow_smt = false
            min_abi = { major = 1, minor = 55 }
            [min_tcb.milan]
            bootloader = 4
            snp = 22
            microcode = 213
            "#,
        )
        .unwrap();
        assert!(!policy.allow_smt);
        assert!(!policy.allow_debug);
        assert_eq!(policy.max_vmpl, 0);
        assert_eq!(
            policy.min_abi,
            Abi {
                major: 1,
                minor: 55
            }
        );
        assert_eq!(policy.min_tcb[&Product::Milan].snp, 22);
        assert_eq!(policy.min_tcb[&Product::Milan].tee, 0);
    }

    #[test]
    fn toml_errors_are_refused() {
        assert!(Policy::from_toml("allow_debugg = true").is_err());
        assert!(Policy::from_toml("min_report_version = 5\nmax_report_version = 3").is_err());
        assert!(Policy::from_toml("[min_tcb.genoa]\nfmc = 1").is_err());
        assert!(Policy::from_toml("[min_tcb.naples]\nsnp = 1").is_err());
    }
}
