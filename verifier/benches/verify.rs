//! Cost of verifying genuine reports per product, beside one bare P-384 ECDSA verification
//! (the irreducible part) with aws-lc-rs (what the verifier uses) and RustCrypto's `p384` (the
//! reference), so the overhead ratio is visible. `full` includes the RSA-4096
//! chain; `cached_chain` is what a node pays per request once the VCEK chain is cached.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use p384::ecdsa::signature::{Signer, Verifier as _};
use p384::ecdsa::{Signature, SigningKey};
use snpkms_verifier::{CertificateBundle, Endorser, Policy, TrustRoots, UnixTime, Verifier};

const AT: UnixTime = UnixTime(1_780_272_000);

fn load(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/testdata/amd/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect(name)
}

fn bench(c: &mut Criterion) {
    let verifier = Verifier::new(TrustRoots::amd(), Policy::default());

    let key = SigningKey::from_slice(&[7u8; 48]).expect("key");
    let msg = [0u8; 0x2A0];
    let sig: Signature = key.sign(&msg);
    let vk = *key.verifying_key();
    c.bench_function("p384_ecdsa_verify_bare/rustcrypto", |b| {
        b.iter(|| vk.verify(black_box(&msg), black_box(&sig)).expect("valid"))
    });
    let point = vk.to_encoded_point(false);
    let parsed_key = aws_lc_rs::signature::ParsedPublicKey::new(
        &aws_lc_rs::signature::ECDSA_P384_SHA384_FIXED,
        point.as_bytes(),
    )
    .expect("point");
    let fixed = sig.to_bytes();
    c.bench_function("p384_ecdsa_verify_bare/aws-lc-rs", |b| {
        b.iter(|| (parsed_key.verify_sig(black_box(&msg), black_box(&fixed[..]))).expect("valid"))
    });

    for (product, report, vcek) in [
        ("milan", "ms-milan-report.bin", "ms-milan-vcek.pem"),
        ("genoa", "ms-genoa-report.bin", "ms-genoa-vcek.pem"),
        ("turin", "ms-turin-report.bin", "ms-turin-vcek.pem"),
    ] {
        let report = load(report);
        let certs = CertificateBundle::from_vcek(&load(vcek)).expect("vcek");
        c.bench_function(&format!("verify_full/{product}"), |b| {
            b.iter(|| {
                verifier
                    .verify(black_box(&report), &certs, AT)
                    .expect("valid")
            })
        });
        let parsed = verifier.parse(&report).expect("parse");
        let hint = verifier.product_hint(&parsed).expect("product");
        let chain = verifier
            .verify_chain(&certs, Endorser::Vcek, hint, AT)
            .expect("chain");
        c.bench_function(&format!("verify_cached_chain/{product}"), |b| {
            b.iter(|| {
                let parsed = verifier.parse(black_box(&report)).expect("parse");
                verifier.verify_parsed(&parsed, &chain, AT).expect("valid")
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
