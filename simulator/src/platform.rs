//! A simulated SNP machine: one chip with a secret, a product and a TCB. It derives its VCEK
//! from the chip secret and TCB as AMD firmware does, has the simulated authority certify it,
//! and signs reports with it over bytes 0x000..0x2A0 exactly like hardware.

use crate::authority::{SimAuthority, NOT_AFTER, NOT_BEFORE};
use crate::cert_builder::{extension, sign_certificate, CertSpec, ProfileDeviation};
use crate::fields::{cpuid_of, ReportFields};
use hkdf::Hkdf;
use p384::ecdsa::signature::Signer;
use p384::ecdsa::{Signature, SigningKey};
use p384::pkcs8::EncodePublicKey;
use sha2::{Digest, Sha384, Sha512};
use snpkms_verifier::oid::{
    OID_BL_SPL, OID_CSP_ID, OID_FMC_SPL, OID_HWID, OID_PRODUCT_NAME, OID_SNP_SPL, OID_TEE_SPL,
    OID_UCODE_SPL,
};
use snpkms_verifier::{offsets, FirmwareVersion, REPORT_LEN};
use snpkms_verifier::{CertificateBundle, GuestPolicy, PlatformInfo, Product, TcbVersion};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A simulated SNP platform (one physical chip).
pub struct SimulatedPlatform {
    authority: Arc<SimAuthority>,
    product: Product,
    chip_secret: [u8; 32],
    tcb: TcbVersion,
    plat_info: u64,
    firmware: FirmwareVersion,
    /// VCEK certificate validity (unix seconds).
    vcek_validity: (u64, u64),
    /// How its VCEKs depart from AMD's profile (none by default).
    vcek_deviation: ProfileDeviation,
    vceks: Mutex<HashMap<[u8; 8], Arc<Vcek>>>,
    vleks: Mutex<HashMap<[u8; 8], Arc<Vcek>>>,
    /// `Some(csp_id)`: a cloud provider's machine, whose firmware signs reports with the
    /// provider's VLEK instead of the chip's VCEK.
    vlek_csp: Option<String>,
    /// Whether the host fills the extended report's certificate table (false: stock QEMU on
    /// bare metal, where the VCEK must come from AMD's KDS).
    host_supplies_certificates: bool,
}

struct Vcek {
    key: SigningKey,
    der: Vec<u8>,
}

/// PLATFORM_INFO as the genuine parts of each product report it: SMT, ECC and
/// ALIAS_CHECK_COMPLETE (the BadRAM check) everywhere, TSME on Genoa, and bit 6 on Turin.
pub fn default_plat_info(product: Product) -> u64 {
    let base = PlatformInfo::SMT_EN | PlatformInfo::ECC_EN | PlatformInfo::ALIAS_CHECK_COMPLETE;
    match product {
        Product::Milan => base,
        Product::Genoa => base | PlatformInfo::TSME_EN,
        Product::Turin => base | 1 << 6,
    }
}

/// AMD's productName for each product: with the stepping on Milan, without on the others.
fn product_name(product: Product) -> &'static str {
    match product {
        Product::Milan => "Milan-B0",
        Product::Genoa => "Genoa",
        Product::Turin => "Turin",
    }
}

/// structVersion (1.3.6.1.4.1.3704.1.1): 0 on Milan and Genoa VCEKs, 1 on Turin's.
const OID_STRUCT_VERSION: &str = "1.3.6.1.4.1.3704.1.1";
/// Reserved SPL extensions AMD writes as 0 (Turin's VCEKs lack .3.4).
const OID_SPL_4: &str = "1.3.6.1.4.1.3704.1.3.4";
const OID_SPL_5: &str = "1.3.6.1.4.1.3704.1.3.5";
const OID_SPL_6: &str = "1.3.6.1.4.1.3704.1.3.6";
const OID_SPL_7: &str = "1.3.6.1.4.1.3704.1.3.7";

