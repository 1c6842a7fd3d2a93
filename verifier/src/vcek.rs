//! What AMD's endorsement-key certificates say about the key that signed a report: a VCEK
//! ("Versioned Chip Endorsement Key": one chip at one TCB) or a VLEK ("Versioned Loaded
//! Endorsement Key": a key AMD issues to a cloud provider, loaded into its chips, at one TCB),
//! and the checks that bind a report to it.

use crate::error::{BindingError, CertError};
use crate::product::Product;
use crate::tcb::TcbVersion;
use crate::x509::ParsedCert;
use const_oid::ObjectIdentifier;
use der::asn1::OctetStringRef;
use der::Decode;

/// productName: an IA5String such as `Milan-B0` or `Genoa`: the product, with the stepping on
/// some. It must name the product of the chain (decided by the report's CPUID and the VCEK's
/// issuer).
pub const OID_PRODUCT_NAME: &str = "1.3.6.1.4.1.3704.1.2";
/// blSPL: the bootloader SPL the VCEK was derived for (DER INTEGER).
pub const OID_BL_SPL: &str = "1.3.6.1.4.1.3704.1.3.1";
/// teeSPL: the PSP OS (TEE) SPL the VCEK was derived for (DER INTEGER).
pub const OID_TEE_SPL: &str = "1.3.6.1.4.1.3704.1.3.2";
/// snpSPL: the SNP firmware SPL the VCEK was derived for (DER INTEGER).
pub const OID_SNP_SPL: &str = "1.3.6.1.4.1.3704.1.3.3";
/// ucodeSPL: the microcode SPL the VCEK was derived for (DER INTEGER).
pub const OID_UCODE_SPL: &str = "1.3.6.1.4.1.3704.1.3.8";
/// fmcSPL: the FMC SPL the VCEK was derived for (DER INTEGER); Turin only.
pub const OID_FMC_SPL: &str = "1.3.6.1.4.1.3704.1.3.9";
/// hwID: the chip id the VCEK belongs to (see [`HWID_LEN`], [`HWID_LEN_TURIN`]). VLEKs have none.
pub const OID_HWID: &str = "1.3.6.1.4.1.3704.1.4";
/// csp_id: the cloud provider a VLEK was issued to (an IA5String such as
/// `CN=cc-us-east-2.amazonaws.com`); VLEKs only.
pub const OID_CSP_ID: &str = "1.3.6.1.4.1.3704.1.5";

/// Which AMD key signed a report (KEY_INFO.SIGNING_KEY), and so which chain endorses it:
/// ARK -> ASK (`SEV-<product>`) -> VCEK, or ARK -> ASVK (`SEV-VLEK-<product>`) -> VLEK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Endorser {
    /// The chip's own key for its TCB; its certificate names the chip (hwID).
    Vcek,
    /// A cloud provider's key for a TCB, shared by its chips; its certificate names the
    /// provider (csp_id), not a chip.
    Vlek,
}

impl Endorser {
    /// `VCEK` or `VLEK`.
    pub fn name(self) -> &'static str {
        match self {
            Endorser::Vcek => "VCEK",
            Endorser::Vlek => "VLEK",
        }
    }

    /// The intermediate that issues this kind of key: `ASK` or `ASVK`.
    pub fn issuer_name(self) -> &'static str {
        match self {
            Endorser::Vcek => "ASK",
            Endorser::Vlek => "ASVK",
        }
    }

    /// The subject common name AMD gives the leaf: `SEV-VCEK` or `SEV-VLEK`.
    pub fn subject_common_name(self) -> &'static str {
        match self {
            Endorser::Vcek => "SEV-VCEK",
            Endorser::Vlek => "SEV-VLEK",
        }
    }

    /// The common name of the intermediate for `product`: `SEV-<product>` or
    /// `SEV-VLEK-<product>`.
    pub fn issuer_common_name(self, product: Product) -> String {
        match self {
            Endorser::Vcek => format!("SEV-{product}"),
            Endorser::Vlek => format!("SEV-VLEK-{product}"),
        }
    }
}

impl std::fmt::Display for Endorser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Length of the hwID on Milan and Genoa (the full chip id) and on Turin (its first 8 bytes).
pub const HWID_LEN: usize = 64;
/// Length of the hwID on Turin: the first 8 bytes of the report's 64-byte chip_id.
pub const HWID_LEN_TURIN: usize = 8;

/// What AMD's KDS indexes a VCEK by: the product, the chip's hwID and the TCB the VCEK was
/// derived for (the report's reported_tcb). [`Verifier::vcek_id`](crate::Verifier::vcek_id)
/// reads it from a report whose host supplied no VCEK; what comes back for it is verified
/// like any certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VcekId {
    /// The product (its KDS path segment is [`Product::amd_name`]).
    pub product: Product,
    /// The hwID: the report's 64-byte chip id, or its first 8 bytes on Turin.
    pub hwid: Vec<u8>,
    /// The TCB the VCEK was derived for.
    pub tcb: TcbVersion,
}

