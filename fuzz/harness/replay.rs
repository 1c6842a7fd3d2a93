//! The `cargo test` replay of a target's committed inputs (`fuzz/seeds/<target>/`: the seed
//! corpus plus every input that ever crashed it) through its harness, shared by the regression
//! tests of the crates the targets cover (`#[path]`). A panic is a finding that came back; files
//! named `ok-*` must be accepted and `refused-*` refused, so the seeds keep reaching the checks
//! they were written for as the code changes.

use std::path::{Path, PathBuf};

/// `fuzz/seeds/<target>` of the workspace whose crate has `manifest_dir`.
pub fn seeds_dir(manifest_dir: &str, target: &str) -> PathBuf {
    Path::new(manifest_dir).join("../fuzz/seeds").join(target)
}

/// Every committed input of `target`, sorted, with its file name.
pub fn inputs(manifest_dir: &str, target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = seeds_dir(manifest_dir, target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "{} holds no inputs", dir.display());
    out
}

/// Runs every committed input of `target` through `run`.
pub fn replay(manifest_dir: &str, target: &str, run: fn(&[u8]) -> Result<(), String>) {
    for (name, data) in inputs(manifest_dir, target) {
        // A panic here is a fuzzer finding that came back: the message names the file.
        let result = std::panic::catch_unwind(|| run(&data))
            .unwrap_or_else(|_| panic!("fuzz/seeds/{target}/{name} panics"));
        if name.starts_with("ok-") {
            assert_eq!(result, Ok(()), "fuzz/seeds/{target}/{name}");
        }
        if name.starts_with("refused-") {
            assert!(result.is_err(), "fuzz/seeds/{target}/{name} is accepted");
        }
    }
}
