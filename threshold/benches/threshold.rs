//! What the threshold mode adds per GetAppKey: on a node, one partial with its proof; on the
//! guest, checking t proofs and combining t partials (3 of 5 here). The group comes from
//! FROST's trusted dealer, which costs the same to use as a DKG's and is only for the bench.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use frost_secp256k1::keys::{generate_with_dealer, IdentifierList, KeyPackage};
use snpkms_threshold::shares::group_of;
use snpkms_threshold::{combine, evaluate, verify, KeyShare};

const APP: [u8; 20] = [0x42; 20];

fn bench(c: &mut Criterion) {
    let (dealt, public) =
        generate_with_dealer(5, 3, IdentifierList::Default, rand::rngs::OsRng).expect("dealer");
    let shares: Vec<KeyShare> = dealt
        .into_values()
        .map(|s| {
            KeyShare::from_key_package(&KeyPackage::try_from(s).expect("package")).expect("share")
        })
        .collect();
    let group = group_of(&public, 3).expect("group");
    c.bench_function("node: evaluate one partial with its proof", |b| {
        b.iter(|| evaluate(&shares[0], black_box(&APP), 0).expect("partial"))
    });
    let partials: Vec<_> = shares[..3]
        .iter()
        .map(|s| evaluate(s, &APP, 0).expect("partial"))
        .collect();
    c.bench_function("guest: verify one partial's proof", |b| {
        b.iter(|| verify(&group, black_box(&APP), 0, &partials[0]).expect("verified"))
    });
    let verified: Vec<_> = partials
        .iter()
        .map(|p| verify(&group, &APP, 0, p).expect("verified"))
        .collect();
    c.bench_function("guest: combine 3 partials and derive the app keys", |b| {
        b.iter(|| {
            combine(&group, black_box(&verified))
                .expect("secret")
                .app_keys()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
