//! Builds and signs X.509 certificates and CRLs the way AMD's KDS does: RSASSA-PSS with
//! SHA-384, MGF1-SHA-384 and a 48-byte salt.

use der::asn1::{BitString, GeneralizedTime, OctetString, UtcTime};
use der::{Any, Decode, Encode};
use rsa::pkcs1::RsaPssParams;
use rsa::pss::BlindedSigningKey;
use rsa::signature::{RandomizedSigner, SignatureEncoding};
use rsa::RsaPrivateKey;
use sha2::Sha384;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use std::time::Duration;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, TbsCertificate, Version};

/// RSASSA-PSS with SHA-384, MGF1-SHA-384 and a 48-byte salt. With `explicit_trailer`, the
/// parameters also spell out trailerField = 1, which DER would leave out as the default: AMD's
/// ARK and ASK certificates carry it, the VCEKs the KDS issues today do not.
pub fn rsa_pss_sha384(explicit_trailer: bool) -> AlgorithmIdentifierOwned {
    let params = RsaPssParams::new::<Sha384>(48);
    let mut der = params.to_der().expect("PSS parameters encode");
    if explicit_trailer {
        // [3] EXPLICIT INTEGER 1, appended to the SEQUENCE; its short length grows by 5.
        const TRAILER_FIELD_1: [u8; 5] = [0xa3, 0x03, 0x02, 0x01, 0x01];
        assert!(der[0] == 0x30 && usize::from(der[1]) == der.len() - 2 && der[1] < 0x7b);
        der[1] += TRAILER_FIELD_1.len() as u8;
        der.extend_from_slice(&TRAILER_FIELD_1);
    }
    AlgorithmIdentifierOwned {
        oid: const_oid::db::rfc5912::ID_RSASSA_PSS,
        parameters: Some(Any::from_der(&der).expect("PSS parameters decode")),
    }
}

pub fn time(unix: u64) -> Time {
    let d = Duration::from_secs(unix);
    // X.509 requires UTCTime up to 2049 and GeneralizedTime after.
    match UtcTime::from_unix_duration(d) {
        Ok(t) => Time::UtcTime(t),
        Err(_) => Time::GeneralTime(GeneralizedTime::from_unix_duration(d).expect("time in range")),
    }
}

pub fn extension(oid: &str, value: Vec<u8>) -> Extension {
    Extension {
        extn_id: const_oid::ObjectIdentifier::new_unwrap(oid),
        critical: false,
        extn_value: OctetString::new(value).expect("extension value fits"),
    }
}

fn critical(oid: const_oid::ObjectIdentifier, value: Vec<u8>) -> Extension {
    Extension {
        extn_id: oid,
        critical: true,
        extn_value: OctetString::new(value).expect("extension value fits"),
    }
}

/// keyUsage, critical, as AMD encodes it: keyCertSign and cRLSign on an ARK (`03 02 01 06`),
/// keyCertSign alone on an ASK, where AMD writes one unused bit (`03 02 01 04`) where strict DER
/// would write two. Parsers must take AMD's form, so the simulator makes it byte for byte.
pub fn key_usage(ark: bool) -> Extension {
    let bits = if ark { 0x06 } else { 0x04 };
    critical(
        const_oid::db::rfc5280::ID_CE_KEY_USAGE,
        vec![0x03, 0x02, 0x01, bits],
    )
}

/// basicConstraints CA:TRUE, critical, with AMD's path length (0 on an ASK, none on an ARK).
pub fn basic_constraints(path_len: Option<u8>) -> Extension {
    use x509_cert::ext::pkix::BasicConstraints;
    critical(
        const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS,
        BasicConstraints {
            ca: true,
            path_len_constraint: path_len,
        }
        .to_der()
        .expect("basicConstraints encodes"),
    )
}

fn key_id(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    use sha2::Digest;
    let bits = spki.subject_public_key.raw_bytes();
    sha2::Sha256::digest(bits)[..20].to_vec()
}

/// subjectKeyIdentifier (20 bytes of a hash of the key, as AMD's).
pub fn subject_key_id(spki: &SubjectPublicKeyInfoOwned) -> Extension {
    use x509_cert::ext::pkix::SubjectKeyIdentifier;
    let id = SubjectKeyIdentifier(OctetString::new(key_id(spki)).expect("key id"));
    extension_oid(
        const_oid::db::rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER,
        id.to_der().expect("SKI encodes"),
    )
}

/// authorityKeyIdentifier naming the issuer's key.
pub fn authority_key_id(issuer: &SubjectPublicKeyInfoOwned) -> Extension {
    use x509_cert::ext::pkix::AuthorityKeyIdentifier;
    let id = AuthorityKeyIdentifier {
        key_identifier: Some(OctetString::new(key_id(issuer)).expect("key id")),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    };
    extension_oid(
        const_oid::db::rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER,
        id.to_der().expect("AKI encodes"),
    )
}

/// cRLDistributionPoints with one URI, as on AMD's ARK and ASK.
pub fn crl_distribution_point(url: &str) -> Extension {
    use der::asn1::Ia5String;
    use x509_cert::ext::pkix::crl::dp::DistributionPoint;
    use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
    use x509_cert::ext::pkix::CrlDistributionPoints;
    let point = DistributionPoint {
        distribution_point: Some(DistributionPointName::FullName(vec![
            GeneralName::UniformResourceIdentifier(Ia5String::new(url).expect("ASCII URL")),
        ])),
        reasons: None,
        crl_issuer: None,
    };
    extension_oid(
        const_oid::db::rfc5280::ID_CE_CRL_DISTRIBUTION_POINTS,
        CrlDistributionPoints(vec![point])
            .to_der()
            .expect("CRL DP encodes"),
    )
}

