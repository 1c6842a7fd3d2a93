//! `EvidenceVerifier::verify_or_fetch`: a report whose host supplied no VCEK gets it from the
//! node's certificate source, which hands each candidate to the core's check. A genuine VCEK
//! for a forged report is neither kept nor cached; a verified one is cached per chip and TCB.

use snpkms_core::{CertSourceError, CertificateSource, EvidenceError, EvidenceVerifier};
use snpkms_core::{VcekCheck, VcekRefusal};
use snpkms_simulator::{trust_simulator_root, SimAuthority, SimulatedPlatform};
use snpkms_verifier::{Policy, Product, SignatureError, TrustRoots, UnixTime, VcekId, Verifier};
use snpkms_verifier::{VerifiedVcek, VerifyError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

const AT: UnixTime = UnixTime(1_780_272_000);

fn authority() -> Arc<SimAuthority> {
    static A: OnceLock<Arc<SimAuthority>> = OnceLock::new();
    A.get_or_init(|| Arc::new(SimAuthority::load())).clone()
}

/// A source serving one certificate for any id, counting what it was asked and what it kept.
struct Serving {
    der: Vec<u8>,
    asked: AtomicU64,
    kept: Mutex<Vec<VcekId>>,
}

impl CertificateSource for Serving {
    async fn vcek<'a>(
        &'a self,
        id: &'a VcekId,
        check: &'a VcekCheck<'a>,
    ) -> Result<VerifiedVcek, CertSourceError> {
        self.asked.fetch_add(1, Ordering::Relaxed);
        match check(&self.der) {
            Ok(chain) => {
                self.kept.lock().unwrap().push(id.clone());
                Ok(chain)
            }
            Err(VcekRefusal::Report(e)) => Err(CertSourceError::Report(e)),
            Err(VcekRefusal::Certificate(error)) => Err(CertSourceError::Refused {
                message: "refused".into(),
                error,
            }),
        }
    }
}

fn verifier() -> EvidenceVerifier {
    let mut roots = TrustRoots::amd();
    trust_simulator_root(&mut roots).unwrap();
    EvidenceVerifier::new(Verifier::new(roots, Policy::default()), 16)
}

#[tokio::test]
async fn a_fetched_vcek_is_kept_only_for_a_report_it_verifies_and_cached_per_chip() {
    let chip =
        SimulatedPlatform::new(authority(), Product::Milan, b"victim").with_empty_cert_table();
    let source = Serving {
        der: chip.vcek_der(chip.tcb()),
        asked: AtomicU64::new(0),
        kept: Mutex::new(Vec::new()),
    };
    let v = verifier();

    // A forged report: the victim's chip id, signed by another chip's key.
    let forger = SimulatedPlatform::new(authority(), Product::Milan, b"forger");
    let mut fields = forger.default_fields();
    fields.chip_id = chip.chip_id();
    let forged = forger.sign(&fields);
    for _ in 0..2 {
        let err = v
            .verify_or_fetch(&forged, &[], AT, &source)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                EvidenceError::Invalid(VerifyError::Signature(SignatureError::Invalid))
            ),
            "{err}"
        );
    }
    assert!(
        source.kept.lock().unwrap().is_empty(),
        "nothing kept for a forged report"
    );
    assert_eq!(
        source.asked.load(Ordering::Relaxed),
        2,
        "and nothing cached"
    );

    // The victim's own report: verified, kept, and then served from the chain cache.
    let genuine = chip.sign(&chip.default_fields());
    let r = v.verify_or_fetch(&genuine, &[], AT, &source).await.unwrap();
    assert_eq!(r.chip_id, chip.chip_id());
    assert_eq!(source.kept.lock().unwrap().len(), 1);
    let again = chip.sign(&chip.default_fields());
    v.verify_or_fetch(&again, &[], AT, &source).await.unwrap();
    assert_eq!(
        source.asked.load(Ordering::Relaxed),
        3,
        "the second report made no fetch"
    );

    // The cached chain is this chip's: a forged report naming it still fails its signature
    // (the cache holds a key, not a verdict).
    let err = v
        .verify_or_fetch(&forged, &[], AT, &source)
        .await
        .unwrap_err();
    assert!(
        matches!(err, EvidenceError::Invalid(VerifyError::Signature(_))),
        "{err}"
    );
}

#[tokio::test]
async fn a_source_serving_another_chips_vcek_is_refused() {
    let chip = SimulatedPlatform::new(authority(), Product::Milan, b"chip-a");
    let other = SimulatedPlatform::new(authority(), Product::Milan, b"chip-b");
    let source = Serving {
        der: other.vcek_der(other.tcb()),
        asked: AtomicU64::new(0),
        kept: Mutex::new(Vec::new()),
    };
    let err = verifier()
        .verify_or_fetch(&chip.sign(&chip.default_fields()), &[], AT, &source)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            EvidenceError::Certificates(CertSourceError::Refused { .. })
        ),
        "{err}"
    );
    assert!(source.kept.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_certificates_a_guest_sends_with_no_vcek_do_not_decide_the_fetched_one() {
    let chip = SimulatedPlatform::new(authority(), Product::Milan, b"chip-c");
    let source = Serving {
        der: chip.vcek_der(chip.tcb()),
        asked: AtomicU64::new(0),
        kept: Mutex::new(Vec::new()),
    };
    // Another product's ASK and a self-made "ARK" in the table, and no VCEK.
    let table = snpkms_verifier::CertificateBundle {
        ask: Some(authority().ask_der(Product::Genoa).to_vec()),
        ark: Some(b"not a certificate".to_vec()),
        ..Default::default()
    }
    .to_cert_table();
    let report = chip.sign(&chip.default_fields());
    verifier()
        .verify_or_fetch(&report, &table, AT, &source)
        .await
        .expect("the fetched VCEK is checked against the pinned ASK alone");
    assert_eq!(source.kept.lock().unwrap().len(), 1);
}
