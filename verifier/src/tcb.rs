//! TCB versions: the security patch levels of each firmware component, as the report encodes them.

use crate::product::Product;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Security patch levels of the components that make up a platform TCB.
/// `fmc` exists only on Turin and later; it is 0 elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcbVersion {
    #[serde(default)]
    /// SPL of the PSP bootloader.
    pub bootloader: u8,
    #[serde(default)]
    /// SPL of the PSP operating system (TEE).
    pub tee: u8,
    #[serde(default)]
    /// SPL of the SNP firmware.
    pub snp: u8,
    #[serde(default)]
    /// Lowest microcode patch level across all cores.
    pub microcode: u8,
    #[serde(default)]
    /// SPL of the FMC firmware (Turin and later; 0 on Milan and Genoa).
    pub fmc: u8,
}

/// The component of a TCB that failed a comparison, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcbComponent {
    /// The PSP bootloader ([`TcbVersion::bootloader`]).
    Bootloader,
    /// The PSP operating system ([`TcbVersion::tee`]).
    Tee,
    /// The SNP firmware ([`TcbVersion::snp`]).
    Snp,
    /// The CPU microcode ([`TcbVersion::microcode`]).
    Microcode,
    /// The FMC firmware, Turin only ([`TcbVersion::fmc`]).
    Fmc,
}

impl fmt::Display for TcbComponent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TcbComponent::Bootloader => "bootloader",
            TcbComponent::Tee => "tee",
            TcbComponent::Snp => "snp",
            TcbComponent::Microcode => "microcode",
            TcbComponent::Fmc => "fmc",
        })
    }
}

impl TcbVersion {
    /// Byte offsets of the components inside the 8-byte little-endian TCB_VERSION, and the bytes
    /// that must be zero. Milan/Genoa: BL, TEE, 4 reserved, SNP, UCODE.
    /// Turin: FMC, BL, TEE, SNP, 3 reserved, UCODE.
    fn layout(product: Product) -> (TcbLayout, &'static [usize]) {
        if product.has_turin_tcb_layout() {
            (
                TcbLayout {
                    fmc: Some(0),
                    bootloader: 1,
                    tee: 2,
                    snp: 3,
                    microcode: 7,
                },
                &[4, 5, 6],
            )
        } else {
            (
                TcbLayout {
                    fmc: None,
                    bootloader: 0,
                    tee: 1,
                    snp: 6,
                    microcode: 7,
                },
                &[2, 3, 4, 5],
            )
        }
    }

    /// Decodes a raw TCB_VERSION for `product`. Returns the index of a reserved byte that is not
    /// zero as the error: a set reserved byte means we would be ignoring part of the TCB.
    pub fn decode(raw: [u8; 8], product: Product) -> Result<TcbVersion, usize> {
        let (layout, reserved) = Self::layout(product);
        if let Some(&i) = reserved.iter().find(|&&i| raw[i] != 0) {
            return Err(i);
        }
        Ok(TcbVersion {
            bootloader: raw[layout.bootloader],
            tee: raw[layout.tee],
            snp: raw[layout.snp],
            microcode: raw[layout.microcode],
            fmc: layout.fmc.map_or(0, |i| raw[i]),
        })
    }

    /// The inverse of [`TcbVersion::decode`]; the simulator uses it to build reports.
    pub fn encode(&self, product: Product) -> [u8; 8] {
        let (layout, _) = Self::layout(product);
        let mut raw = [0u8; 8];
        raw[layout.bootloader] = self.bootloader;
        raw[layout.tee] = self.tee;
        raw[layout.snp] = self.snp;
        raw[layout.microcode] = self.microcode;
        if let Some(i) = layout.fmc {
            raw[i] = self.fmc;
        }
        raw
    }

    /// All five components with their SPLs, in a fixed order (bootloader, tee, snp,
    /// microcode, fmc), for componentwise comparisons.
    pub fn components(&self) -> [(TcbComponent, u8); 5] {
        [
            (TcbComponent::Bootloader, self.bootloader),
            (TcbComponent::Tee, self.tee),
            (TcbComponent::Snp, self.snp),
            (TcbComponent::Microcode, self.microcode),
            (TcbComponent::Fmc, self.fmc),
        ]
    }

    /// Componentwise comparison: a TCB meets a minimum only if *every* component does. A
    /// lexicographic order would let a newer bootloader hide an old, vulnerable microcode.
    /// Returns the first component below the minimum.
    pub fn first_below(&self, minimum: &TcbVersion) -> Option<(TcbComponent, u8, u8)> {
        self.components()
            .into_iter()
            .zip(minimum.components())
            .find(|((_, have), (_, need))| have < need)
            .map(|((c, have), (_, need))| (c, have, need))
    }
}

struct TcbLayout {
    fmc: Option<usize>,
    bootloader: usize,
    tee: usize,
    snp: usize,
    microcode: usize,
}

impl fmt::Display for TcbVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bl={} tee={} snp={} ucode={} fmc={}",
            self.bootloader, self.tee, self.snp, self.microcode, self.fmc
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milan_layout() {
        let raw = [0x04, 0x00, 0, 0, 0, 0, 0x18, 0xdb];
        let tcb = TcbVersion::decode(raw, Product::Milan).unwrap();
        assert_eq!(
            tcb,
            TcbVersion {
                bootloader: 4,
                tee: 0,
                snp: 0x18,
                microcode: 0xdb,
                fmc: 0
            }
        );
        assert_eq!(tcb.encode(Product::Milan), raw);
    }

    #[test]
    fn turin_layout() {
        let raw = [0x01, 0x01, 0x01, 0x04, 0, 0, 0, 0x51];
        let tcb = TcbVersion::decode(raw, Product::Turin).unwrap();
        assert_eq!(tcb.fmc, 1);
        assert_eq!(tcb.snp, 4);
        assert_eq!(tcb.microcode, 0x51);
        assert_eq!(tcb.encode(Product::Turin), raw);
    }

    #[test]
    fn reserved_bytes_rejected() {
        assert_eq!(
            TcbVersion::decode([4, 0, 0, 1, 0, 0, 0x18, 0xdb], Product::Genoa),
            Err(3)
        );
        assert_eq!(
            TcbVersion::decode([1, 1, 1, 4, 0, 0, 9, 0x51], Product::Turin),
            Err(6)
        );
    }

    #[test]
    fn comparison_is_componentwise() {
        let min = TcbVersion {
            bootloader: 3,
            tee: 0,
            snp: 8,
            microcode: 115,
            fmc: 0,
        };
        let mut newer_bl_old_ucode = min;
        newer_bl_old_ucode.bootloader = 9;
        newer_bl_old_ucode.microcode = 100;
        assert_eq!(
            newer_bl_old_ucode.first_below(&min),
            Some((TcbComponent::Microcode, 100, 115))
        );
        assert_eq!(min.first_below(&min), None);
    }
}
