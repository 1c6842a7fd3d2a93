//! The simulator is only worth its tests if what it makes looks like what AMD makes: the
//! verifier's X.509 profile checks and report checks run on simulated evidence in every
//! end-to-end test, so a simulator that departs from AMD's structure would let those checks
//! drift from real hardware unnoticed. These tests compare the structure (not the keys or
//! values that identify a chip) of simulated ARKs, ASKs, VCEKs and reports with the genuine
//! ones in testdata/amd.

use der::{Decode, Encode, Tag, Tagged};
use snpkms_simulator::{SimAuthority, SimulatedPlatform};
use snpkms_verifier::{offsets, Product, REPORT_LEN};
use std::path::PathBuf;
use std::sync::Arc;
use x509_cert::Certificate;

fn testdata(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/amd")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// AMD's published ASK+ARK chain for `product` (ASK first, as the KDS serves it).
fn genuine_ask_ark(product: Product) -> (Certificate, Certificate) {
    let name = product.amd_name().to_lowercase();
    let chain = Certificate::load_pem_chain(&testdata(&format!("roots/{name}-ask-ark.pem")))
        .expect("AMD chain PEM");
    assert_eq!(chain.len(), 2, "{name}: ASK and ARK");
    (chain[0].clone(), chain[1].clone())
}

fn genuine_vcek(product: Product) -> Certificate {
    let name = product.amd_name().to_lowercase();
    let pem = testdata(&format!("ms-{name}-vcek.pem"));
    let (_, der) = der::pem::decode_vec(&pem).expect("VCEK PEM");
    Certificate::from_der(&der).expect("VCEK DER")
}

fn genuine_report(product: Product) -> Vec<u8> {
    testdata(&format!(
        "ms-{}-report.bin",
        product.amd_name().to_lowercase()
    ))
}

fn simulated_platform(product: Product) -> SimulatedPlatform {
    SimulatedPlatform::new(Arc::new(SimAuthority::load()), product, b"faithful")
}

fn decode(der: &[u8]) -> Certificate {
    Certificate::from_der(der).expect("simulated certificate")
}

/// A name as its structure: attribute types in order, each with the ASN.1 string type of
/// its value (AMD uses PrintableString for C and UTF8String for the rest).
fn name_shape(name: &x509_cert::name::Name) -> Vec<(String, Tag)> {
    name.0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .map(|atv| (atv.oid.to_string(), atv.value.tag()))
        .collect()
}

/// An extension's value: one DER value with this outer tag, or (as AMD's hwID is) raw bytes
/// of this length.
#[derive(Debug, PartialEq, Eq)]
enum ValueShape {
    Der(Tag),
    Raw(usize),
}

/// One extension as its structure: OID, criticality, the outer tag of its value and, for the
/// extensions whose content is the same on every certificate of a kind (key usage, basic
/// constraints), the content itself.
#[derive(Debug, PartialEq, Eq)]
struct ExtensionShape {
    oid: String,
    critical: bool,
    value: ValueShape,
    fixed_value: Option<Vec<u8>>,
}

const KEY_USAGE: &str = "2.5.29.15";
const BASIC_CONSTRAINTS: &str = "2.5.29.19";

fn extension_shapes(cert: &Certificate) -> Vec<ExtensionShape> {
    cert.tbs_certificate
        .extensions
        .iter()
        .flatten()
        .map(|ext| {
            let oid = ext.extn_id.to_string();
            let value = ext.extn_value.as_bytes();
            let value_shape = match der::Any::from_der(value) {
                Ok(any) => ValueShape::Der(any.tag()),
                Err(_) => ValueShape::Raw(value.len()),
            };
            let fixed_value = [KEY_USAGE, BASIC_CONSTRAINTS]
                .contains(&oid.as_str())
                .then(|| value.to_vec());
            ExtensionShape {
                oid,
                critical: ext.critical,
                value: value_shape,
                fixed_value,
            }
        })
        .collect()
}

/// Everything about a certificate's structure that the verifier's profile reads or that a
/// relying party's parser might trip on, but none of its keys, names' values or dates.
#[derive(Debug, PartialEq, Eq)]
struct CertShape {
    version: x509_cert::certificate::Version,
    signature_algorithm: Vec<u8>,
    inner_signature_algorithm: Vec<u8>,
    issuer: Vec<(String, Tag)>,
    subject: Vec<(String, Tag)>,
    key_algorithm: String,
    key_parameters: Option<Vec<u8>>,
    issuer_unique_id: bool,
    subject_unique_id: bool,
    extensions: Vec<ExtensionShape>,
}

fn shape(cert: &Certificate) -> CertShape {
    let tbs = &cert.tbs_certificate;
    let spki = &tbs.subject_public_key_info;
    CertShape {
        version: tbs.version,
        signature_algorithm: cert.signature_algorithm.to_der().unwrap(),
        inner_signature_algorithm: tbs.signature.to_der().unwrap(),
        issuer: name_shape(&tbs.issuer),
        subject: name_shape(&tbs.subject),
        key_algorithm: spki.algorithm.oid.to_string(),
        key_parameters: spki
            .algorithm
            .parameters
            .as_ref()
            .map(|p| p.to_der().unwrap()),
        issuer_unique_id: tbs.issuer_unique_id.is_some(),
        subject_unique_id: tbs.subject_unique_id.is_some(),
        extensions: extension_shapes(cert),
    }
}

/// How an ARK's and its ASK's serial numbers relate: AMD numbers them per product as
/// `<n>0000` for the ARK and `<n>xxxx` (xxxx > 0; Genoa's current ASK is `0x20002`) for its
/// ASKs. Returns (length, ARK's low bytes zero, same prefix, ASK's low bytes non-zero).
fn serial_relation(ark: &Certificate, ask: &Certificate) -> (usize, bool, bool, bool) {
    let ark = ark.tbs_certificate.serial_number.as_bytes();
    let ask = ask.tbs_certificate.serial_number.as_bytes();
    let split = ark.len().saturating_sub(2);
    (
        ark.len(),
        ark[split..].iter().all(|b| *b == 0),
        ask.len() == ark.len() && ask[..split] == ark[..split],
        ask[split.min(ask.len())..].iter().any(|b| *b != 0),
    )
}

#[test]
fn simulated_arks_and_asks_have_amds_structure() {
    let authority = SimAuthority::load();
    for product in Product::ALL {
        let (ask, ark) = genuine_ask_ark(product);
        let sim_ark = decode(authority.ark_der(product));
        let sim_ask = decode(authority.ask_der(product));
        assert_eq!(shape(&sim_ark), shape(&ark), "{product:?} ARK");
        assert_eq!(shape(&sim_ask), shape(&ask), "{product:?} ASK");
        assert_eq!(
            serial_relation(&sim_ark, &sim_ask),
            serial_relation(&ark, &ask),
            "{product:?} serial numbering"
        );
        assert_eq!(
            serial_relation(&ark, &ask),
            (3, true, true, true),
            "{product:?}"
        );
    }
}

#[test]
fn simulated_vceks_have_amds_structure() {
    for product in Product::ALL {
        let genuine = genuine_vcek(product);
        let platform = simulated_platform(product);
        let simulated = decode(&platform.vcek_der(platform.tcb()));
        assert_eq!(shape(&simulated), shape(&genuine), "{product:?} VCEK");
        assert_eq!(
            simulated.tbs_certificate.serial_number.as_bytes(),
            genuine.tbs_certificate.serial_number.as_bytes(),
            "{product:?} VCEK serial"
        );
    }
}

/// The byte ranges of a report that belong to no field (reserved, must be zero).
fn reserved_ranges(version: u32) -> Vec<std::ops::Range<usize>> {
    let mut ranges = vec![
        0x0C..offsets::FAMILY_ID,
        offsets::CPUID_STEP + 1..offsets::CHIP_ID,
        0x208..0x2A0,
    ];
    if version < 5 {
        ranges.push(offsets::LAUNCH_MIT_VECTOR..0x208);
    }
    ranges
}

fn u32_at(raw: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(raw[at..at + 4].try_into().unwrap())
}

fn u64_at(raw: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(raw[at..at + 8].try_into().unwrap())
}

/// The parts of a report that say what kind of machine and firmware made it (not who the
/// guest or chip is).
#[derive(Debug, PartialEq, Eq)]
struct ReportShape {
    version: u32,
    sig_algo: u32,
    plat_info: u64,
    key_info: u32,
    cpuid: [u8; 3],
    /// Turin reports carry an 8-byte chip id followed by zeros.
    chip_id_only_8_bytes: bool,
    report_id_set: bool,
    report_id_ma: Vec<u8>,
    mit_vectors: Option<(u64, u64)>,
    reserved_zero: bool,
}

fn report_shape(raw: &[u8]) -> ReportShape {
    assert_eq!(raw.len(), REPORT_LEN);
    let version = u32_at(raw, offsets::VERSION);
    let chip_id = &raw[offsets::CHIP_ID..offsets::CHIP_ID + 64];
    ReportShape {
        version,
        sig_algo: u32_at(raw, offsets::SIG_ALGO),
        plat_info: u64_at(raw, offsets::PLAT_INFO),
        key_info: u32_at(raw, offsets::KEY_INFO),
        cpuid: [
            raw[offsets::CPUID_FAM],
            raw[offsets::CPUID_MOD],
            raw[offsets::CPUID_STEP],
        ],
        chip_id_only_8_bytes: chip_id[8..].iter().all(|b| *b == 0),
        report_id_set: raw[offsets::REPORT_ID..offsets::REPORT_ID + 32]
            .iter()
            .any(|b| *b != 0),
        report_id_ma: raw[offsets::REPORT_ID_MA..offsets::REPORT_ID_MA + 32].to_vec(),
        mit_vectors: (version >= 5).then(|| {
            (
                u64_at(raw, offsets::LAUNCH_MIT_VECTOR),
                u64_at(raw, offsets::CURRENT_MIT_VECTOR),
            )
        }),
        reserved_zero: reserved_ranges(version)
            .into_iter()
            .all(|r| raw[r].iter().all(|b| *b == 0)),
    }
}

#[test]
fn simulated_reports_have_the_structure_of_genuine_ones() {
    for product in Product::ALL {
        let genuine = genuine_report(product);
        let platform = simulated_platform(product);
        let simulated = platform.sign(&platform.default_fields());
        assert_eq!(
            report_shape(&simulated),
            report_shape(&genuine),
            "{product:?} report"
        );
    }
}

#[test]
fn simulated_asvks_and_vleks_have_amds_structure() {
    let authority = SimAuthority::load();
    for product in Product::ALL {
        let name = product.amd_name().to_lowercase();
        let chain = testdata(&format!("roots/{name}-asvk-ark.pem"));
        let genuine = Certificate::load_pem_chain(&chain).unwrap();
        let sim_asvk = decode(authority.asvk_der(product));
        assert_eq!(shape(&sim_asvk), shape(&genuine[0]), "{product:?} ASVK");
    }
    // The one genuine VLEK is a Milan one.
    let genuine = decode(&testdata("vlek/milan-vlek.der"));
    let platform = simulated_platform(Product::Milan).with_vlek("CN=cc-sim.example.com");
    let vlek = platform.certificates(platform.tcb()).vlek.unwrap();
    assert_eq!(shape(&decode(&vlek)), shape(&genuine), "Milan VLEK");
}