/// A TCB typical of a current, patched part of each product.
pub fn default_tcb(product: Product) -> TcbVersion {
    match product {
        Product::Milan => TcbVersion {
            bootloader: 4,
            tee: 0,
            snp: 24,
            microcode: 219,
            fmc: 0,
        },
        Product::Genoa => TcbVersion {
            bootloader: 10,
            tee: 0,
            snp: 23,
            microcode: 84,
            fmc: 0,
        },
        Product::Turin => TcbVersion {
            bootloader: 1,
            tee: 1,
            snp: 4,
            microcode: 0x51,
            fmc: 1,
        },
    }
}

impl SimulatedPlatform {
    /// A platform whose chip is identified by `chip_seed` (any bytes; the same seed gives the
    /// same chip id and VCEKs, like the same physical part).
    pub fn new(
        authority: Arc<SimAuthority>,
        product: Product,
        chip_seed: &[u8],
    ) -> SimulatedPlatform {
        let chip_secret: [u8; 32] = sha2::Sha256::new()
            .chain_update(b"snpkms-sim/chip-secret/v1")
            .chain_update(chip_seed)
            .finalize()
            .into();
        SimulatedPlatform {
            authority,
            product,
            chip_secret,
            tcb: default_tcb(product),
            plat_info: default_plat_info(product),
            firmware: FirmwareVersion {
                major: 1,
                minor: 55,
                build: 21,
            },
            vcek_validity: (NOT_BEFORE, NOT_AFTER),
            vcek_deviation: ProfileDeviation::default(),
            vceks: Mutex::new(HashMap::new()),
            vleks: Mutex::new(HashMap::new()),
            vlek_csp: None,
            host_supplies_certificates: true,
        }
    }

    /// A machine of cloud provider `csp_id` (e.g. `CN=cc-us-east-2.amazonaws.com`): its
    /// reports are signed by the provider's VLEK for the TCB (the same key on every chip of
    /// the provider), with KEY_INFO.SIGNING_KEY = 1 and the chip id masked, as AWS's are; the
    /// host hands out the VLEK, the ASVK and the ARK.
    pub fn with_vlek(mut self, csp_id: &str) -> SimulatedPlatform {
        self.vlek_csp = Some(csp_id.to_string());
        self
    }

    /// A host that leaves the extended report's certificate table empty, as stock QEMU on
    /// bare metal does: verifiers must fetch the VCEK from AMD's KDS (here: a stand-in serving
    /// [`SimulatedPlatform::vcek_der`]).
    pub fn with_empty_cert_table(mut self) -> SimulatedPlatform {
        self.host_supplies_certificates = false;
        self
    }

    /// Whether the host fills the certificate table of extended reports.
    pub fn host_supplies_certificates(&self) -> bool {
        self.host_supplies_certificates
    }

    /// The cloud provider whose VLEK signs this machine's reports, if any.
    pub fn vlek_csp(&self) -> Option<&str> {
        self.vlek_csp.as_deref()
    }

    /// The same chip at another TCB (current, reported, committed and launch TCB alike);
    /// the default is [`default_tcb`].
    pub fn with_tcb(mut self, tcb: TcbVersion) -> SimulatedPlatform {
        self.tcb = tcb;
        self
    }

    /// VCEK certificates valid only between these unix times (to test expiry).
    pub fn with_vcek_validity(mut self, not_before: u64, not_after: u64) -> SimulatedPlatform {
        self.vcek_validity = (not_before, not_after);
        self
    }

    /// VCEKs that depart from AMD's profile as `deviation` says (to test that the verifier
    /// refuses them).
    pub fn with_vcek_deviation(mut self, deviation: ProfileDeviation) -> SimulatedPlatform {
        self.vcek_deviation = deviation;
        self
    }

    /// Another PLAT_INFO for its reports (default: [`default_plat_info`]).
    pub fn with_plat_info(mut self, plat_info: u64) -> SimulatedPlatform {
        self.plat_info = plat_info;
        self
    }

    /// The product (Milan, Genoa, Turin) this chip is.
    pub fn product(&self) -> Product {
        self.product
    }

