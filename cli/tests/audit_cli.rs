//! `snpkms node audit-head` fetches the signed head of a node's key-release log;
//! `snpkms node audit-log --root --check-head` checks a copy of the log against it.

use snpkms_e2e::{guest, Stack};
use std::process::Command;

fn snpkms(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_snpkms"))
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kept_head_checks_the_log_from_the_command_line() {
    let mut stack = Stack::start().await;
    let app = stack.app();
    let g = guest(app, stack.compose_hash);
    for _ in 0..2 {
        stack
            .client()
            .await
            .get_app_key(&g, app.0 .0, stack.compose_hash, None, stack.root)
            .await
            .expect("keys");
    }
    let out = snpkms(&["node", "audit-head", "--kms", &stack.url()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("head.json");
    std::fs::write(&head, &out.stdout).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["records"], 2);
    stack.stop_node().await;

    let config = dir.path().join("node.toml");
    std::fs::write(&config, stack.config.to_toml().unwrap()).unwrap();
    let (config, head) = (config.to_str().unwrap(), head.to_str().unwrap());
    let root = format!("0x{}", hex::encode(stack.root));
    let ok = snpkms(&[
        "node",
        "audit-log",
        "--config",
        config,
        "--root",
        &root,
        "--check-head",
        head,
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stderr).contains("extends the kept head"));

    let other = format!("0x{}", "42".repeat(20));
    let wrong_root = snpkms(&["node", "audit-log", "--config", config, "--root", &other]);
    assert_eq!(wrong_root.status.code(), Some(1));

    // The host empties the log: a valid, empty log, which the kept head shows was cut back.
    std::fs::write(stack.config.data_dir.join("audit.log"), b"").unwrap();
    let cut = snpkms(&[
        "node",
        "audit-log",
        "--config",
        config,
        "--check-head",
        head,
    ]);
    assert_eq!(cut.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&cut.stderr);
    assert!(stderr.contains("truncated"), "{stderr}");
}