impl VcekId {
    /// The hwID as KDS writes it in its URLs: lowercase hex.
    pub fn hwid_hex(&self) -> String {
        hex::encode(&self.hwid)
    }

    /// A short form for messages and logs: the product, the first 8 bytes of the hwID, the TCB.
    pub fn short(&self) -> String {
        let hex = self.hwid_hex();
        format!(
            "{} chip {}… at TCB {}",
            self.product,
            &hex[..hex.len().min(16)],
            self.tcb
        )
    }
}

/// The endorsement key's TCB and identity, decoded from its certificate's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VcekClaims {
    /// The TCB the key was derived for, from its SPL extensions (`fmc` is 0 before Turin).
    pub tcb: TcbVersion,
    /// A VCEK's hwID, [`HWID_LEN`] bytes or, on Turin, [`HWID_LEN_TURIN`] bytes (unwrapped if
    /// the issuer put it in a DER OCTET STRING); `None` for a VLEK, which names no chip.
    pub hwid: Option<Vec<u8>>,
    /// A VLEK's csp_id: the cloud provider it was issued to; `None` for a VCEK.
    pub csp_id: Option<String>,
    /// The productName extension: the product, optionally `-<stepping>`.
    pub product_name: String,
}

fn extension<'a>(cert: &'a ParsedCert, oid: &str) -> Option<&'a [u8]> {
    let oid = ObjectIdentifier::new(oid).ok()?;
    cert.cert
        .tbs_certificate
        .extensions
        .as_ref()?
        .iter()
        .find(|e| e.extn_id == oid)
        .map(|e| e.extn_value.as_bytes())
}

fn spl(cert: &ParsedCert, name: &'static str, oid: &'static str) -> Result<u8, BindingError> {
    let value = extension(cert, oid).ok_or(BindingError::MissingExtension { name, oid })?;
    u8::from_der(value).map_err(|e| BindingError::MalformedExtension {
        name,
        reason: format!("expected a DER INTEGER 0..=255: {e}"),
    })
}

impl VcekClaims {
    /// Reads the SPL extensions of an endorsement-key certificate of `product` (the fmcSPL
    /// only for Turin), and a VCEK's hwID or a VLEK's csp_id. Fails if one is missing or
    /// malformed, or if productName does not name `product`.
    pub(crate) fn from_certificate(
        vcek: &ParsedCert,
        product: Product,
        endorser: Endorser,
    ) -> Result<VcekClaims, BindingError> {
        let fmc = if product.has_turin_tcb_layout() {
            spl(vcek, "fmcSPL", OID_FMC_SPL)?
        } else {
            0
        };
        let tcb = TcbVersion {
            bootloader: spl(vcek, "blSPL", OID_BL_SPL)?,
            tee: spl(vcek, "teeSPL", OID_TEE_SPL)?,
            snp: spl(vcek, "snpSPL", OID_SNP_SPL)?,
            microcode: spl(vcek, "ucodeSPL", OID_UCODE_SPL)?,
            fmc,
        };
        let (hwid, csp_id) = match endorser {
            Endorser::Vcek => {
                let raw = extension(vcek, OID_HWID).ok_or(BindingError::MissingExtension {
                    name: "hwID",
                    oid: OID_HWID,
                })?;
                (Some(decode_hwid(raw, product)?), None)
            }
            Endorser::Vlek => {
                let raw = extension(vcek, OID_CSP_ID).ok_or(BindingError::MissingExtension {
                    name: "csp_id",
                    oid: OID_CSP_ID,
                })?;
                let csp = der::asn1::Ia5StringRef::from_der(raw).map_err(|e| {
                    BindingError::MalformedExtension {
                        name: "csp_id",
                        reason: format!("expected a DER IA5String: {e}"),
                    }
                })?;
                (None, Some(csp.as_str().to_owned()))
            }
        };
        let found = extension(vcek, OID_PRODUCT_NAME).map(|v| {
            der::asn1::Ia5StringRef::from_der(v)
                .map(|s| s.as_str().to_owned())
                .unwrap_or_else(|_| format!("(not an IA5String: {})", hex::encode(v)))
        });
        let product_name = match found {
            Some(name)
                if name == product.amd_name()
                    || name
                        .strip_prefix(product.amd_name())
                        .is_some_and(|stepping| stepping.starts_with('-')) =>
            {
                name
            }
            found => {
                return Err(BindingError::ProductName {
                    expected: product,
                    found,
                })
            }
        };
        Ok(VcekClaims {
            tcb,
            hwid,
            csp_id,
            product_name,
        })
    }

