//! The documents KDS serves, by their URL path (AMD's "VCEK Certificate and KDS Interface
//! Specification") and by the file they are kept in on disk.

use snpkms_verifier::{Endorser, Product, VcekId};
use std::path::PathBuf;

/// One document KDS serves: where it is below a base URL, where it is kept below a store
/// directory, and what to call it in messages.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Document {
    /// Path and query below the base URL, without a leading slash.
    pub url_path: String,
    /// File below the store directory.
    pub store_path: PathBuf,
    /// What it is, for messages: `the VCEK for Milan chip 0a1b… at TCB ...`.
    pub what: String,
}

impl Document {
    /// `vcek/v1/{product}/{hwid}?blSPL=..&teeSPL=..&snpSPL=..&ucodeSPL=..` (and `fmcSPL` on
    /// Turin, whose hwID is 8 bytes), kept as `vcek/{product}/{hwid}/{tcb}.der` (the TCB as
    /// the 16 hex digits of its TCB_VERSION encoding).
    pub fn vcek(id: &VcekId) -> Document {
        let t = id.tcb;
        let mut query = format!(
            "blSPL={}&teeSPL={}&snpSPL={}&ucodeSPL={}",
            t.bootloader, t.tee, t.snp, t.microcode
        );
        if id.product.has_turin_tcb_layout() {
            query.push_str(&format!("&fmcSPL={}", t.fmc));
        }
        let product = id.product.amd_name();
        let hwid = id.hwid_hex();
        Document {
            url_path: format!("vcek/v1/{product}/{hwid}?{query}"),
            store_path: PathBuf::from(format!(
                "vcek/{product}/{hwid}/{}.der",
                hex::encode(t.encode(id.product))
            )),
            what: format!("the VCEK for {}", id.short()),
        }
    }

    /// `vcek/v1/{product}/cert_chain` (ASK then ARK, PEM) or `vlek/v1/{product}/cert_chain`
    /// (ASVK then ARK), kept as `{vcek|vlek}/{product}/cert_chain.pem`.
    pub fn cert_chain(product: Product, endorser: Endorser) -> Document {
        let kind = kind(endorser);
        let product = product.amd_name();
        Document {
            url_path: format!("{kind}/v1/{product}/cert_chain"),
            store_path: PathBuf::from(format!("{kind}/{product}/cert_chain.pem")),
            what: format!("the {product} {}/ARK chain", endorser.issuer_name()),
        }
    }

    /// `vcek/v1/{product}/crl` (the ASKs the ARK revoked) or `vlek/v1/{product}/crl` (the
    /// ASVKs), DER, signed by the ARK, kept as `{vcek|vlek}/{product}/crl.der`.
    pub fn crl(product: Product, endorser: Endorser) -> Document {
        let kind = kind(endorser);
        let product = product.amd_name();
        Document {
            url_path: format!("{kind}/v1/{product}/crl"),
            store_path: PathBuf::from(format!("{kind}/{product}/crl.der")),
            what: format!("the {product} {} CRL", endorser.name()),
        }
    }
}

/// KDS's path segment for the chains and CRLs of each kind of key.
fn kind(endorser: Endorser) -> &'static str {
    match endorser {
        Endorser::Vcek => "vcek",
        Endorser::Vlek => "vlek",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use snpkms_verifier::TcbVersion;

    #[test]
    fn urls_follow_the_kds_layout() {
        let tcb = TcbVersion {
            bootloader: 3,
            tee: 0,
            snp: 8,
            microcode: 115,
            fmc: 0,
        };
        let milan = VcekId {
            product: Product::Milan,
            hwid: vec![0xab; 64],
            tcb,
        };
        let doc = Document::vcek(&milan);
        assert_eq!(
            doc.url_path,
            format!(
                "vcek/v1/Milan/{}?blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=115",
                "ab".repeat(64)
            )
        );
        assert_eq!(
            doc.store_path,
            PathBuf::from(format!(
                "vcek/Milan/{}/0300000000000873.der",
                "ab".repeat(64)
            ))
        );
        let turin = VcekId {
            product: Product::Turin,
            hwid: vec![0x01; 8],
            tcb: TcbVersion { fmc: 1, ..tcb },
        };
        assert_eq!(
            Document::vcek(&turin).url_path,
            "vcek/v1/Turin/0101010101010101?blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=115&fmcSPL=1"
        );
        assert_eq!(
            Document::cert_chain(Product::Genoa, Endorser::Vlek).url_path,
            "vlek/v1/Genoa/cert_chain"
        );
        assert_eq!(
            Document::crl(Product::Turin, Endorser::Vcek).url_path,
            "vcek/v1/Turin/crl"
        );
        assert_eq!(
            Document::crl(Product::Milan, Endorser::Vlek).url_path,
            "vlek/v1/Milan/crl"
        );
    }
}
