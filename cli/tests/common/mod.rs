//! What the command-line tests share: the genuine AMD vectors and running the binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A file of the verifier's genuine AMD test data.
pub fn amd(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../verifier/testdata/amd")
        .join(name)
}

/// Runs `snpkms` with `args` to its end.
pub fn snpkms(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_snpkms"))
        .args(args)
        .output()
        .expect("run snpkms")
}

/// Runs `snpkms` off the async runtime (a test's servers keep serving meanwhile).
pub async fn snpkms_async(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        snpkms(&args)
    })
    .await
    .expect("snpkms task")
}

/// A path as an argument.
pub fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}
