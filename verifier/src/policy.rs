//! The relying party's policy: what a verified report must also satisfy to be accepted.

use crate::error::{PolicyError, PolicyLoadError, ProductError};
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

    /// Refuses policies that could never be meant: a version window that is empty or below 2,
    /// an fmc minimum for a product without fmc. Every policy a verifier is built from, from a
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