fn extension_oid(oid: const_oid::ObjectIdentifier, value: Vec<u8>) -> Extension {
    Extension {
        extn_id: oid,
        critical: false,
        extn_value: OctetString::new(value).expect("extension value fits"),
    }
}

/// What goes into a certificate besides the key and the issuer's signature.
pub struct CertSpec<'a> {
    pub serial: &'a [u8],
    pub issuer: &'a Name,
    pub subject: &'a Name,
    pub not_before: u64,
    pub not_after: u64,
    pub extensions: Vec<Extension>,
    pub version: Version,
    /// Spell out the PSS trailerField (see [`rsa_pss_sha384`]).
    pub explicit_pss_trailer: bool,
}

/// How a simulated certificate departs from AMD's profile, for tests that show the verifier
/// refuses each departure. The default departs in nothing.
#[derive(Debug, Clone, Default)]
pub struct ProfileDeviation {
    /// Issue an X.509 version 2 certificate instead of version 3.
    pub version_2: bool,
    /// This subject common name instead of the profile's.
    pub subject_cn: Option<String>,
    /// Leave basicConstraints out (of a CA certificate).
    pub not_ca: bool,
    /// A keyUsage without keyCertSign (on a CA certificate).
    pub no_cert_sign: bool,
    /// Add a critical extension no verifier knows.
    pub unknown_critical_extension: bool,
    /// This productName instead of AMD's (on a VCEK).
    pub product_name: Option<String>,
}

/// An OID under AMD's enterprise arc that AMD does not use: an extension nobody understands.
const OID_UNKNOWN: &str = "1.3.6.1.4.1.3704.1.99";

impl ProfileDeviation {
    pub(crate) fn version(&self) -> Version {
        if self.version_2 {
            Version::V2
        } else {
            Version::V3
        }
    }

    /// The profile's extensions with this deviation applied.
    pub(crate) fn apply(&self, mut extensions: Vec<Extension>) -> Vec<Extension> {
        use const_oid::db::rfc5280::{ID_CE_BASIC_CONSTRAINTS, ID_CE_KEY_USAGE};
        if self.not_ca {
            extensions.retain(|e| e.extn_id != ID_CE_BASIC_CONSTRAINTS);
        }
        if self.no_cert_sign {
            use x509_cert::ext::pkix::{KeyUsage, KeyUsages};
            for e in extensions
                .iter_mut()
                .filter(|e| e.extn_id == ID_CE_KEY_USAGE)
            {
                e.extn_value = OctetString::new(
                    KeyUsage(KeyUsages::DigitalSignature.into())
                        .to_der()
                        .expect("keyUsage encodes"),
                )
                .expect("extension value fits");
            }
        }
        if self.unknown_critical_extension {
            let mut unknown = extension(OID_UNKNOWN, vec![0x05, 0x00]);
            unknown.critical = true;
            extensions.push(unknown);
        }
        extensions
    }
}

pub fn sign_certificate(
    spec: CertSpec<'_>,
    subject_key: SubjectPublicKeyInfoOwned,
    issuer_key: &RsaPrivateKey,
) -> Vec<u8> {
    let alg = rsa_pss_sha384(spec.explicit_pss_trailer);
    let tbs = TbsCertificate {
        version: spec.version,
        serial_number: SerialNumber::new(spec.serial).expect("serial is short and positive"),
        signature: alg.clone(),
        issuer: spec.issuer.clone(),
        validity: Validity {
            not_before: time(spec.not_before),
            not_after: time(spec.not_after),
        },
        subject: spec.subject.clone(),
        subject_public_key_info: subject_key,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: (!spec.extensions.is_empty()).then_some(spec.extensions),
    };
    let tbs_der = tbs.to_der().expect("TBS encodes");
    let cert = Certificate {
        tbs_certificate: tbs,
        signature_algorithm: alg,
        signature: BitString::from_bytes(&pss_sign(issuer_key, &tbs_der)).expect("signature"),
    };
    cert.to_der().expect("certificate encodes")
}

pub fn sign_crl(
    issuer: &Name,
    issuer_key: &RsaPrivateKey,
    this_update: u64,
    next_update: Option<u64>,
    revoked_serials: &[&[u8]],
) -> Vec<u8> {
    // Signed by an ARK, which spells out the trailer field in what it signs.
    let alg = rsa_pss_sha384(true);
    let revoked: Vec<RevokedCert> = revoked_serials
        .iter()
        .map(|s| RevokedCert {
            serial_number: SerialNumber::new(s).expect("serial"),
            revocation_date: time(this_update),
            crl_entry_extensions: None,
        })
        .collect();
    let tbs = TbsCertList {
        version: Version::V2,
        signature: alg.clone(),
        issuer: issuer.clone(),
        this_update: time(this_update),
        next_update: next_update.map(time),
        revoked_certificates: (!revoked.is_empty()).then_some(revoked),
        crl_extensions: None,
    };
    let tbs_der = tbs.to_der().expect("TBS encodes");
    CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: alg,
        signature: BitString::from_bytes(&pss_sign(issuer_key, &tbs_der)).expect("signature"),
    }
    .to_der()
    .expect("CRL encodes")
}

fn pss_sign(key: &RsaPrivateKey, msg: &[u8]) -> Vec<u8> {
    BlindedSigningKey::<Sha384>::new_with_salt_len(key.clone(), 48)
        .sign_with_rng(&mut rand::thread_rng(), msg)
        .to_vec()
}