    /// The platform's TCB: the committed TCB derived keys are checked against, and the one its
    /// default reports carry.
    pub fn tcb(&self) -> TcbVersion {
        self.tcb
    }

    /// The simulated AMD PKI that certifies this chip's VCEKs.
    pub fn authority(&self) -> &SimAuthority {
        &self.authority
    }

    /// The chip id as the firmware reports it (Turin: 8 bytes then zeros, as on hardware).
    pub fn chip_id(&self) -> [u8; 64] {
        let full: [u8; 64] = Sha512::new()
            .chain_update(b"snpkms-sim/chip-id/v1")
            .chain_update(self.chip_secret)
            .finalize()
            .into();
        let mut id = [0u8; 64];
        let n = self.hwid_len();
        id[..n].copy_from_slice(&full[..n]);
        id
    }

    fn hwid_len(&self) -> usize {
        if self.product.has_turin_tcb_layout() {
            8
        } else {
            64
        }
    }

    /// Default fields of a report this platform would produce for a plain VMPL 0 guest.
    pub fn default_fields(&self) -> ReportFields {
        ReportFields {
            version: if self.product == Product::Turin { 5 } else { 3 },
            guest_svn: 0,
            policy: GuestPolicy::SMT | GuestPolicy::RESERVED_MBO,
            family_id: [0; 16],
            image_id: [0; 16],
            vmpl: 0,
            current_tcb: self.tcb,
            plat_info: self.plat_info,
            // KEY_INFO.SIGNING_KEY (bits 4:2): 0 = VCEK, 1 = VLEK.
            key_info: if self.vlek_csp.is_some() { 1 << 2 } else { 0 },
            report_data: [0; 64],
            measurement: [0; 48],
            host_data: [0; 32],
            id_key_digest: [0; 48],
            author_key_digest: [0; 48],
            report_id: rand::random(),
            report_id_ma: [0xff; 32],
            reported_tcb: self.tcb,
            cpuid: cpuid_of(self.product),
            chip_id: if self.vlek_csp.is_some() {
                [0; 64]
            } else {
                self.chip_id()
            },
            committed_tcb: self.tcb,
            current_version: self.firmware,
            committed_version: self.firmware,
            launch_tcb: self.tcb,
            // Turin's genuine reports carry mitigation vectors 0x3f.
            mit_vectors: if self.product == Product::Turin {
                (0x3f, 0x3f)
            } else {
                (0, 0)
            },
        }
    }

    /// Signs `fields` with the VCEK (or, on a provider's machine, the VLEK) for
    /// `fields.reported_tcb`, as the firmware does.
    pub fn sign(&self, fields: &ReportFields) -> Vec<u8> {
        let mut raw = fields.encode(self.product);
        sign_raw(&mut raw, &self.endorsement_key(fields.reported_tcb).key);
        raw.to_vec()
    }

    /// Signs arbitrary report bytes with this chip's VCEK (or VLEK) for `tcb` (for tests that
    /// need a validly signed report with malformed content).
    pub fn sign_raw(&self, raw: &mut [u8; REPORT_LEN], tcb: TcbVersion) {
        sign_raw(raw, &self.endorsement_key(tcb).key);
    }

    /// The certificates a host would hand out with a report signed at `tcb`: the VCEK, ASK
    /// and ARK, or on a provider's machine the VLEK, ASVK and ARK.
    pub fn certificates(&self, tcb: TcbVersion) -> CertificateBundle {
        let ark = Some(self.authority.ark_der(self.product).to_vec());
        match &self.vlek_csp {
            Some(_) => CertificateBundle {
                vlek: Some(self.endorsement_key(tcb).der.clone()),
                asvk: Some(self.authority.asvk_der(self.product).to_vec()),
                ark,
                ..CertificateBundle::default()
            },
            None => CertificateBundle {
                vcek: Some(self.vcek(tcb).der.clone()),
                ask: Some(self.authority.ask_der(self.product).to_vec()),
                ark,
                ..CertificateBundle::default()
            },
        }
    }

