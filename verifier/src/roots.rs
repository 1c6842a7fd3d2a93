//! Trust anchors: the AMD root keys (ARKs) compiled into the binary, and any extra root an
//! operator configures explicitly (the simulator's, for development).

use crate::error::{CertChainError, CertError};
use crate::product::Product;
use crate::x509::ParsedCert;
use rsa::RsaPublicKey;

/// AMD's ASK and ARK for each product, byte-identical to what AMD's KDS serves
/// (`https://kdsintf.amd.com/vcek/v1/{product}/cert_chain`).
const AMD_CHAINS: [(Product, &str); 3] = [
    (Product::Milan, include_str!("../roots/milan-ask-ark.pem")),
    (Product::Genoa, include_str!("../roots/genoa-ask-ark.pem")),
    (Product::Turin, include_str!("../roots/turin-ask-ark.pem")),
];

/// AMD's ASVK (the issuer of VLEKs) and ARK for each product, byte-identical to what AMD's KDS
/// serves (`https://kdsintf.amd.com/vlek/v1/{product}/cert_chain`); the ARKs are the same
/// certificates as in [`AMD_CHAINS`].
const AMD_VLEK_CHAINS: [(Product, &str); 3] = [
    (Product::Milan, include_str!("../roots/milan-asvk-ark.pem")),
    (Product::Genoa, include_str!("../roots/genoa-asvk-ark.pem")),
    (Product::Turin, include_str!("../roots/turin-asvk-ark.pem")),
];

/// Where a trust anchor came from; shown to operators at start-up and in verification results.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RootOrigin {
    /// A genuine AMD root compiled into this binary.
    Amd,
    /// A root the operator added explicitly, with a label (e.g. "simulator").
    Extra(String),
}

impl std::fmt::Display for RootOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RootOrigin::Amd => f.write_str("AMD"),
            RootOrigin::Extra(label) => write!(f, "extra root ({label})"),
        }
    }
}

/// A trusted ARK for one product, with the ASK (and ASVK) to use when the evidence brings none.
#[derive(Debug, Clone)]
pub struct TrustAnchor {
    /// The product this ARK is the root of.
    pub product: Product,
    /// Where the ARK came from.
    pub origin: RootOrigin,
    pub(crate) ark: ParsedCert,
    pub(crate) ark_key: RsaPublicKey,
    pub(crate) default_ask: Option<ParsedCert>,
    pub(crate) default_asvk: Option<ParsedCert>,
}

impl TrustAnchor {
    /// Builds an anchor, checking the ARK's self-signature and that the default ASK (if any) is
    /// signed by it, so a typo in a root file is caught at start-up and not on the first guest.
    pub fn new(
        product: Product,
        origin: RootOrigin,
        ark_der: &[u8],
        ask_der: Option<&[u8]>,
    ) -> Result<TrustAnchor, RootError> {
        let ark = ParsedCert::parse(ark_der, "ARK")?;
        let ark_key = ark.rsa_public_key("ARK")?;
        ark.verify_signed_by(&ark_key, "ARK", CertChainError::ArkSelfSignature)?;
        // AMD's profile for a product's root, for AMD's roots and any extra one alike.
        ark.check_profile("ARK", &format!("ARK-{product}"))?;
        ark.check_ca("ARK")?;
        let default_ask = match ask_der {
            Some(der) => {
                let ask = ParsedCert::parse(der, "ASK")?;
                ask.verify_signed_by(
                    &ark_key,
                    "ASK",
                    CertChainError::AskNotSignedByArk { product },
                )?;
                Some(ask)
            }
            None => None,
        };
        Ok(TrustAnchor {
            product,
            origin,
            ark,
            ark_key,
            default_ask,
            default_asvk: None,
        })
    }

    /// The same anchor with the ASVK to use for VLEK chains whose evidence brings none,
    /// checked to be signed by this ARK.
    pub fn with_default_asvk(mut self, asvk_der: &[u8]) -> Result<TrustAnchor, RootError> {
        let asvk = ParsedCert::parse(asvk_der, "ASVK")?;
        asvk.verify_signed_by(
            &self.ark_key,
            "ASVK",
            CertChainError::AskNotSignedByArk {
                product: self.product,
            },
        )?;
        self.default_asvk = Some(asvk);
        Ok(self)
    }

