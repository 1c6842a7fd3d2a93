//! The per-request costs of GetAppKey besides the report verification (see the verifier's
//! `verify` bench): key derivation (cold), the cached grant (warm), HPKE sealing to the guest,
//! and the report_data binding hash.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use snpkms_api::{binding, seal};
use snpkms_core::keys::RootSecret;
use snpkms_core::GrantCache;

fn bench(c: &mut Criterion) {
    let root = RootSecret::generate();
    let signer = root.root_signing_key();
    c.bench_function("derive_app_keys_and_sign (cold grant)", |b| {
        b.iter(|| {
            GrantCache::new(1)
                .get_or_derive(&root, &signer, black_box(&[1; 20]), 0)
                .expect("grant")
        })
    });
    let cache = GrantCache::new(16);
    cache
        .get_or_derive(&root, &signer, &[1; 20], 0)
        .expect("grant");
    c.bench_function("cached_grant (warm)", |b| {
        b.iter(|| {
            cache
                .get_or_derive(&root, &signer, black_box(&[1; 20]), 0)
                .expect("grant")
        })
    });
    let guest = seal::EphemeralKeyPair::generate();
    let grant = cache
        .get_or_derive(&root, &signer, &[1; 20], 0)
        .expect("grant");
    let aad = seal::app_keys_aad(&[1; 20], &[2; 32], 0, &[3; 32]);
    c.bench_function("hpke_seal_app_keys", |b| {
        b.iter(|| {
            seal::seal(
                black_box(&guest.public_key()),
                seal::APP_KEYS_INFO,
                &aad,
                &grant.plaintext,
            )
            .expect("seal")
        })
    });
    c.bench_function("report_data_binding", |b| {
        b.iter(|| binding::get_app_key_report_data(black_box(&[1; 32]), black_box(&[2; 32])))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