    /// The certificate table the host puts in an extended report signed at `tcb`: the
    /// [`certificates`](Self::certificates), or nothing on a host that supplies none.
    pub fn host_cert_table(&self, tcb: TcbVersion) -> Vec<u8> {
        if self.host_supplies_certificates {
            self.certificates(tcb).to_cert_table()
        } else {
            Vec::new()
        }
    }

    fn endorsement_key(&self, tcb: TcbVersion) -> Arc<Vcek> {
        match &self.vlek_csp {
            Some(csp) => self
                .vleks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(tcb.encode(self.product))
                .or_insert_with(|| Arc::new(self.make_vlek(csp, tcb)))
                .clone(),
            None => self.vcek(tcb),
        }
    }

    /// The VCEK certificate for `tcb`.
    pub fn vcek_der(&self, tcb: TcbVersion) -> Vec<u8> {
        self.vcek(tcb).der.clone()
    }

    /// A 32-byte secret that only this chip can derive, mixed with `context`; the base of the
    /// simulated MSG_KEY_REQ derived keys.
    pub(crate) fn chip_key(&self, context: &[u8]) -> [u8; 32] {
        let hk = Hkdf::<sha2::Sha256>::new(Some(b"snpkms-sim/derived-key/v1"), &self.chip_secret);
        let mut out = [0u8; 32];
        hk.expand(context, &mut out)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        out
    }

    fn vcek(&self, tcb: TcbVersion) -> Arc<Vcek> {
        let raw = tcb.encode(self.product);
        let mut cache = self.vceks.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry(raw)
            .or_insert_with(|| Arc::new(self.make_vcek(tcb)))
            .clone()
    }

    /// The provider's VLEK for `tcb`: derived from the provider's id (every chip of the
    /// provider has the same one), AMD's VLEK profile (structVersion, productName, the SPLs,
    /// csp_id; no hwID), issued by the ASVK.
    fn make_vlek(&self, csp: &str, tcb: TcbVersion) -> Vcek {
        let hk = Hkdf::<Sha384>::new(Some(b"snpkms-sim/vlek/v1"), csp.as_bytes());
        let raw = tcb.encode(self.product);
        let key = (0u8..=255)
            .find_map(|counter| {
                let mut okm = [0u8; 48];
                hk.expand_multi_info(&[&raw, &[counter]], &mut okm)
                    .expect("48 bytes is a valid HKDF-SHA384 output length");
                SigningKey::from_slice(&okm).ok()
            })
            .expect("a valid P-384 scalar within 256 tries");
        let spki_der = key
            .verifying_key()
            .to_public_key_der()
            .expect("P-384 key encodes");
        let spki = der::Decode::from_der(spki_der.as_bytes()).expect("SPKI decodes");
        let mut extensions = self.tcb_extensions(tcb, product_name(self.product));
        extensions.push(extension(
            OID_CSP_ID,
            der::Encode::to_der(&der::asn1::Ia5StringRef::new(csp).expect("ASCII csp id"))
                .expect("IA5String encodes"),
        ));
        let der = sign_certificate(
            CertSpec {
                serial: &[0],
                issuer: &self.authority.asvk_name(self.product),
                subject: &self.authority.vlek_name(),
                not_before: self.vcek_validity.0,
                not_after: self.vcek_validity.1,
                extensions,
                version: x509_cert::Version::V3,
                explicit_pss_trailer: false,
            },
            spki,
            self.authority.ask_key(),
        );
        Vcek { key, der }
    }

