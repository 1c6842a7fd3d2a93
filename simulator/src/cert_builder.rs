//! Builds and signs X.509 certificates and CRLs the way AMD's KDS does: RSASSA-PSS with
//! SHA-384, MGF1-SHA-384 and a 48-byte salt.

use der::asn1::{BitString, GeneralizedTime, OctetString, UtcTime};
use der::{Any, Encode};
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

pub fn rsa_pss_sha384() -> AlgorithmIdentifierOwned {
    let params = RsaPssParams::new::<Sha384>(48);
    AlgorithmIdentifierOwned {
        oid: const_oid::db::rfc5912::ID_RSASSA_PSS,
        parameters: Some(Any::encode_from(&params).expect("PSS parameters encode")),
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

/// What goes into a certificate besides the key and the issuer's signature.
pub struct CertSpec<'a> {
    pub serial: &'a [u8],
    pub issuer: &'a Name,
    pub subject: &'a Name,
    pub not_before: u64,
    pub not_after: u64,
    pub extensions: Vec<Extension>,
}

pub fn sign_certificate(
    spec: CertSpec<'_>,
    subject_key: SubjectPublicKeyInfoOwned,
    issuer_key: &RsaPrivateKey,
) -> Vec<u8> {
    let alg = rsa_pss_sha384();
    let tbs = TbsCertificate {
        version: Version::V3,
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
    next_update: u64,
    revoked_serials: &[&[u8]],
) -> Vec<u8> {
    let alg = rsa_pss_sha384();
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
        next_update: Some(time(next_update)),
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
