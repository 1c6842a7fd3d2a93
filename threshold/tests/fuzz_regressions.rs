//! Replays every committed input of the `threshold_answer` fuzz target
//! (`fuzz/seeds/threshold_answer/`: the seed corpus, plus every input that ever crashed the
//! target) through the same harness the fuzzer runs, so a fixed crash stays fixed under plain
//! `cargo test`. Files named `ok-*` must be accepted all the way, `refused-*` refused.
//!
//! `cargo test -p snpkms-threshold --test fuzz_regressions -- --ignored` rewrites the seeds.

#[path = "../../fuzz/harness/replay.rs"]
mod replay;
#[path = "../../fuzz/harness/threshold_answer.rs"]
mod threshold_answer;

use snpkms_threshold::evaluate;
use snpkms_threshold::shares::verifying_share_bytes;
use std::path::PathBuf;

const TARGET: &str = "threshold_answer";

fn seeds_dir() -> PathBuf {
    replay::seeds_dir(env!("CARGO_MANIFEST_DIR"), TARGET)
}

#[test]
fn threshold_answer_inputs_never_panic() {
    replay::replay(env!("CARGO_MANIFEST_DIR"), TARGET, threshold_answer::run);
}

/// The seed corpus: each node's honest partial and the fixture's share set (accepted), and
/// next to them a partial with a changed value, one of another app, and a share set with a
/// share off the polynomial (refused), so mutations start next to every branch.
#[test]
#[ignore = "rewrites fuzz/seeds/threshold_answer"]
fn write_seeds() {
    let dir = seeds_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let (group, shares) = threshold_answer::fixture();
    let write = |name: &str, part: u8, body: &[u8]| {
        let mut bytes = vec![part];
        bytes.extend_from_slice(body);
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    let partial = |i: usize, app: &[u8; 20]| -> Vec<u8> {
        evaluate(&shares[i], app, threshold_answer::EPOCH)
            .unwrap()
            .to_bytes()
            .to_vec()
    };
    for i in 0..3 {
        write(
            &format!("ok-partial-{}", i + 1),
            0,
            &partial(i, &threshold_answer::APP),
        );
    }
    let mut changed = partial(1, &threshold_answer::APP);
    changed[5] ^= 1;
    write("refused-partial-changed-value", 0, &changed);
    write("refused-partial-other-app", 0, &partial(2, &[7; 20]));

    let mut set = group.threshold().to_be_bytes().to_vec();
    set.extend_from_slice(&group.group_key());
    for (index, point) in group.encoded_shares() {
        set.extend_from_slice(&index.to_be_bytes());
        set.extend_from_slice(&point);
    }
    write("ok-share-set", 1, &set);
    let mut off = set.clone();
    let last = off.len() - 35;
    off[last + 2..].copy_from_slice(&verifying_share_bytes(&shares[0]));
    write("refused-share-set-off-the-polynomial", 1, &off);
}
