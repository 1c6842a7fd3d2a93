//! SEV-SNP product lines and how to recognise them.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// An AMD EPYC generation that supports SEV-SNP. Each has its own ARK, ASK and TCB layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Product {
    /// 3rd generation EPYC (Zen 3, family 19h).
    Milan,
    /// 4th generation EPYC (Zen 4, family 19h), including Bergamo and Siena.
    Genoa,
    /// 5th generation EPYC (Zen 5, family 1Ah); new TCB layout with an FMC component.
    Turin,
}

impl Product {
    /// Every product, in [`Product::chain_id`] order.
    pub const ALL: [Product; 3] = [Product::Milan, Product::Genoa, Product::Turin];

    /// The name AMD uses in certificate subjects (`ARK-Milan`, `SEV-Milan`) and in the KDS URL.
    pub fn amd_name(self) -> &'static str {
        match self {
            Product::Milan => "Milan",
            Product::Genoa => "Genoa",
            Product::Turin => "Turin",
        }
    }

    /// The number the on-chain registry uses for this product.
    pub fn chain_id(self) -> u8 {
        match self {
            Product::Milan => 0,
            Product::Genoa => 1,
            Product::Turin => 2,
        }
    }

    /// The inverse of [`Product::chain_id`]; `None` for a number no product has.
    pub fn from_chain_id(id: u8) -> Option<Product> {
        Product::ALL.into_iter().find(|p| p.chain_id() == id)
    }

    /// Turin moved to a new TCB encoding with an FMC component and an 8-byte hwID.
    pub fn has_turin_tcb_layout(self) -> bool {
        self == Product::Turin
    }

    /// Recognises the product from the CPUID family/model that v3+ reports carry
    /// (the same ranges AMD's KDS and other verifiers use).
    pub fn from_cpuid(family: u8, model: u8) -> Option<Product> {
        match (family, model) {
            (0x19, 0x00..=0x0f) => Some(Product::Milan),
            (0x19, 0x10..=0x1f) | (0x19, 0xa0..=0xaf) => Some(Product::Genoa),
            (0x1a, 0x00..=0x11) => Some(Product::Turin),
            _ => None,
        }
    }

    /// Recognises the product from the common name of an ASK, `SEV-<product>` exactly (an
    /// ASVK's `SEV-VLEK-<product>` names none: it issues VLEKs, not VCEKs).
    pub fn from_ask_name(cn: &str) -> Option<Product> {
        let name = cn.strip_prefix("SEV-")?;
        Product::ALL.into_iter().find(|p| p.amd_name() == name)
    }

    /// Recognises the product from the common name of an ASVK, `SEV-VLEK-<product>` exactly.
    pub fn from_asvk_name(cn: &str) -> Option<Product> {
        let name = cn.strip_prefix("SEV-VLEK-")?;
        Product::ALL.into_iter().find(|p| p.amd_name() == name)
    }
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.amd_name())
    }
}

impl FromStr for Product {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Product::ALL
            .into_iter()
            .find(|p| p.amd_name().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown product {s:?} (expected milan, genoa or turin)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuid_ranges() {
        assert_eq!(Product::from_cpuid(0x19, 0x01), Some(Product::Milan));
        assert_eq!(Product::from_cpuid(0x19, 0x11), Some(Product::Genoa));
        assert_eq!(Product::from_cpuid(0x19, 0xa0), Some(Product::Genoa));
        assert_eq!(Product::from_cpuid(0x1a, 0x02), Some(Product::Turin));
        assert_eq!(Product::from_cpuid(0x17, 0x01), None);
        assert_eq!(Product::from_cpuid(0x1a, 0x12), None);
    }

    #[test]
    fn names_round_trip() {
        for p in Product::ALL {
            assert_eq!(p.amd_name().parse::<Product>().unwrap(), p);
            assert_eq!(Product::from_chain_id(p.chain_id()), Some(p));
            assert_eq!(Product::from_ask_name(&format!("SEV-{p}")), Some(p));
            assert_eq!(Product::from_ask_name(&format!("SEV-VLEK-{p}")), None);
            assert_eq!(Product::from_ask_name(&format!("ARK-{p}")), None);
        }
        assert!("Naples".parse::<Product>().is_err());
        assert_eq!(Product::from_ask_name("SEV-VCEK"), None);
    }
}
