//! The simulator's stand-in for AMD: a test ARK and ASK (RSA-4096) that certify simulated VCEKs.
//!
//! TEST FIXTURES ONLY. The private keys in `fixtures/` are public; anything signed by them
//! proves nothing. A verifier accepts them only when its caller adds this root to its
//! `TrustRoots` explicitly; a node does so only in a build with the `simulator` feature, on the
//! simulator platform, with `trust.simulator_root = true`, and says so loudly at start-up.

use crate::cert_builder::{sign_certificate, sign_crl, CertSpec};
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
use rsa::RsaPrivateKey;
use snpkms_verifier::Product;
use spki::SubjectPublicKeyInfoOwned;
use std::collections::BTreeMap;
use std::str::FromStr;
use x509_cert::name::Name;

/// The simulator ARK's RSA-4096 private key (PKCS#8 PEM). Public test fixture: it proves
/// nothing.
pub const ARK_KEY_PEM: &str = include_str!("../fixtures/ark.key.pem");
/// The simulator ASK's RSA-4096 private key (PKCS#8 PEM), one key for every product's ASK.
/// Public test fixture: it proves nothing.
pub const ASK_KEY_PEM: &str = include_str!("../fixtures/ask.key.pem");
/// The simulator's root certificate: what `--trust-simulator-root` style settings point at.
pub const ARK_PEM: &str = include_str!("../fixtures/ark.pem");
const ASK_PEMS: [(Product, &str); 3] = [
    (Product::Milan, include_str!("../fixtures/ask-milan.pem")),
    (Product::Genoa, include_str!("../fixtures/ask-genoa.pem")),
    (Product::Turin, include_str!("../fixtures/ask-turin.pem")),
];

/// Start of the validity of the simulator's certificates (unix seconds): 2024-01-01 00:00:00
/// UTC; they are valid until [`NOT_AFTER`].
pub const NOT_BEFORE: u64 = 1_704_067_200;
/// End of the validity of the simulator's certificates (unix seconds): 2049-12-31 23:59:59 UTC,
/// the last instant X.509 UTCTime can express.
pub const NOT_AFTER: u64 = 2_524_607_999;

/// The subject names an authority uses. The simulator's own are clearly marked; tests build
/// look-alikes of AMD's names to show that names alone earn no trust.
#[derive(Debug, Clone)]
pub struct AuthorityNames {
    /// RFC 4514 subject (and issuer) name of the ARK.
    pub ark: String,
    /// `{product}` is replaced by Milan, Genoa or Turin; the verifier reads the product from it.
    pub ask: String,
    /// Subject name of every VCEK.
    pub vcek: String,
}

impl AuthorityNames {
    /// The simulator's own names, marked `TEST ONLY not AMD`.
    pub fn simulator() -> AuthorityNames {
        AuthorityNames {
            ark: "CN=ARK-Simulator,OU=TEST ONLY not AMD,O=snpkms simulator".into(),
            ask: "CN=SEV-{product},OU=TEST ONLY not AMD,O=snpkms simulator".into(),
            vcek: "CN=SEV-VCEK,OU=TEST ONLY not AMD,O=snpkms simulator".into(),
        }
    }

    /// AMD's exact subject names, for forgery tests.
    pub fn amd_lookalike(product: Product) -> AuthorityNames {
        let base = "OU=Engineering,C=US,L=Santa Clara,ST=CA,O=Advanced Micro Devices";
        AuthorityNames {
            ark: format!("CN=ARK-{product},{base}"),
            ask: format!("CN=SEV-{{product}},{base}"),
            vcek: format!("CN=SEV-VCEK,{base}"),
        }
    }

    fn name(pattern: &str, product: Option<Product>) -> Name {
        let s = match product {
            Some(p) => pattern.replace("{product}", p.amd_name()),
            None => pattern.to_string(),
        };
        Name::from_str(&s).expect("authority names are valid RFC 4514 strings")
    }
}

/// The signing side of the simulated AMD PKI.
pub struct SimAuthority {
    names: AuthorityNames,
    ark_key: RsaPrivateKey,
    ask_key: RsaPrivateKey,
    ark_der: Vec<u8>,
    ask_der: BTreeMap<Product, Vec<u8>>,
}

