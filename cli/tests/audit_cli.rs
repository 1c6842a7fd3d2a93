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

/// `snpkms node audit-archive` refuses while the node runs, moves the records into a segment
/// once it is stopped; the node starts on the shortened log and goes on; `audit-log --archive`
/// checks segment and live log as one chain (and a kept head only with the segment).
#[tokio::test(flavor = "multi_thread")]
async fn an_archived_log_is_checked_with_its_segments_from_the_command_line() {
    let mut stack = Stack::start().await;
    let app = stack.app();
    let get_key = |stack: &Stack| {
        let (url, compose, root) = (stack.url(), stack.compose_hash, stack.root);
        async move {
            let grant = snpkms_guest::GuestClient::connect(&url)
                .await
                .unwrap()
                .get_app_key(&guest(app, compose), app.0 .0, compose, None, root)
                .await
                .expect("keys");
            *grant.disk_key
        }
    };
    // A head kept after the first record: older than the live log's start once archived.
    let before = get_key(&stack).await;
    let head = snpkms(&["node", "audit-head", "--kms", &stack.url()]);
    assert!(head.status.success());
    get_key(&stack).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, kept, archive) = (
        dir.path().join("node.toml"),
        dir.path().join("head.json"),
        dir.path().join("archive"),
    );
    std::fs::write(&kept, &head.stdout).unwrap();
    std::fs::write(&config, stack.config.to_toml().unwrap()).unwrap();
    let (config, kept, archive) = (
        config.to_str().unwrap(),
        kept.to_str().unwrap(),
        archive.to_str().unwrap(),
    );
    let archive_cmd = [
        "node",
        "audit-archive",
        "--config",
        config,
        "--into",
        archive,
    ];

    let running = snpkms(&archive_cmd);
    assert!(!running.status.success(), "refused while the node runs");
    assert!(String::from_utf8_lossy(&running.stderr).contains("locked by another process"));

    stack.stop_node().await;
    let moved = snpkms(&archive_cmd);
    assert!(
        moved.status.success(),
        "{}",
        String::from_utf8_lossy(&moved.stderr)
    );
    assert!(String::from_utf8_lossy(&moved.stderr).contains("records 0..2 moved"));

    // The node starts on the shortened log, continues at record 2, same keys.
    stack.start_node().await;
    assert_eq!(get_key(&stack).await, before);
    stack.stop_node().await;

    let live = snpkms(&["node", "audit-log", "--config", config, "--json"]);
    assert!(live.status.success());
    let records: serde_json::Value = serde_json::from_slice(&live.stdout).unwrap();
    assert_eq!(records.as_array().unwrap().len(), 1);
    assert_eq!(records[0]["seq"], 2);
    let without = snpkms(&[
        "node",
        "audit-log",
        "--config",
        config,
        "--check-head",
        kept,
    ]);
    assert_eq!(
        without.status.code(),
        Some(1),
        "the kept head is in the segment"
    );
    assert!(String::from_utf8_lossy(&without.stderr).contains("archived"));
    let with = snpkms(&[
        "node",
        "audit-log",
        "--config",
        config,
        "--archive",
        archive,
        "--check-head",
        kept,
        "--json",
    ]);
    assert!(
        with.status.success(),
        "{}",
        String::from_utf8_lossy(&with.stderr)
    );
    let records: serde_json::Value = serde_json::from_slice(&with.stdout).unwrap();
    let seqs: Vec<u64> = (records.as_array().unwrap().iter())
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [0, 1, 2]);

    // Without its first segment the chain does not start at record 0: refused.
    for segment in std::fs::read_dir(archive).unwrap() {
        std::fs::remove_file(segment.unwrap().path()).unwrap();
    }
    let gone = snpkms(&[
        "node",
        "audit-log",
        "--config",
        config,
        "--archive",
        archive,
    ]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&gone.stderr).contains("a segment is missing"));
}
