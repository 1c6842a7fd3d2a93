//! The simulator's stand-in for AMD: a test ARK and ASK (RSA-4096) per product that certify
//! simulated VCEKs, with AMD's certificate profile (names, extensions, criticality, serials)
//! so that every check of the verifier's X.509 profile runs on simulated evidence as on real.
//!
//! TEST FIXTURES ONLY. The private keys in `fixtures/` are public; anything signed by them
//! proves nothing. A verifier accepts them only when its caller adds this root to its
//! `TrustRoots` explicitly; a node does so only in a build with the `simulator` feature, on the
//! simulator platform, with `trust.simulator_root = true`, and says so loudly at start-up.

use crate::cert_builder::{
    authority_key_id, basic_constraints, crl_distribution_point, key_usage, sign_certificate,
    sign_crl, subject_key_id, CertSpec, ProfileDeviation,
};
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
use rsa::RsaPrivateKey;
use snpkms_verifier::Product;
use spki::SubjectPublicKeyInfoOwned;
use std::collections::BTreeMap;
use x509_cert::name::Name;

/// The simulator ARK's RSA-4096 private key (PKCS#8 PEM). Public test fixture: it proves
/// nothing.
pub const ARK_KEY_PEM: &str = include_str!("../fixtures/ark.key.pem");
/// The simulator ASK's RSA-4096 private key (PKCS#8 PEM), one key for every product's ASK.
/// Public test fixture: it proves nothing.
pub const ASK_KEY_PEM: &str = include_str!("../fixtures/ask.key.pem");
/// The simulator's root certificate per product (`ARK-<product>`, one key for all): what
/// [`trust_simulator_root`](crate::trust_simulator_root) adds.
pub const ARK_PEMS: [(Product, &str); 3] = [
    (Product::Milan, include_str!("../fixtures/ark-milan.pem")),
    (Product::Genoa, include_str!("../fixtures/ark-genoa.pem")),
    (Product::Turin, include_str!("../fixtures/ark-turin.pem")),
];