fn pem_to_der(pem: &str) -> Vec<u8> {
    use der::DecodePem;
    let cert = x509_cert::Certificate::from_pem(pem).expect("fixture certificate parses");
    der::Encode::to_der(&cert).expect("fixture certificate encodes")
}

fn spki_of(key: &RsaPrivateKey) -> SubjectPublicKeyInfoOwned {
    let der = key
        .to_public_key()
        .to_public_key_der()
        .expect("RSA public key encodes");
    der::Decode::from_der(der.as_bytes()).expect("SPKI decodes")
}

impl SimAuthority {
    /// The simulator's authority from the committed fixtures.
    pub fn load() -> SimAuthority {
        SimAuthority {
            names: AuthorityNames::simulator(),
            ark_key: RsaPrivateKey::from_pkcs8_pem(ARK_KEY_PEM).expect("ARK fixture key"),
            ask_key: RsaPrivateKey::from_pkcs8_pem(ASK_KEY_PEM).expect("ASK fixture key"),
            ark_der: pem_to_der(ARK_PEM),
            ask_der: ASK_PEMS
                .iter()
                .map(|(p, pem)| (*p, pem_to_der(pem)))
                .collect(),
        }
    }

    /// A fresh authority with the fixture keys and other names: builds and signs new ARK and
    /// ASK certificates (used to write the fixtures and to forge AMD look-alike chains).
    pub fn with_names(names: AuthorityNames) -> SimAuthority {
        let ark_key = RsaPrivateKey::from_pkcs8_pem(ARK_KEY_PEM).expect("ARK fixture key");
        let ask_key = RsaPrivateKey::from_pkcs8_pem(ASK_KEY_PEM).expect("ASK fixture key");
        Self::from_keys(names, ark_key, ask_key)
    }

    /// An authority with its own keys: a forger's PKI, for tests that no trust root covers.
    pub fn from_keys(
        names: AuthorityNames,
        ark_key: RsaPrivateKey,
        ask_key: RsaPrivateKey,
    ) -> SimAuthority {
        let ark_name = AuthorityNames::name(&names.ark, None);
        let ark_der = sign_certificate(
            CertSpec {
                serial: &[0x01],
                issuer: &ark_name,
                subject: &ark_name,
                not_before: NOT_BEFORE,
                not_after: NOT_AFTER,
                extensions: vec![],
            },
            spki_of(&ark_key),
            &ark_key,
        );
        let ask_der = Product::ALL
            .iter()
            .map(|&p| {
                let der = sign_certificate(
                    CertSpec {
                        serial: &[0x10 + p.chain_id()],
                        issuer: &ark_name,
                        subject: &AuthorityNames::name(&names.ask, Some(p)),
                        not_before: NOT_BEFORE,
                        not_after: NOT_AFTER,
                        extensions: vec![],
                    },
                    spki_of(&ask_key),
                    &ark_key,
                );
                (p, der)
            })
            .collect();
        SimAuthority {
            names,
            ark_key,
            ask_key,
            ark_der,
            ask_der,
        }
    }

    /// The ARK certificate (DER).
    pub fn ark_der(&self) -> &[u8] {
        &self.ark_der
    }

    /// The ASK certificate (DER) for `product`.
    pub fn ask_der(&self, product: Product) -> &[u8] {
        &self.ask_der[&product]
    }

    /// The ASK's subject name for `product`: the issuer of that product's VCEKs.
    pub fn ask_name(&self, product: Product) -> Name {
        AuthorityNames::name(&self.names.ask, Some(product))
    }

    /// The subject name VCEKs are issued under.
    pub fn vcek_name(&self) -> Name {
        AuthorityNames::name(&self.names.vcek, None)
    }

    pub(crate) fn ask_key(&self) -> &RsaPrivateKey {
        &self.ask_key
    }

    /// A CRL signed by this authority's ARK revoking `serials`.
    pub fn crl(&self, this_update: u64, next_update: u64, serials: &[&[u8]]) -> Vec<u8> {
        sign_crl(
            &AuthorityNames::name(&self.names.ark, None),
            &self.ark_key,
            this_update,
            next_update,
            serials,
        )
    }

    /// Serial number of the ASK certificate for `product` (for revocation tests).
    pub fn ask_serial(&self, product: Product) -> Vec<u8> {
        vec![0x10 + product.chain_id()]
    }
}
