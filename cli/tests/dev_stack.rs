//! The README's first command runs `snpkms dev`: it must complete, end to end, on a fresh
//! machine after `scripts/setup`. This runs it exactly so (with its state in a temp dir).

use std::process::Command;

#[test]
fn dev_stack_runs_the_whole_flow() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_snpkms"))
        .args(["dev", "--dir"])
        .arg(dir.path().join(".dev"))
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("run snpkms dev");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "snpkms dev failed:\n{stdout}\n{stderr}"
    );
    for needle in [
        "[1/9] local chain",
        "[5/9] KMS node bootstrapped",
        "[8/9] guest got its keys",
        "verifyAppKey(app, signing address, epoch, signature) = true",
        "KmsInfoSet",
        "ComposeHashAdded",
        "key-release log of the node: 1 record(s), hash chain intact",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
    // The state it leaves behind is usable by the other commands.
    assert!(dir.path().join(".dev/node1.toml").is_file());
    assert!(dir.path().join(".dev/deployment.json").is_file());
    // Secrets: key files are private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join(".dev/governor.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "governor.key is readable by others");
}