pub(crate) const ASK_PEMS: [(Product, &str); 3] = [
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

/// The name attributes an authority writes besides the common name, which AMD's profile fixes
/// (`ARK-<product>`, `SEV-<product>`, `SEV-VCEK`). AMD's names carry OU, C, L, ST, O and CN in
/// that order, C as a PrintableString and the rest as UTF8Strings; every authority here does
/// the same, with its own values.
#[derive(Debug, Clone)]
pub struct AuthorityNames {
    /// organizationalUnitName.
    pub unit: String,
    /// countryName (two letters).
    pub country: String,
    /// localityName.
    pub locality: String,
    /// stateOrProvinceName.
    pub state: String,
    /// organizationName.
    pub organization: String,
}

impl AuthorityNames {
    /// The simulator's own names, marked `TEST ONLY not AMD`.
    pub fn simulator() -> AuthorityNames {
        AuthorityNames {
            unit: "TEST ONLY not AMD".into(),
            country: "XX".into(),
            locality: "Simulation".into(),
            state: "Simulation".into(),
            organization: "snpkms simulator".into(),
        }
    }

    /// AMD's exact names, for forgery tests: names alone earn no trust.
    pub fn amd_lookalike() -> AuthorityNames {
        AuthorityNames {
            unit: "Engineering".into(),
            country: "US".into(),
            locality: "Santa Clara".into(),
            state: "CA".into(),
            organization: "Advanced Micro Devices".into(),
        }
    }

    /// The name with common name `cn`.
    pub fn name(&self, cn: &str) -> Name {
        use const_oid::db::rfc4519::{COMMON_NAME, COUNTRY_NAME, L, O, OU, ST};
        use der::asn1::{PrintableStringRef, SetOfVec, Utf8StringRef};
        use x509_cert::attr::AttributeTypeAndValue;
        use x509_cert::name::RelativeDistinguishedName;
        let utf8 = |v: &str| der::Any::encode_from(&Utf8StringRef::new(v).expect("UTF-8"));
        let printable =
            |v: &str| der::Any::encode_from(&PrintableStringRef::new(v).expect("printable"));
        let attributes = [
            (OU, utf8(&self.unit)),
            (COUNTRY_NAME, printable(&self.country)),
            (L, utf8(&self.locality)),
            (ST, utf8(&self.state)),
            (O, utf8(&self.organization)),
            (COMMON_NAME, utf8(cn)),
        ];
        let rdns = attributes
            .into_iter()
            .map(|(oid, value)| {
                let atv = AttributeTypeAndValue {
                    oid,
                    value: value.expect("name attribute encodes"),
                };
                RelativeDistinguishedName(SetOfVec::try_from(vec![atv]).expect("one attribute"))
            })
            .collect();
        x509_cert::name::RdnSequence(rdns)
    }
}

/// The signing side of the simulated AMD PKI.
pub struct SimAuthority {
    names: AuthorityNames,
    ark_key: RsaPrivateKey,
    ask_key: RsaPrivateKey,
    ark_der: BTreeMap<Product, Vec<u8>>,
    ask_der: BTreeMap<Product, Vec<u8>>,
    /// The ASVK (`SEV-VLEK-<product>`) per product: it issues VLEKs with the ASK's key (a
    /// test fixture needs no second key), under its own name and serial.
    asvk_der: BTreeMap<Product, Vec<u8>>,
}

/// AMD numbers each product's ARK `<n>0000` and its ASK just above it (Milan 0x10000 and
/// 0x10001, Genoa 0x20000 and 0x20002, Turin 0x30000 and 0x30001); so does the simulator.
fn ark_serial(product: Product) -> Vec<u8> {
    vec![product.chain_id() + 1, 0, 0]
}

fn ask_serial(product: Product) -> Vec<u8> {
    vec![product.chain_id() + 1, 0, 1]
}

fn asvk_serial(product: Product) -> Vec<u8> {
    vec![product.chain_id() + 1, 0, 0x10]
}

/// `product`'s ASVK: AMD's ASVKs have the ASK's profile under the name `SEV-VLEK-<product>`.
fn issue_asvk(
    names: &AuthorityNames,
    product: Product,
    ark_key: &RsaPrivateKey,
    asvk_key: &RsaPrivateKey,
) -> Vec<u8> {
    let ark_spki = spki_of(ark_key);
    let asvk_spki = spki_of(asvk_key);
    sign_certificate(
        CertSpec {
            serial: &asvk_serial(product),
            issuer: &names.name(&format!("ARK-{product}")),
            subject: &names.name(&format!("SEV-VLEK-{product}")),
            not_before: NOT_BEFORE,
            not_after: NOT_AFTER,
            version: x509_cert::Version::V3,
            explicit_pss_trailer: true,
            extensions: vec![
                subject_key_id(&asvk_spki),
                authority_key_id(&ark_spki),
                basic_constraints(Some(0)),
                key_usage(false),
                crl_distribution_point(&format!(
                    "https://kds.simulator.invalid/vlek/v1/{product}/crl"
                )),
            ],
        },
        asvk_spki,
        ark_key,
    )
}

/// `product`'s ASK, signed by the ARK key: AMD's SKI, AKI, basicConstraints CA pathlen 0
/// (critical), keyUsage keyCertSign (critical) and CRL DP, departing from it as `deviation`
/// says.
fn issue_ask(
    names: &AuthorityNames,
    product: Product,
    ark_key: &RsaPrivateKey,
    ask_key: &RsaPrivateKey,
    deviation: &ProfileDeviation,
) -> Vec<u8> {
    let ark_spki = spki_of(ark_key);
    let ask_spki = spki_of(ask_key);
    let subject = deviation
        .subject_cn
        .clone()
        .unwrap_or_else(|| format!("SEV-{product}"));
    sign_certificate(
        CertSpec {
            serial: &ask_serial(product),
            issuer: &names.name(&format!("ARK-{product}")),
            subject: &names.name(&subject),
            not_before: NOT_BEFORE,
            not_after: NOT_AFTER,
            version: deviation.version(),
            explicit_pss_trailer: true,
            extensions: deviation.apply(vec![
                subject_key_id(&ask_spki),
                authority_key_id(&ark_spki),
                basic_constraints(Some(0)),
                key_usage(false),
                crl_distribution_point(&crl_url(product)),
            ]),
        },
        ask_spki,
        ark_key,
    )
}

/// The CRL distribution point AMD's ARK and ASK certificates name, at the simulator's (never
/// reachable) host.
fn crl_url(product: Product) -> String {
    format!("https://kds.simulator.invalid/vcek/v1/{product}/crl")
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
        let names = AuthorityNames::simulator();
        let ark_key = RsaPrivateKey::from_pkcs8_pem(ARK_KEY_PEM).expect("ARK fixture key");
        let ask_key = RsaPrivateKey::from_pkcs8_pem(ASK_KEY_PEM).expect("ASK fixture key");
        let asvk_der = Product::ALL
            .into_iter()
            .map(|p| (p, issue_asvk(&names, p, &ark_key, &ask_key)))
            .collect();
        SimAuthority {
            names,
            ark_key,
            ask_key,
            ark_der: ARK_PEMS
                .iter()
                .map(|(p, pem)| (*p, pem_to_der(pem)))
                .collect(),
            ask_der: ASK_PEMS
                .iter()
                .map(|(p, pem)| (*p, pem_to_der(pem)))
                .collect(),
            asvk_der,
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
        let ark_spki = spki_of(&ark_key);
        let mut ark_der = BTreeMap::new();
        let mut ask_der = BTreeMap::new();
        let mut asvk_der = BTreeMap::new();
        for p in Product::ALL {
            let ark_name = names.name(&format!("ARK-{p}"));
            // AMD's ARK: keyUsage (critical), SKI, basicConstraints CA (critical), CRL DP.
            let ark = sign_certificate(
                CertSpec {
                    serial: &ark_serial(p),
                    issuer: &ark_name,
                    subject: &ark_name,
                    not_before: NOT_BEFORE,
                    not_after: NOT_AFTER,
                    version: x509_cert::Version::V3,
                    explicit_pss_trailer: true,
                    extensions: vec![
                        key_usage(true),
                        subject_key_id(&ark_spki),
                        basic_constraints(None),
                        crl_distribution_point(&crl_url(p)),
                    ],
                },
                ark_spki.clone(),
                &ark_key,
            );
            // AMD's ASK: SKI, AKI, basicConstraints CA pathlen 0 (critical), keyUsage
            // (critical), CRL DP.
            let ask = issue_ask(&names, p, &ark_key, &ask_key, &ProfileDeviation::default());
            ark_der.insert(p, ark);
            ask_der.insert(p, ask);
            asvk_der.insert(p, issue_asvk(&names, p, &ark_key, &ask_key));
        }
        SimAuthority {
            names,
            ark_key,
            ask_key,
            ark_der,
            ask_der,
            asvk_der,
        }
    }

    /// The same authority with `product`'s ASK re-issued to depart from AMD's profile as
    /// `deviation` says (its VCEKs then chain to that ASK).
    pub fn with_ask_deviation(
        mut self,
        product: Product,
        deviation: &ProfileDeviation,
    ) -> SimAuthority {
        let ask = issue_ask(
            &self.names,
            product,
            &self.ark_key,
            &self.ask_key,
            deviation,
        );
        self.ask_der.insert(product, ask);
        self
    }

    /// The ARK certificate (DER) for `product`.
    pub fn ark_der(&self, product: Product) -> &[u8] {
        &self.ark_der[&product]
    }

    /// The ASK certificate (DER) for `product`.
    pub fn ask_der(&self, product: Product) -> &[u8] {
        &self.ask_der[&product]
    }

    /// The ASVK certificate (DER) for `product`: the issuer of its VLEKs.
    pub fn asvk_der(&self, product: Product) -> &[u8] {
        &self.asvk_der[&product]
    }

    /// The ASVK's subject name for `product`: the issuer of that product's VLEKs.
    pub fn asvk_name(&self, product: Product) -> Name {
        self.names.name(&format!("SEV-VLEK-{product}"))
    }

    /// The subject name VLEKs are issued under.
    pub fn vlek_name(&self) -> Name {
        self.names.name("SEV-VLEK")
    }

    /// The ASK's subject name for `product`: the issuer of that product's VCEKs.
    pub fn ask_name(&self, product: Product) -> Name {
        self.names.name(&format!("SEV-{product}"))
    }

    /// The subject name VCEKs are issued under.
    pub fn vcek_name(&self) -> Name {
        self.names.name("SEV-VCEK")
    }

    /// The name attributes of this authority.
    pub fn names(&self) -> &AuthorityNames {
        &self.names
    }

    pub(crate) fn ask_key(&self) -> &RsaPrivateKey {
        &self.ask_key
    }

    /// A CRL signed by this authority's ARK (named as `product`'s) revoking `serials`; without
    /// nextUpdate when `next_update` is `None`, which AMD's never are.
    pub fn crl(
        &self,
        product: Product,
        this_update: u64,
        next_update: Option<u64>,
        serials: &[&[u8]],
    ) -> Vec<u8> {
        sign_crl(
            &self.names.name(&format!("ARK-{product}")),
            &self.ark_key,
            this_update,
            next_update,
            serials,
        )
    }

    /// Serial number of the ASVK certificate for `product` (for revocation tests).
    pub fn asvk_serial(&self, product: Product) -> Vec<u8> {
        asvk_serial(product)
    }

    /// Serial number of the ASK certificate for `product` (for revocation tests).
    pub fn ask_serial(&self, product: Product) -> Vec<u8> {
        ask_serial(product)
    }
}