    /// structVersion, productName and the SPLs, in AMD's order: Milan and Genoa list the
    /// reserved SPLs before snpSPL, Turin puts fmcSPL first and has no .3.4.
    fn tcb_extensions(&self, tcb: TcbVersion, name: &str) -> Vec<x509_cert::ext::Extension> {
        let int = |v: u8| der::Encode::to_der(&v).expect("INTEGER encodes");
        let mut extensions = vec![
            extension(
                OID_STRUCT_VERSION,
                int(u8::from(self.product.has_turin_tcb_layout())),
            ),
            extension(
                OID_PRODUCT_NAME,
                der::Encode::to_der(&der::asn1::Ia5StringRef::new(name).expect("ASCII"))
                    .expect("IA5String encodes"),
            ),
        ];
        let spls: Vec<(&str, u8)> = if self.product.has_turin_tcb_layout() {
            vec![
                (OID_FMC_SPL, tcb.fmc),
                (OID_BL_SPL, tcb.bootloader),
                (OID_TEE_SPL, tcb.tee),
                (OID_SNP_SPL, tcb.snp),
                (OID_SPL_5, 0),
                (OID_SPL_6, 0),
                (OID_SPL_7, 0),
                (OID_UCODE_SPL, tcb.microcode),
            ]
        } else {
            vec![
                (OID_BL_SPL, tcb.bootloader),
                (OID_TEE_SPL, tcb.tee),
                (OID_SPL_4, 0),
                (OID_SPL_5, 0),
                (OID_SPL_6, 0),
                (OID_SPL_7, 0),
                (OID_SNP_SPL, tcb.snp),
                (OID_UCODE_SPL, tcb.microcode),
            ]
        };
        extensions.extend(spls.into_iter().map(|(oid, v)| extension(oid, int(v))));
        extensions
    }

    fn make_vcek(&self, tcb: TcbVersion) -> Vcek {
        let key = self.vcek_key(tcb);
        let spki_der = key
            .verifying_key()
            .to_public_key_der()
            .expect("P-384 key encodes");
        let spki = der::Decode::from_der(spki_der.as_bytes()).expect("SPKI decodes");
        let deviation = &self.vcek_deviation;
        let name = deviation
            .product_name
            .clone()
            .unwrap_or_else(|| product_name(self.product).to_string());
        let mut extensions = self.tcb_extensions(tcb, &name);
        extensions.push(extension(
            OID_HWID,
            self.chip_id()[..self.hwid_len()].to_vec(),
        ));
        let subject = match &deviation.subject_cn {
            Some(cn) => self.authority.names().name(cn),
            None => self.authority.vcek_name(),
        };
        let der = sign_certificate(
            CertSpec {
                // AMD's VCEKs all have serial number 0.
                serial: &[0],
                issuer: &self.authority.ask_name(self.product),
                subject: &subject,
                not_before: self.vcek_validity.0,
                not_after: self.vcek_validity.1,
                extensions: deviation.apply(extensions),
                version: deviation.version(),
                explicit_pss_trailer: false,
            },
            spki,
            self.authority.ask_key(),
        );
        Vcek { key, der }
    }

    /// Like the firmware, derive the VCEK from the chip secret and the TCB, so that a new TCB
    /// means a new key and an old VCEK cannot sign for a new TCB.
    fn vcek_key(&self, tcb: TcbVersion) -> SigningKey {
        let hk = Hkdf::<Sha384>::new(Some(b"snpkms-sim/vcek/v1"), &self.chip_secret);
        let raw = tcb.encode(self.product);
        (0u8..=255)
            .find_map(|counter| {
                let mut okm = [0u8; 48];
                hk.expand_multi_info(&[&raw, &[counter]], &mut okm)
                    .expect("48 bytes is a valid HKDF-SHA384 output length");
                SigningKey::from_slice(&okm).ok()
            })
            .expect("a valid P-384 scalar within 256 tries")
    }
}

fn sign_raw(raw: &mut [u8; REPORT_LEN], key: &SigningKey) {
    let signature: Signature = key.sign(&raw[..snpkms_verifier::SIGNED_LEN]);
    let (r, s) = signature.split_bytes();
    let len = offsets::SIGNATURE_COMPONENT_LEN;
    raw[offsets::SIGNATURE_R..offsets::SIGNATURE_R + len].fill(0);
    raw[offsets::SIGNATURE_S..offsets::SIGNATURE_S + len].fill(0);
    for (i, b) in r.iter().rev().enumerate() {
        raw[offsets::SIGNATURE_R + i] = *b;
    }
    for (i, b) in s.iter().rev().enumerate() {
        raw[offsets::SIGNATURE_S + i] = *b;
    }
}
