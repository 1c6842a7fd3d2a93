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

/// `snpkms dev --keep-running` prints commands to try; each must work exactly as printed, from
/// another directory, the moment the banner appears.
#[test]
fn every_command_the_running_stack_prints_works_as_printed() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_snpkms"))
        .args(["dev", "--keep-running", "--dir"])
        .arg(dir.path().join(".dev"))
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run snpkms dev --keep-running");
    // Stops the stack whatever happens below.
    struct Stop(std::process::Child);
    impl Drop for Stop {
        fn drop(&mut self) {
            // Only a child still running (a reaped one's pid may be another process's now).
            if !matches!(self.0.try_wait(), Ok(None)) {
                return;
            }
            let _ = Command::new("kill")
                .args(["-INT", &self.0.id().to_string()])
                .status();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().unwrap();
    let mut stop = Stop(child);
    let mut lines = BufReader::new(stdout).lines();
    let mut banner = Vec::new();
    let mut running = false;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.starts_with("Press Ctrl-C") {
            break;
        }
        running |= line.starts_with("The stack is running");
        if running {
            banner.push(line);
        }
    }
    assert!(running, "no banner");
    let commands: Vec<&str> = banner
        .iter()
        .filter_map(|l| l.strip_prefix("  "))
        .filter(|l| !l.starts_with('#'))
        .collect();
    assert!(commands.len() >= 4, "{banner:#?}");
    for command in &commands {
        let out = Command::new("sh")
            .args(["-c", command])
            .current_dir(elsewhere.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && !stdout.trim().is_empty(),
            "{command}\nfailed from another directory:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let get_key = commands.iter().find(|c| c.contains(" get-key ")).unwrap();
    assert!(
        get_key.contains("--rpc-url"),
        "get-key checks the root on-chain"
    );
    // Ctrl-C stops everything and the stack reports its log intact.
    Command::new("kill")
        .args(["-INT", &stop.0.id().to_string()])
        .status()
        .unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(stop.0.wait().unwrap().success(), "{rest:#?}");
    assert!(
        rest.iter().any(|l| l.contains("hash chain intact")),
        "{rest:#?}"
    );
}
