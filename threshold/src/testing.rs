//! FROST's distributed key generation run in one process, each participant's packages handed
//! to the others as the nodes will send them: for tests of this crate and of those that use it.
//! Not for production: it holds every participant's secrets at once.

use crate::shares::identifier;
use frost_secp256k1::keys::{dkg, KeyPackage, PublicKeyPackage};
use frost_secp256k1::Identifier;
use std::collections::BTreeMap;

/// Runs the three DKG parts for `n` participants with threshold `t`.
pub fn dkg(n: u16, t: u16) -> (Vec<KeyPackage>, PublicKeyPackage) {
    let rng = rand::rngs::OsRng;
    let ids: Vec<Identifier> = (1..=n).map(|i| identifier(i).unwrap()).collect();
    let mut secrets1 = BTreeMap::new();
    let mut round1 = BTreeMap::new();
    for id in &ids {
        let (secret, package) = dkg::part1(*id, n, t, rng).unwrap();
        secrets1.insert(*id, secret);
        round1.insert(*id, package);
    }
    let others = |me: &Identifier, all: &BTreeMap<Identifier, dkg::round1::Package>| {
        all.iter()
            .filter(|(id, _)| *id != me)
            .map(|(id, p)| (*id, p.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    let mut secrets2 = BTreeMap::new();
    let mut round2: BTreeMap<Identifier, BTreeMap<Identifier, dkg::round2::Package>> =
        BTreeMap::new();
    for id in &ids {
        let (secret, out) = dkg::part2(secrets1.remove(id).unwrap(), &others(id, &round1)).unwrap();
        secrets2.insert(*id, secret);
        for (to, package) in out {
            round2.entry(to).or_default().insert(*id, package);
        }
    }
    let mut keys = Vec::new();
    let mut public = None;
    for id in &ids {
        let (key, pk) = dkg::part3(&secrets2[id], &others(id, &round1), &round2[id]).unwrap();
        keys.push(key);
        if let Some(first) = &public {
            assert_eq!(
                first, &pk,
                "every participant ends with the same public keys"
            );
        }
        public = Some(pk);
    }
    (keys, public.unwrap())
}
