//! Target `threshold_answer`: what a guest takes from outside in the threshold mode before it
//! derives a key: a node's partial (`Partial::from_bytes`, its DLEQ proof checked by `verify`,
//! then `combine`), and a share set as the registry returns it (`GroupKeys::new`, with its
//! check that the shares are one polynomial's). A partial that verifies must combine, with an
//! honest one, into the key honest partials give: the proof is what stops a wrong partial.
//!
//! Input: one byte choosing the part (even: a partial, odd: a share set), then its bytes.
//!
//! Shared by the fuzz target (`fuzz/fuzz_targets/threshold_answer.rs`) and the `cargo test`
//! replay of committed inputs (`threshold/tests/fuzz_regressions.rs`) with `#[path]`.

use snpkms_threshold::group::CompressedPoint;
use snpkms_threshold::shares::verifying_share_bytes;
use snpkms_threshold::{combine, evaluate, verify, GroupKeys, KeyShare, Partial};
use std::sync::OnceLock;

/// The app and epoch every partial is checked for.
pub const APP: [u8; 20] = [0x42; 20];
/// The key epoch.
pub const EPOCH: u32 = 1;

/// The most share records a share-set input is read for (the registry's own bound is 255).
const MAX_RECORDS: usize = 300;

fn share(index: u16, secret: u8) -> KeyShare {
    let mut bytes = [0u8; 34];
    bytes[..2].copy_from_slice(&index.to_be_bytes());
    bytes[33] = secret;
    KeyShare::from_bytes(&bytes).expect("a small scalar")
}

/// A 2-of-3 group of the polynomial 5 + 7x: shares 12, 19 and 26, group key 5·G.
pub fn fixture() -> &'static (GroupKeys, Vec<KeyShare>) {
    static FIXTURE: OnceLock<(GroupKeys, Vec<KeyShare>)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let shares = vec![share(1, 12), share(2, 19), share(3, 26)];
        let group_key = verifying_share_bytes(&share(1, 5));
        let encoded: Vec<(u16, CompressedPoint)> = shares
            .iter()
            .map(|s| (s.index(), verifying_share_bytes(s)))
            .collect();
        let group = GroupKeys::new(2, &group_key, &encoded).expect("one polynomial");
        (group, shares)
    })
}

/// `Ok` when the input is accepted all the way (a partial that verifies and combines, a share
/// set that is one polynomial's); `Err` says where it stopped. Panics only on a broken
/// invariant.
pub fn run(data: &[u8]) -> Result<(), String> {
    let (part, rest) = data.split_first().ok_or("empty input")?;
    if part % 2 == 0 {
        partial(rest)
    } else {
        share_set(rest)
    }
}

fn partial(data: &[u8]) -> Result<(), String> {
    let (group, shares) = fixture();
    let partial = Partial::from_bytes(data).map_err(|e| format!("decode: {e}"))?;
    let verified = verify(group, &APP, EPOCH, &partial).map_err(|e| format!("verify: {e}"))?;
    let other = if partial.index == 1 { 2 } else { 1 };
    let honest = |index: u16| {
        let share = &shares[usize::from(index) - 1];
        verify(
            group,
            &APP,
            EPOCH,
            &evaluate(share, &APP, EPOCH).expect("evaluate"),
        )
        .expect("an honest partial verifies")
    };
    let got = combine(group, &[verified, honest(other)]).map_err(|e| format!("combine: {e}"))?;
    let want = combine(group, &[honest(1), honest(2)]).expect("honest partials combine");
    assert_eq!(
        got.expose(),
        want.expose(),
        "a partial that verifies gives the key honest partials give"
    );
    Ok(())
}

fn share_set(data: &[u8]) -> Result<(), String> {
    let too_short = || "share set: too short".to_string();
    let threshold = u16::from_be_bytes(data.get(..2).ok_or_else(too_short)?.try_into().unwrap());
    let group_key: CompressedPoint = data.get(2..35).ok_or_else(too_short)?.try_into().unwrap();
    let records: Vec<(u16, CompressedPoint)> = data[35..]
        .chunks_exact(35)
        .take(MAX_RECORDS)
        .map(|r| {
            let index = u16::from_be_bytes([r[0], r[1]]);
            (index, r[2..].try_into().unwrap())
        })
        .collect();
    let group =
        GroupKeys::new(threshold, &group_key, &records).map_err(|e| format!("share set: {e}"))?;
    // What was accepted reads back as itself.
    let again = GroupKeys::new(
        group.threshold(),
        &group.group_key(),
        &group.encoded_shares(),
    )
    .expect("an accepted share set is accepted again");
    assert_eq!(again, group);
    Ok(())
}