    /// SHA-256 of the ARK's SubjectPublicKeyInfo: what operators compare when pinning a root.
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(self.ark.spki_der()))
    }

    /// The ARK's subject common name (`ARK-Milan`, ...), or empty if it has none.
    pub fn subject(&self) -> String {
        self.ark.common_name(true).unwrap_or_default()
    }
}

/// Why a trust root could not be loaded.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum RootError {
    /// A root or its ASK does not decode, or the ARK's key is not a usable RSA key.
    #[error(transparent)]
    Certificate(#[from] CertError),
    /// The ARK is not self-signed, the ASK is not signed by it, or a signature algorithm is not
    /// RSASSA-PSS/SHA-384.
    #[error(transparent)]
    CertChain(#[from] CertChainError),
    /// The root PEM is malformed or holds other than one or two certificates.
    #[error("root PEM must hold an ASK then an ARK (or a lone ARK): {0}")]
    Pem(String),
    /// The ARK's common name names no product (`ARK-Milan`, `ARK-Genoa`, `ARK-Turin`), so it
    /// cannot say which product it is the root of.
    #[error("the ARK's common name {common_name:?} names no product (expected ARK-<product>)")]
    UnknownProduct {
        /// The ARK subject's common name, if it has one.
        common_name: Option<String>,
    },
}

/// The set of ARKs a verifier accepts, per product.
#[derive(Debug, Clone)]
pub struct TrustRoots {
    anchors: Vec<TrustAnchor>,
}

impl TrustRoots {
    /// The genuine AMD roots for Milan, Genoa and Turin, and nothing else.
    pub fn amd() -> TrustRoots {
        let anchors = AMD_CHAINS
            .iter()
            .zip(AMD_VLEK_CHAINS)
            .map(|((product, pem), (_, vlek_pem))| {
                let asvk = crate::certs::decode_pem_chain(vlek_pem.as_bytes())
                    .ok()
                    .and_then(|certs| der::Encode::to_der(certs.first()?).ok())
                    .expect("compiled-in AMD ASVKs decode; a unit test checks it");
                anchor_from_pem(*product, RootOrigin::Amd, pem.as_bytes())
                    .and_then(|anchor| anchor.with_default_asvk(&asvk))
                    .expect("compiled-in AMD roots are valid; a unit test checks it")
            })
            .collect();
        TrustRoots { anchors }
    }

    /// No roots at all: every chain fails until roots are added.
    pub fn empty() -> TrustRoots {
        TrustRoots {
            anchors: Vec::new(),
        }
    }

    /// Adds an extra root for `products`, from a PEM holding an ASK then an ARK, or only an ARK.
    /// This is how a node is told to trust the simulator: there is no other way in.
    pub fn add_pem(
        &mut self,
        products: &[Product],
        label: &str,
        pem: &[u8],
    ) -> Result<(), RootError> {
        for &product in products {
            let anchor = anchor_from_pem(product, RootOrigin::Extra(label.to_string()), pem)?;
            self.anchors.push(anchor);
        }
        Ok(())
    }

    /// Adds an extra root from a PEM holding an ASK then an ARK, or only an ARK, for the product
    /// its ARK names (`ARK-<product>`, AMD's profile): a root is a root of one product only.
    /// Returns that product.
    pub fn add_pem_for_named_product(
        &mut self,
        label: &str,
        pem: &[u8],
    ) -> Result<Product, RootError> {
        let certs = crate::certs::decode_pem_chain(pem).map_err(RootError::Pem)?;
        let common_name = certs
            .last()
            .and_then(|ark| crate::x509::common_name(&ark.tbs_certificate.subject));
        let product = common_name
            .as_deref()
            .and_then(|cn| cn.strip_prefix("ARK-"))
            .and_then(|name| Product::ALL.into_iter().find(|p| p.amd_name() == name))
            .ok_or(RootError::UnknownProduct { common_name })?;
        self.add_pem(&[product], label, pem)?;
        Ok(product)
    }

    /// Adds an anchor built with [`TrustAnchor::new`].
    pub fn add(&mut self, anchor: TrustAnchor) {
        self.anchors.push(anchor);
    }

    /// Every anchor, in the order added.
    pub fn anchors(&self) -> &[TrustAnchor] {
        &self.anchors
    }

    /// The anchors for `product`; a chain may end at any of them.
    pub fn for_product(&self, product: Product) -> impl Iterator<Item = &TrustAnchor> {
        self.anchors.iter().filter(move |a| a.product == product)
    }

    /// True if any root did not come from AMD: nodes warn loudly about it at start-up.
    pub fn has_extra_roots(&self) -> bool {
        self.anchors
            .iter()
            .any(|a| !matches!(a.origin, RootOrigin::Amd))
    }
}

fn anchor_from_pem(
    product: Product,
    origin: RootOrigin,
    pem: &[u8],
) -> Result<TrustAnchor, RootError> {
    let certs = crate::certs::decode_pem_chain(pem).map_err(RootError::Pem)?;
    let ders: Vec<Vec<u8>> = certs
        .iter()
        .map(der::Encode::to_der)
        .collect::<Result<_, _>>()
        .map_err(|e| RootError::Pem(e.to_string()))?;
    match ders.as_slice() {
        [ark] => TrustAnchor::new(product, origin, ark, None),
        [ask, ark] => TrustAnchor::new(product, origin, ark, Some(ask)),
        other => Err(RootError::Pem(format!(
            "found {} certificates",
            other.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiled_in_amd_roots_load_and_are_self_signed() {
        let roots = TrustRoots::amd();
        assert_eq!(roots.anchors().len(), 3);
        for product in Product::ALL {
            let anchor = roots.for_product(product).next().unwrap();
            assert_eq!(anchor.subject(), format!("ARK-{product}"));
            assert_eq!(anchor.origin, RootOrigin::Amd);
            assert!(anchor.default_ask.is_some());
            assert_eq!(
                anchor
                    .default_asvk
                    .as_ref()
                    .and_then(|a| a.common_name(true)),
                Some(format!("SEV-VLEK-{product}"))
            );
        }
        // The ARK in each VLEK chain file is the pinned one.
        for ((product, _), (_, vlek_pem)) in AMD_CHAINS.iter().zip(AMD_VLEK_CHAINS) {
            let certs = crate::certs::decode_pem_chain(vlek_pem.as_bytes()).unwrap();
            let ark = ParsedCert::parse(&der::Encode::to_der(&certs[1]).unwrap(), "ARK").unwrap();
            let anchor = roots.for_product(*product).next().unwrap();
            assert_eq!(ark.spki_der(), anchor.ark.spki_der(), "{product}");
        }
        assert!(!roots.has_extra_roots());
    }

    #[test]
    fn an_extra_root_is_trusted_only_for_the_product_its_ark_names() {
        let mut roots = TrustRoots::empty();
        let genoa = AMD_CHAINS[1].1;
        assert_eq!(
            roots.add_pem_for_named_product("genoa", genoa.as_bytes()),
            Ok(Product::Genoa)
        );
        assert_eq!(roots.for_product(Product::Genoa).count(), 1);
        assert_eq!(roots.for_product(Product::Milan).count(), 0);
        assert_eq!(roots.for_product(Product::Turin).count(), 0);
        // An ASK offered as a root names no product as an ARK does.
        let ask = &genoa[..genoa.find("-----END CERTIFICATE-----").unwrap() + 26];
        assert_eq!(
            roots.add_pem_for_named_product("ask", ask.as_bytes()),
            Err(RootError::UnknownProduct {
                common_name: Some("SEV-Genoa".into())
            })
        );
    }

    #[test]
    fn a_root_file_with_an_ask_from_another_product_is_refused() {
        // Genoa's ASK under Milan's ARK: the ASK signature check must catch the mix-up.
        let milan = AMD_CHAINS[0].1;
        let genoa = AMD_CHAINS[1].1;
        let genoa_ask = &genoa[..genoa.find("-----END CERTIFICATE-----").unwrap() + 26];
        let milan_ark = &milan[milan.find("-----END CERTIFICATE-----").unwrap() + 26..];
        let mixed = format!("{genoa_ask}\n{}", milan_ark.trim_start());
        let err = anchor_from_pem(Product::Milan, RootOrigin::Amd, mixed.as_bytes()).unwrap_err();
        assert_eq!(
            err,
            RootError::CertChain(CertChainError::AskNotSignedByArk {
                product: Product::Milan
            })
        );
    }
}