    /// The VCEK is derived from the chip's secret and the reported TCB, so its extensions must
    /// equal reported_tcb: a VCEK for an older, vulnerable TCB must not vouch for a report that
    /// claims a newer one.
    pub fn check_tcb(&self, reported: &TcbVersion) -> Result<(), BindingError> {
        for ((component, vcek), (_, report)) in
            self.tcb.components().into_iter().zip(reported.components())
        {
            if vcek != report {
                return Err(BindingError::TcbMismatch {
                    component,
                    vcek,
                    report,
                });
            }
        }
        Ok(())
    }

    /// The hwID must name the chip that produced the report, or a VCEK of one machine could
    /// authorize reports claimed to come from another (and chip allow-lists mean nothing).
    /// A VLEK names no chip: nothing binds a chip id to it.
    pub fn check_chip_id(&self, chip_id: &[u8; 64]) -> Result<(), BindingError> {
        let Some(hwid) = &self.hwid else {
            return Err(BindingError::ChipIdMismatch);
        };
        let n = hwid.len();
        if chip_id[..n] != hwid[..] || chip_id[n..].iter().any(|&b| b != 0) {
            return Err(BindingError::ChipIdMismatch);
        }
        Ok(())
    }
}

/// hwID comes as 64 raw bytes (Milan, Genoa), 8 raw bytes (Turin), or wrapped in a DER
/// OCTET STRING by some issuers; all three must compare equal to the same chip id.
fn decode_hwid(value: &[u8], product: Product) -> Result<Vec<u8>, BindingError> {
    let expected = if product.has_turin_tcb_layout() {
        HWID_LEN_TURIN
    } else {
        HWID_LEN
    };
    let bytes = if value.len() == expected {
        value
    } else {
        OctetStringRef::from_der(value)
            .map(|o| o.as_bytes())
            .map_err(|_| BindingError::MalformedExtension {
                name: "hwID",
                reason: format!(
                    "{} bytes, neither {expected} raw bytes nor a DER OCTET STRING",
                    value.len()
                ),
            })?
    };
    if bytes.len() != expected {
        return Err(BindingError::MalformedExtension {
            name: "hwID",
            reason: format!("{} bytes, expected {expected} for {product}", bytes.len()),
        });
    }
    Ok(bytes.to_vec())
}

/// The VCEK's (or VLEK's) P-384 public key.
pub fn vcek_public_key(vcek: &ParsedCert) -> Result<p384::ecdsa::VerifyingKey, CertError> {
    let spki = &vcek.cert.tbs_certificate.subject_public_key_info;
    let ec_public_key = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
    let secp384r1 = ObjectIdentifier::new_unwrap("1.3.132.0.34");
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
    if spki.algorithm.oid != ec_public_key || curve != Some(secp384r1) {
        return Err(CertError::VcekKey(format!(
            "algorithm {} with parameters {:?}",
            spki.algorithm.oid, curve
        )));
    }
    let point = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| CertError::VcekKey("public key bit string has unused bits".into()))?;
    p384::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(|e| CertError::VcekKey(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hwid_encodings() {
        let chip = [7u8; 64];
        assert_eq!(decode_hwid(&chip, Product::Milan).unwrap(), chip.to_vec());
        let mut wrapped = vec![0x04, 0x40];
        wrapped.extend_from_slice(&chip);
        assert_eq!(
            decode_hwid(&wrapped, Product::Genoa).unwrap(),
            chip.to_vec()
        );
        assert_eq!(
            decode_hwid(&chip[..8], Product::Turin).unwrap(),
            chip[..8].to_vec()
        );
        let mut wrapped8 = vec![0x04, 0x08];
        wrapped8.extend_from_slice(&chip[..8]);
        assert_eq!(
            decode_hwid(&wrapped8, Product::Turin).unwrap(),
            chip[..8].to_vec()
        );
        assert!(decode_hwid(&chip[..8], Product::Milan).is_err());
        assert!(decode_hwid(&chip[..63], Product::Milan).is_err());
    }

    #[test]
    fn turin_chip_id_compares_first_eight_bytes_and_zero_rest() {
        let claims = VcekClaims {
            tcb: TcbVersion::default(),
            hwid: Some(vec![1, 2, 3, 4, 5, 6, 7, 8]),
            csp_id: None,
            product_name: "Turin".into(),
        };
        let mut chip = [0u8; 64];
        chip[..8].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(claims.check_chip_id(&chip), Ok(()));
        chip[40] = 1;
        assert_eq!(
            claims.check_chip_id(&chip),
            Err(BindingError::ChipIdMismatch)
        );
    }
}
